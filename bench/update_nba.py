"""Benchmark: daily NBA portions of about 100 parcels on a generated city, as a user waits for them.

On a generated city (default 100,000 parcels, the generator's lean mode, GeoInfoDok 7.1; the
files are generated once and kept in bench/out) it imports the city into a fresh database and
validates it once, then applies a sequence of NBA portions (``write_nba(sequence=(k, size))``:
disjoint parcels re-sent as complete new versions, each with new versions of its booking, its
address and its building, one day apart), each as a city would: ``kataster import PORTION``
with the default validation after the import, timed as the whole process (start-up included).

Prints per portion: seconds of the import run and of the validation (from the import summary),
the whole process, seconds per changed parcel, growth of the database and of the resolved
ownership history, and peak RSS. The anchors, in the same run: the first import of the city,
per parcel; and a full validation of the state after the last portion (the validation after a
portion looks only where the portion can change findings: pipeline/validation/scope.py).

``--keep`` keeps the database between runs (in the work directory): a later run with
``--keep`` skips the city's import and applies the next portions of the sequence (a city of
1,000,000 parcels takes about half an hour to import on this machine); it prints the first
import's figures as recorded by the run that made it.

Not a test; record the figures in bench/README.md. Usage:
``python bench/update_nba.py [--parcels 100000] [--portions 10] [--size 100] [--realistic]
[--keep]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_vector import KATASTER, fresh_database, kataster_env, run_measured  # noqa: E402

from pipeline.db import Database  # noqa: E402
from pipeline.embedded import EmbeddedCluster  # noqa: E402
from pipeline.synthetic.nas import write, write_nba  # noqa: E402

SIZES = """SELECT pg_database_size(current_database()),
                  pg_total_relation_size('kataster_privat.eigentum_aufgeloest'),
                  (SELECT count(*) FROM kataster_privat.eigentum_aufgeloest)"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--portions", type=int, default=10)
    ap.add_argument("--size", type=int, default=100, help="parcels per portion")
    ap.add_argument("--realistic", action="store_true",
                    help="the full type mix of a real extract instead of the lean mode")
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the database; with one kept, apply the next portions to it")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    lean = not args.realistic
    tag = f"{args.parcels}{'_lean' if lean else ''}"
    city = work / f"nba_city_7.1_{tag}.xml"
    if not city.exists():
        summary = write(args.parcels, city, version="7.1", seed=1, lean=lean)
        print(f"generated the city: {args.parcels:,} parcels, {summary['objects']:,} objects,"
              f" {city.stat().st_size / 1e6:,.0f} MB", flush=True)
    cluster = EmbeddedCluster(work / f"state_nba_{tag}" if args.keep else work / "state_nba")
    kept = work / f"kept_{tag}.json"        # the first import's figures and the next portion
    try:
        cluster.up()
        if args.keep and kept.exists():
            state = json.loads(kept.read_text())
            url = cluster.url("bench_nba", "admin")
            base = state["base"]
            print(f"kept database: the city was imported in {base['seconds']:.1f} s"
                  f" ({state['imported']}); {state['next']} portions applied since", flush=True)
        else:
            url = fresh_database(cluster.url("postgres", "admin"), "bench_nba")
            state = None
        env = kataster_env(url, work / "s_nba", KATASTER_IMPORT_ACKNOWLEDGEMENT_DIR=str(
            work / "s_nba" / "quittierungen"))
        Database(url).prepare()
        if state is None:
            secs, rss, out = run_measured([str(KATASTER), "-q", "import", str(city),
                                           "--no-validate", "--json"], env)
            base = json.loads(out)
            print(f"city: {city.stat().st_size / 1e6:,.0f} MB imported in {secs:.1f} s "
                  f"({secs / args.parcels * 1000:.2f} ms per parcel), peak RSS {rss:,.0f} MB",
                  flush=True)
            vsecs, _, _ = run_measured([str(KATASTER), "-q", "validate", "--json"], env)
            print(f"city validated in {vsecs:.1f} s", flush=True)
            state = {"base": base, "imported": datetime.now().isoformat(timespec="minutes"),
                     "next": 0}
            if args.keep:
                kept.write_text(json.dumps(state))
        portions = []
        for k in range(state["next"], state["next"] + args.portions):
            path = work / f"nba_portion_7.1_{tag}_{args.size}_{k}.xml"
            if not path.exists():
                write_nba(args.parcels, path, version="7.1", seed=1, lean=lean,
                          sequence=(k, args.size))
            portions.append(path)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
            before = conn.execute(SIZES).fetchone()
        print(f"database {before[0] / 1e6:,.0f} MB, resolved ownership {before[1] / 1e6:,.1f} MB"
              f" ({before[2]:,} rows)\n", flush=True)
        rows = []
        for k, path in enumerate(portions, start=state["next"]):
            secs, rss, out = run_measured([str(KATASTER), "-q", "import", str(path), "--json"],
                                          env)
            summary = json.loads(out)
            if summary["status"] != "committed":
                raise SystemExit(f"portion {k}: {summary['status']}")
            with psycopg.connect(url, autocommit=True) as conn:
                after = conn.execute(SIZES).fetchone()
            changed = sum(m.get("inserted", 0) + m.get("closed", 0)
                          for m in summary["merge"].values())
            row = {"k": k, "total": secs, "import": summary["seconds"],
                   "validation": summary["validation"]["seconds"], "rss": rss,
                   "objects": changed, "db": (after[0] - before[0]) / 1e6,
                   "owners": (after[1] - before[1]) / 1e6, "owner_rows": after[2] - before[2]}
            rows.append(row)
            before = after
            if args.keep:
                kept.write_text(json.dumps({**state, "next": k + 1}))
            print(f"portion {k}: {secs:5.1f} s (import {row['import']:.1f} s, validation "
                  f"{row['validation']:.1f} s), {secs / args.size * 1000:.0f} ms per parcel, "
                  f"{changed:,} versions inserted or closed, database +{row['db']:.1f} MB, "
                  f"ownership history +{row['owners']:.2f} MB ({row['owner_rows']:+,} rows), "
                  f"peak RSS {rss:,.0f} MB", flush=True)
        # The anchor of the validation after each portion: a full validation of the same
        # state, in the same run (what every portion cost before it was scoped).
        fsecs, _, out = run_measured([str(KATASTER), "-q", "validate", "--json"], env)
        full = json.loads(out)
        print(f"anchor: full validation of the same state {fsecs:.1f} s (process), "
              f"{full['seconds']:.1f} s (validation)", flush=True)
    finally:
        if args.keep:
            cluster.stop()
        else:
            cluster.destroy()
            shutil.rmtree(work / "s_nba", ignore_errors=True)
    n = len(rows)
    mean = {key: sum(r[key] for r in rows) / n for key in ("total", "import", "validation",
                                                           "db", "owners", "owner_rows")}
    print(f"\n{args.parcels:,} parcels ({'lean' if lean else 'realistic'}), {n} portions of "
          f"{args.size} parcels, city imported in {base['seconds']:.1f} s")
    print("| per portion | mean | max |")
    print("| --- | ---: | ---: |")
    for key, label, unit in (("total", "whole process", "s"), ("import", "import run", "s"),
                             ("validation", "validation", "s"), ("db", "database growth", "MB"),
                             ("owners", "ownership history growth", "MB"),
                             ("owner_rows", "ownership history rows", "")):
        print(f"| {label} | {mean[key]:,.2f} {unit} | {max(r[key] for r in rows):,.2f} {unit} |")
    print(f"| anchor: full validation of the same state | {full['seconds']:,.2f} s | - |")
    print(f"| ratio (full validation / validation after a portion) | "
          f"{full['seconds'] / mean['validation']:,.1f} | - |")
    print(f"| seconds per changed parcel | {mean['total'] / args.size:.3f} | - |")
    print(f"| anchor: first import, seconds per parcel | {base['seconds'] / args.parcels:.5f} | - |")
    print(f"| ratio (portion per parcel / first import per parcel) | "
          f"{mean['total'] / args.size / (base['seconds'] / args.parcels):,.0f} | - |")
    print(f"| peak RSS | - | {max(r['rss'] for r in rows):,.0f} MB |")


if __name__ == "__main__":
    main()
