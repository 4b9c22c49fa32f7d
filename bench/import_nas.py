"""Benchmark: `kataster import` of generated NAS extracts vs `ogr2ogr` with GDAL's NAS driver.

For each target size (default ~100 MB and ~1 GB of GeoInfoDok 6.0) it generates the extract once
(with the type mix of a real extract: boundary points, Punktorte, presentation objects, land use,
rights, old and new GML forms, shared arcs; ``--lean`` for parcels, buildings, addresses and
owners only, as earlier figures were measured),
then in the same run and on the same PostgreSQL cluster:

* `kataster import FILE --no-validate` into a fresh migrated database (one transaction,
  committed, indexes built, ownership resolved);
* `ogr2ogr -f PostgreSQL` with Debian's GDAL 3.6 NAS driver, all types, into a scratch schema of
  another fresh database.

It prints MB/s and objects/s for both, the ratio (ours / ogr2ogr) and our peak RSS, and our
MB/s on the GID 7.1 variant of the smallest size. Not a test; record the figures in
bench/README.md. Usage: ``python bench/import_nas.py [--mb 100,1000]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_vector import (  # noqa: E402
    KATASTER,
    fresh_database,
    kataster_env,
    ogr2ogr_nas,
    run_measured,
)

from pipeline.db import Database  # noqa: E402
from pipeline.embedded import EmbeddedCluster  # noqa: E402
from pipeline.synthetic.nas import write  # noqa: E402

BYTES_PER_PARCEL = {False: 42_000, True: 11_500}   # generated GID 6.0 (realistic, lean)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", default="100,1000")
    ap.add_argument("--anchor-max-mb", type=float, default=float("inf"),
                    help="Run ogr2ogr only on files up to this size (e.g. 1000 with --mb "
                         "100,11500: the peak memory of a 1,000,000-parcel import without "
                         "ogr2ogr's half hour on it).")
    ap.add_argument("--lean", action="store_true",
                    help="Lean extracts (parcels, buildings, addresses, owners only).")
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    cluster = EmbeddedCluster(work / "state_nas")
    cluster.up()
    admin = cluster.url("postgres", "admin")
    rows = []
    try:
        sizes = [int(s) for s in args.mb.split(",")]
        for k, mb in enumerate(sizes):
            for version in (["6.0", "7.1"] if k == 0 else ["6.0"]):
                n = int(mb * 1e6 / BYTES_PER_PARCEL[args.lean])
                path = work / f"nas_{version}_{n}{'_lean' if args.lean else ''}.xml"
                if not path.exists():
                    summary = write(n, path, version=version, seed=1, lean=args.lean)
                    print(f"generated GID {version}: {n:,} parcels, {summary['objects']:,} "
                          f"objects, {path.stat().st_size / 1e6:.0f} MB", flush=True)
                size_mb = path.stat().st_size / 1e6
                ours_url = fresh_database(admin, "bench_nas_ours")
                Database(ours_url).prepare()
                env = kataster_env(ours_url, work / "s3")
                secs, rss, out = run_measured([str(KATASTER), "-q", "import", str(path),
                                               "--no-validate", "--json"], env)
                objects = sum(json.loads(out)["objects"].values())
                row = {"version": version, "mb": size_mb, "objects": objects, "ours_s": secs,
                       "ours_rss": rss}
                if version == "6.0" and size_mb <= args.anchor_max_mb:
                    row["ogr_s"] = ogr2ogr_nas(admin, "bench_nas_ogr", path)
                rows.append(row)
                line = (f"GID {version} {size_mb:7.0f} MB, {objects:>10,} objects: kataster "
                        f"{size_mb / secs:6.1f} MB/s {objects / secs:9,.0f} obj/s ({secs:6.1f} s), "
                        f"peak RSS {rss:,.0f} MB")
                if "ogr_s" in row:
                    line += (f"; ogr2ogr {size_mb / row['ogr_s']:6.1f} MB/s "
                             f"{objects / row['ogr_s']:9,.0f} obj/s ({row['ogr_s']:6.1f} s); "
                             f"ratio {row['ogr_s'] / secs:.2f}")
                print(line, flush=True)
    finally:
        cluster.destroy()
        shutil.rmtree(work / "s3", ignore_errors=True)
    print("\n| GID | MB | objects | kataster MB/s | kataster obj/s | ogr2ogr MB/s | ratio | peak RSS |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        ogr = f"{r['mb'] / r['ogr_s']:.1f}" if "ogr_s" in r else "-"
        ratio = f"{r['ogr_s'] / r['ours_s']:.2f}" if "ogr_s" in r else "-"
        print(f"| {r['version']} | {r['mb']:.0f} | {r['objects']:,} | {r['mb'] / r['ours_s']:.1f} | "
              f"{r['objects'] / r['ours_s']:,.0f} | {ogr} | {ratio} | {r['ours_rss']:,.0f} MB |")


if __name__ == "__main__":
    main()
