"""Benchmark: validation on generated parcels with planted errors, against plain PostGIS SQL.

For each size (default 100,000 and 1,000,000 parcels) it builds the Mülheim-like cadastre,
plants a known set of errors (overlaps, gaps, holes, invalid rings, duplicate ids, area
deviations, wrong districts, malformed ids, slivers), imports it, then in the same run:

* ``kataster validate --rules geometry.invalid,coverage.overlap`` and, on the same database,
  the same two checks in plain PostGIS SQL (``ST_IsValid``; a self-join with ``&&`` and
  ``ST_Relate(a, b, '2********')``): parcels/s for both and the ratio;
* the full rule set: seconds, recall of the planted errors (must be 100 %), false findings on
  the clean part (must be 0).

Owner errors (unbooked parcels, bad shares) are planted and measured by the NAS variant
(``--nas``), which imports a generated NAS extract with owners and plants them there.
Not a test; record the figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyogrio
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_vector import KATASTER, fresh_database, kataster_env, run_measured  # noqa: E402

from pipeline.db import Database  # noqa: E402
from pipeline.embedded import EmbeddedCluster  # noqa: E402
from pipeline.synthetic.city import build, plant_errors  # noqa: E402

SQL_ANCHOR = """
SELECT (SELECT count(*) FROM kataster.ax_flurstueck WHERE endet IS NULL AND NOT ST_IsValid(geom)),
       (SELECT count(*) FROM kataster.ax_flurstueck a JOIN kataster.ax_flurstueck b
          ON a.geom && b.geom AND a.gml_id < b.gml_id
         WHERE a.endet IS NULL AND b.endet IS NULL AND ST_IsValid(a.geom) AND ST_IsValid(b.geom)
           AND ST_Relate(a.geom, b.geom, '2********'))
