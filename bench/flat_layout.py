"""Benchmark: a delivery without a real Flur structure (the daily-updates issue, point 5).

Generates (once, kept in the work directory) an ALKIS-vereinfacht GeoPackage whose parcels all
lie in one Gemarkung of 20 Fluren, bands of the grid's rows (``build(..., layout="flat")``:
50,000 parcels per Flur at 1,000,000), without district boundaries, so that every Flur and
Gemarkung map is derived from the parcels. Then, in the same run and on the same cluster:

* ``kataster -v import FILE --no-validate`` into a fresh database, its log read for the time of
  staging and of the derived maps (from "merged at" to "derived maps refreshed at"); goal:
  the derived maps within 2x the staging time;
* ``ogr2ogr -f PostgreSQL`` of the same file (the load alone, as an anchor for staging);
* ``kataster validate --rules geometry.invalid,coverage.overlap`` (interpreter start included)
  against the same two checks in plain PostGIS SQL (``ST_IsValid``; a self-join with ``&&``
  and ``ST_Relate(a, b, '2********')``, planned without bitmap scans: see
  ``validate.sql_anchor``); goal: at least 4x the SQL.

Usage: ``python bench/flat_layout.py [--parcels 1000000] [--workdir DIR]``. Not a test: it
asserts nothing; record the figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_vector import (  # noqa: E402
    KATASTER,
    fresh_database,
    kataster_env,
    ogr2ogr_load,
    run_measured,
)
from validate import sql_anchor  # noqa: E402

from pipeline.db import Database  # noqa: E402
from pipeline.embedded import EmbeddedCluster  # noqa: E402
from pipeline.synthetic.city import generate  # noqa: E402


def logged(pattern, text):
    found = re.search(pattern, text)
    return float(found.group(1)) if found else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--anchor-timeout", type=int, default=600,
                    help="Seconds the SQL anchor may run before it is reported as '> N s'.")
    ap.add_argument("--keep", action="store_true",
                    help="Keep the cluster and the imported database (for profiling).")
    args = ap.parse_args()
    n = args.parcels
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"flat_{n}.gpkg"
    if not path.exists():
        t = time.monotonic()
        summary = generate(n, path, fmt="gpkg", seed=1, layout="flat")
        print(f"generated {n:,} parcels in {summary['gemarkungen']} Gemarkung, "
              f"{summary['fluren']} Fluren in {time.monotonic() - t:.0f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)", flush=True)
    cluster = EmbeddedCluster(work / "state_flat")
    cluster.up()
    admin = cluster.url("postgres", "admin")
    try:
        url = fresh_database(admin, "bench_flat")
        Database(url).prepare()
        env = kataster_env(url, work / "s_flat")
        # The log goes to stderr: run through a shell that folds it into stdout.
        import_s, import_rss, log = run_measured(
            ["sh", "-c", f'"{KATASTER}" -v import --no-validate "{path}" 2>&1'], env)
        staged = logged(r"staged \S+ objects in ([\d.]+) s", log)
        merged = logged(r"merged at ([\d.]+) s", log)
        derived = logged(r"derived maps refreshed at ([\d.]+) s", log) - merged
        with psycopg.connect(url) as conn:
            count = conn.execute("SELECT count(*) FROM kataster.flurstueck").fetchone()[0]
            fluren = conn.execute("SELECT count(*) FROM kataster.flur_karte"
                                  " WHERE herkunft = 'abgeleitet'").fetchone()[0]
        print(f"import of {count:,} parcels ({fluren} derived Flur maps): {import_s:.1f} s, "
              f"staging {staged:.1f} s, derived maps {derived:.1f} s "
              f"(ratio to staging {derived / staged:.2f}), peak RSS {import_rss:,.0f} MB",
              flush=True)

        _, ogr_s, _ = ogr2ogr_load(admin, "bench_flat_ogr", path)
        print(f"ogr2ogr load of the same file: {ogr_s:.1f} s", flush=True)

        two_s, two_rss, _ = run_measured([str(KATASTER), "-q", "validate", "--rules",
                                          "geometry.invalid,coverage.overlap"], env)
        with psycopg.connect(url) as conn:
            sql_s, invalid, _ = sql_anchor(conn, args.anchor_timeout)
        more = ">" if invalid is None else ""
        print(f"geometry.invalid+coverage.overlap: kataster {two_s:.1f} s (peak RSS "
              f"{two_rss:,.0f} MB), PostGIS SQL {more}{sql_s:.1f} s, ratio "
              f"{more}{sql_s / two_s:.2f}", flush=True)
    finally:
        if not args.keep:
            cluster.destroy()
            shutil.rmtree(work / "s_flat", ignore_errors=True)
    print("\n| parcels | import | staging | derived maps | maps / staging | ogr2ogr load |"
          " 2 rules | PostGIS SQL | ratio |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {count:,} | {import_s:.1f} s | {staged:.1f} s | {derived:.1f} s | "
          f"{derived / staged:.2f} | {ogr_s:.1f} s | {two_s:.1f} s | {more}{sql_s:.1f} s | "
          f"{more}{sql_s / two_s:.2f} |")


if __name__ == "__main__":
    main()