"""


def sql_anchor(conn, timeout):
    """Run the anchor as a competent PostGIS user would: statistics fresh, and without bitmap
    scans. With them PostgreSQL 15 plans the self-join as a bitmap AND of the GiST look-up
    with a range scan of the index on current parcels' gml_id (``a.gml_id < b.gml_id``) for
    every parcel: 388 s for 5,000 parcels of the 1,000,000-parcel city instead of 0.33 s
    (measured 2026-12-03). Figures recorded before that date were taken with that plan.
    Returns (seconds, invalid, overlaps), or (timeout, None, None) if stopped."""
    import psycopg

    conn.execute("ANALYZE kataster.ax_flurstueck")
    conn.execute("SET enable_bitmapscan = off")
    conn.execute(f"SET statement_timeout = '{timeout}s'")
    t = time.monotonic()
    try:
        invalid, overlaps = conn.execute(SQL_ANCHOR).fetchone()
        return time.monotonic() - t, invalid, overlaps
    except psycopg.errors.QueryCanceled:
        conn.rollback()
        return float(timeout), None, None   # a lower bound: reported as "> N s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--anchor-timeout", type=int, default=180,
                    help="Seconds the SQL anchor may run before it is reported as '> N s'.")
    ap.add_argument("--nas", type=int, default=0, metavar="PARCELS",
                    help="Also run the owner variant on a generated NAS extract of this many "
                         "parcels (e.g. 10000).")
    ap.add_argument("--keep", action="store_true",
                    help="Keep the cluster and the imported NAS database for the next run "
                         "(importing 1,000,000 NAS parcels takes most of an hour); the planted "
                         "owner errors are undone after each run.")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    cluster = EmbeddedCluster(work / "state_val")
    cluster.up()
    admin = cluster.url("postgres", "admin")
    rows, nas_rows = [], []
    try:
        for n in [int(s) for s in args.sizes.split(",") if s]:
            path = work / f"planted_{n}.gpkg"
            expected_path = path.with_suffix(".json")
            if not path.exists():
                t = time.monotonic()
                clean = build(n, seed=1)
                layers, expected = plant_errors(clean, per_kind=10, seed=1)
                for name, gdf in layers.items():
                    pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG",
                                            append=path.exists())
                # Every parcel the planting touched (changed, dropped or added): findings
                # there are explained; anything else counts as a false finding.
                a = clean["Flurstueck"].set_index("idflurst")
                b = layers["Flurstueck"].set_index("idflurst")
                common = a.index.intersection(b.index)
                attrs = [c for c in a.columns if c != "geometry"]
                changed = common[(a.loc[common, attrs].fillna("").astype(str)
                                  != b.loc[common, attrs].fillna("").astype(str)).any(axis=1)
                                 | ~shapely.equals_exact(a.loc[common].geometry.values,
                                                         b.loc[common].geometry.values, 0)]
                touched = {g: a.geometry[g] for g in changed.union(a.index.difference(b.index))}
                touched |= {g: b.geometry[g] for g in b.index.difference(a.index)}
                victims = {g: shapely.to_wkt(geom) for g, geom in touched.items()}
                expected_path.write_text(json.dumps({"expected": expected, "victims": victims}))
                print(f"built {n:,} parcels with {len(expected)} planted errors in "
                      f"{time.monotonic() - t:.0f} s", flush=True)
            planted = json.loads(expected_path.read_text())
            url = fresh_database(admin, "bench_val")
            Database(url).prepare()
            env = kataster_env(url, work / "s4")
            run_measured([str(KATASTER), "-q", "import", str(path), "--no-validate"], env)
            two_s, _, _ = run_measured([str(KATASTER), "-q", "validate", "--rules",
                                        "geometry.invalid,coverage.overlap"], env)
            import psycopg

            with psycopg.connect(url) as conn:
                sql_s, invalid, overlaps = sql_anchor(conn, args.anchor_timeout)
            full_s, rss, out = run_measured([str(KATASTER), "-q", "validate", "--json"], env)
            found = json.loads(out)["findings"]
            hits = 0
            for rule, gml_id in planted["expected"]:
                hits += any(f["rule"] == rule and (f["object"] == gml_id or gml_id in f["related"])
                            for f in found)
            near = shapely.union_all([shapely.from_wkt(w).buffer(3) for w in
                                      planted["victims"].values()])
            touched = set(planted["victims"])
            # A finding is explained if it lies at a planted error or names a planted parcel
            # (e.g. the partner of a planted duplicate identifier); coverage.precision is the
            # run's count of precision dust, a summary without a place.
            false = [f for f in found if f["rule"] != "coverage.precision"
                     and not (f["location"] and near.contains(shapely.Point(f["location"])))
                     and not ({f["object"], *f["related"]} & touched)]
            (work / f"findings_{n}.json").write_text(json.dumps(found))
            row = dict(n=n, two_s=two_s, sql_s=sql_s, full_s=full_s, rss=rss,
                       recall=hits / len(planted["expected"]), false=len(false),
                       findings=len(found), sql_invalid=invalid, sql_overlaps=overlaps)
            rows.append(row)
            more = ">" if invalid is None else ""
            print(f"{n:>9,} parcels: geometry.invalid+coverage.overlap kataster {n / two_s:9,.0f}/s "
                  f"({two_s:.1f} s incl. start), PostGIS SQL {n / sql_s:9,.0f}/s "
                  f"({more}{sql_s:.1f} s), ratio {more}{sql_s / two_s:.2f}; full rule set "
                  f"{full_s:.1f} s, peak RSS "
                  f"{rss:,.0f} MB; recall {row['recall']:.0%}, false findings {len(false)} "
                  f"({len(found)} findings)", flush=True)
        if args.nas:
            nas_rows.append(owner_variant(args.nas, admin, work, args.keep))
    finally:
        if not args.keep:
            cluster.destroy()
        shutil.rmtree(work / "s4", ignore_errors=True)
    if nas_rows:
        print("\n| NAS parcels | objects | planted owner errors | full rule set (--private) | recall"
              " | false |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in nas_rows:
            print(f"| {r['parcels']:,} | {r['objects']:,} | {r['planted']} | {r['full_s']:.1f} s |"
                  f" {r['recall']:.0%} | {r['false']} |")
    print("\n| parcels | kataster 2 rules | PostGIS SQL | ratio | full rule set | recall | false |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        more = ">" if r["sql_invalid"] is None else ""
        print(f"| {r['n']:,} | {r['two_s']:.1f} s | {more}{r['sql_s']:.1f} s | "
              f"{more}{r['sql_s'] / r['two_s']:.2f} | {r['full_s']:.1f} s | {r['recall']:.0%} | "
              f"{r['false']} |")


def kept_database(admin, name):
    """The URL of a kept benchmark database holding a committed import, else None."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return None
    parts = urlsplit(admin)
    url = urlunsplit(parts._replace(path="/" + name))
    with psycopg.connect(url) as conn:
        done = conn.execute("SELECT to_regclass('kataster.import_run') IS NOT NULL").fetchone()[0] \
            and conn.execute("SELECT 1 FROM kataster.import_run WHERE importer = 'nas'"
                             " AND status = 'committed'").fetchone()
    return url if done else None


def owner_variant(n, admin, work, keep=False):
    """Owner errors: a generated GID 6.0 extract with the full ownership chain, imported, then
    10 parcels unbooked (``ist_gebucht`` removed) and 10 sheets with shares no longer adding up
    to 1 (one Namensnummer's numerator raised), planted in the stored data in one transaction.
    The full rule set runs with ``--private``; recall counts planted parcels/sheets found by
    ``owner.unbooked``/``owner.shares``; a finding naming no planted object (nor the booking
    of an unbooked parcel, which then reaches no parcel) is false.
    """
    import psycopg

    from pipeline.synthetic.nas import write

    path = work / f"nas_6.0_{n}.xml"
    if not path.exists():
        write(n, path, version="6.0", seed=1, lean=True)   # as measured before
    name = f"bench_val_nas_{n}"
    url = kept_database(admin, name) if keep else None
    if url is None:
        url = fresh_database(admin, name)
        Database(url).prepare()
    env = kataster_env(url, work / "s4")
    summary = work / f"{name}.json"
    if not (keep and summary.exists() and kept_database(admin, name)):
        _, _, out = run_measured([str(KATASTER), "-q", "import", str(path), "--no-validate",
                                  "--json"], env)
        summary.write_text(out)
    objects = sum(json.loads(summary.read_text())["objects"].values())
    with psycopg.connect(url) as conn:
        unbooked = conn.execute(
            "SELECT gml_id, ist_gebucht FROM kataster.ax_flurstueck WHERE endet IS NULL"
            " AND ist_gebucht IS NOT NULL ORDER BY md5(gml_id) LIMIT 10").fetchall()
        conn.execute("UPDATE kataster.ax_flurstueck SET ist_gebucht = NULL WHERE gml_id = ANY(%s)",
                     ([g for g, _ in unbooked],))
        # Sheets whose top-level Namensnummern carry shares that add up to 1.
        sheets = conn.execute(
            "SELECT ist_bestandteil_von, min(gml_id) FROM kataster_privat.ax_namensnummer"
            " WHERE endet IS NULL AND anteil_zaehler IS NOT NULL"
            " AND laufende_nummer_din1421 LIKE '%%.00.00.00.00'"
            " GROUP BY 1 HAVING count(*) >= 2 ORDER BY md5(ist_bestandteil_von) LIMIT 10").fetchall()
        conn.execute("UPDATE kataster_privat.ax_namensnummer SET anteil_zaehler = anteil_zaehler + 1"
                     " WHERE gml_id = ANY(%s)", ([g for _, g in sheets],))
        all_names = {r[0] for r in conn.execute(
            "SELECT gml_id FROM kataster_privat.ax_namensnummer WHERE ist_bestandteil_von = ANY(%s)",
            ([s for s, _ in sheets],))}
        # Bookings that reached parcels only through an unbooked one (directly or by `an`).
        lost = {r[0] for r in conn.execute(
            "WITH RECURSIVE r(id) AS (SELECT unnest(%s::text[]) UNION SELECT b.gml_id FROM"
            " kataster_privat.ax_buchungsstelle b JOIN r ON r.id = ANY(b.an)) SELECT id FROM r",
            ([b for _, bs in unbooked for b in bs],))}
    expected = [("owner.unbooked", g) for g, _ in unbooked] + \
        [("owner.shares", s) for s, _ in sheets]
    touched = {g for g, _ in unbooked} | lost | {s for s, _ in sheets} | all_names
    try:
        full_s, rss, out = run_measured([str(KATASTER), "-q", "validate", "--private", "--json"],
                                        env)
    finally:
        with psycopg.connect(url) as conn:   # undo the planting: a kept database stays clean
            for gid, gebucht in unbooked:
                conn.execute("UPDATE kataster.ax_flurstueck SET ist_gebucht = %s WHERE gml_id = %s",
                             (gebucht, gid))
            conn.execute("UPDATE kataster_privat.ax_namensnummer"
                         " SET anteil_zaehler = anteil_zaehler - 1 WHERE gml_id = ANY(%s)",
                         ([g for _, g in sheets],))
    found = json.loads(out)["findings"]
    hits = sum(any(f["rule"] == rule and (f["object"] == g or g in f["related"]) for f in found)
               for rule, g in expected)
    false = [f for f in found if not ({f["object"], *f["related"]} & touched)]
    (work / f"findings_nas_{n}.json").write_text(json.dumps(found))
    row = dict(parcels=n, objects=objects, planted=len(expected), full_s=full_s,
               recall=hits / len(expected), false=len(false))
    print(f"NAS {n:,} parcels ({objects:,} objects): {len(expected)} planted owner errors, full rule"
          f" set --private {full_s:.1f} s, peak RSS {rss:,.0f} MB; recall {row['recall']:.0%},"
          f" false findings {len(false)} ({len(found)} findings)", flush=True)
    for f in false[:10]:
        print(f"  false: {f['rule']} {f['object']} {f['message'][:100]}", flush=True)
    return row


if __name__ == "__main__":
    main()
