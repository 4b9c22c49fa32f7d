"""Merge semantics of the loading core (DESIGN.md, "Merge semantics")."""

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from conftest import query

from importers.base import Batch
from pipeline.loader import Loader
from pipeline.runs import run_import


def _write(gdf_layers, path):
    for name, gdf in gdf_layers.items():
        pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG", append=path.exists())


def _layers(path):
    return {name: gpd.read_file(path, layer=name) for name, _ in pyogrio.list_layers(path)}


def counts(db):
    return query(db, "SELECT count(*) FILTER (WHERE endet IS NULL), count(*)"
                     " FROM kataster.ax_flurstueck")[0]


def test_flat_redelivery(db, config, sample_gpkg, tmp_path):
    analysed = "SELECT count(*) FROM pg_stats WHERE schemaname = 'kataster'" \
               " AND tablename = 'ax_flurstueck'"
    assert query(db, analysed)[0][0] == 0               # no statistics yet
    first = run_import(db, config, [sample_gpkg])
    assert first["status"] == "committed"
    n = first["objects"]["AX_Flurstueck"]
    assert counts(db) == (n, n)
    # The changed tables are analysed within the run (what follows is planned on the data).
    assert query(db, analysed)[0][0] > 0
    t1 = query(db, "SELECT max(beginnt) FROM kataster.ax_flurstueck")[0][0]

    # The same file again: already imported, nothing changes.
    again = run_import(db, config, [sample_gpkg])
    assert again["status"] == "skipped" and again["already_imported_in_run"] == first["run_id"]
    assert counts(db) == (n, n)

    # A re-delivery: one parcel changed, one missing, the rest unchanged.
    layers = _layers(sample_gpkg)
    parcels = layers["Flurstueck"]
    gem = parcels["gemaschl"].iloc[0]
    same_gem = parcels.index[parcels["gemaschl"] == gem]
    changed_id = parcels.loc[same_gem[0], "idflurst"]
    gone_id = parcels.loc[same_gem[1], "idflurst"]
    parcels.loc[same_gem[0], "flaeche"] += 5
    parcels = parcels.drop(index=same_gem[1])
    layers["Flurstueck"] = parcels
    redelivery = tmp_path / "redelivery.gpkg"
    _write(layers, redelivery)
    res = run_import(db, config, [redelivery])
    m = res["merge"]["kataster.ax_flurstueck"]
    assert (m["inserted"], m["closed"], m["unchanged"]) == (1, 2, n - 2)
    assert counts(db) == (n - 1, n + 1)
    rows = query(db, "SELECT gml_id, amtliche_flaeche, endet IS NULL FROM kataster.ax_flurstueck"
                     " WHERE gml_id IN (%s, %s) ORDER BY gml_id, beginnt",
                 (changed_id, gone_id))
    by_id = {}
    for gml_id, area, open_ in rows:
        by_id.setdefault(gml_id, []).append((area, open_))
    old_area = by_id[changed_id][0][0]
    assert by_id[changed_id] == [(old_area, False), (old_area + 5, True)]
    assert by_id[gone_id] == [(by_id[gone_id][0][0], False)]

    # The point-in-time function still shows the first state.
    then = query(db, "SELECT count(*), sum(amtliche_flaeche) FROM kataster.flurstueck_am(%s)",
                 (t1,))[0]
    assert then[0] == n
    now = query(db, "SELECT count(*) FROM kataster.flurstueck")[0][0]
    assert now == n - 1

    # A delivery of one Gemarkung only leaves the other Gemarkungen alone.
    layers_one = {k: v[v["gemaschl"] == gem] if "gemaschl" in v else v for k, v in layers.items()}
    layers_one["KatasterBezirk"] = layers["KatasterBezirk"][layers["KatasterBezirk"]["gemaschl"]
                                                            == gem]
    one = layers_one["Flurstueck"].iloc[:-1]
    layers_one["Flurstueck"] = one
    partial = tmp_path / "one_gemarkung.gpkg"
    _write(layers_one, partial)
    res = run_import(db, config, [partial])
    assert res["merge"]["kataster.ax_flurstueck"]["closed"] == 1
    assert query(db, "SELECT count(*) FROM kataster.flurstueck")[0][0] == n - 2


def test_no_history_replaces(db, config, sample_gpkg, tmp_path):
    run_import(db, config, [sample_gpkg])
    n = counts(db)[0]
    layers = _layers(sample_gpkg)
    layers["Flurstueck"].loc[0, "flaeche"] += 1
    layers["Flurstueck"] = layers["Flurstueck"].drop(index=1)
    changed = tmp_path / "changed.gpkg"
    _write(layers, changed)
    res = run_import(db, config, [changed], history=False)
    assert res["merge"]["kataster.ax_flurstueck"]["closed"] == 2
    assert counts(db) == (n - 1, n - 1)


def _frame(gml_id, beginnt, area, endet=None):
    return pd.DataFrame({
        "gml_id": [gml_id], "beginnt": [beginnt], "endet": [endet],
        "flurstueckskennzeichen": ["05309600100001______"], "land": ["05"],
        "gemarkungsnummer": ["3096"], "flurnummer": [1], "zaehler": [1],
        "amtliche_flaeche": [area],
        "geom": [shapely.box(350000, 5700000, 350010, 5700000 + area / 10)], "src": [f"test:{gml_id}@{beginnt}"]})


def _load(db, frames, history=True):
    with db.connect() as conn:
        run_id, ts = conn.execute("INSERT INTO kataster.import_run (os_user, importer)"
                                  " VALUES ('t', 'test') RETURNING id, started").fetchone()
        loader = Loader(conn, run_id, ts.isoformat(), "test", versioned=True, history=history)
        for f in frames:
            loader.add(Batch("kataster.ax_flurstueck", "AX_Flurstueck", f))
        stats = loader.merge()["kataster.ax_flurstueck"]
        conn.commit()
    return stats


def versions(db, gml_id="DENW36AL00000001"):
    return query(db, "SELECT to_char(beginnt AT TIME ZONE 'UTC', 'YYYY'),"
                     " to_char(endet AT TIME ZONE 'UTC', 'YYYY'), amtliche_flaeche"
                     " FROM kataster.ax_flurstueck WHERE gml_id = %s ORDER BY beginnt", (gml_id,))


def test_versioned_objects(db):
    a = "DENW36AL00000001"
    assert _load(db, [_frame(a, "2020-01-01T00:00:00Z", 100)])["inserted"] == 1
    # Delivered again unchanged (same gml_id and beginnt): kept once.
    assert _load(db, [_frame(a, "2020-01-01T00:00:00Z", 100)])["inserted"] == 0
    # Twice in one delivery: kept once.
    stats = _load(db, [_frame(a, "2021-01-01T00:00:00Z", 110), _frame(a, "2021-01-01T00:00:00Z", 110)])
    assert stats["inserted"] == 1 and stats["closed"] == 1
    assert versions(db) == [("2020", "2021", 100.0), ("2021", None, 110.0)]
    # Two newer versions in one delivery: the older one ends where the newer begins.
    _load(db, [_frame(a, "2023-01-01T00:00:00Z", 130), _frame(a, "2022-01-01T00:00:00Z", 120)])
    assert versions(db) == [("2020", "2021", 100.0), ("2021", "2022", 110.0),
                            ("2022", "2023", 120.0), ("2023", None, 130.0)]


def test_versioned_without_history_replaces(db):
    a = "DENW36AL00000001"
    _load(db, [_frame(a, "2020-01-01T00:00:00Z", 100)], history=False)
    _load(db, [_frame(a, "2021-01-01T00:00:00Z", 110)], history=False)
    assert versions(db) == [("2021", None, 110.0)]


def test_update_reads_what_the_delivery_names(db, config, tmp_path, monkeypatch):
    """The daily-updates issue, point 1: an NBA portion's merge (and what precedes it in the
    run: staging and the checks on the staged data) reads the stored versions of what the
    portion carries or names through indexes; no table it merges into is read whole. Counted
    by PostgreSQL for the run's transaction (pg_stat_xact_user_tables) when the merge is done."""
    from pipeline import runs
    from pipeline.synthetic.nas import write, write_nba

    city, portion = tmp_path / "city.xml", tmp_path / "portion.xml"
    write(3000, city, version="7.1", seed=11)
    write_nba(3000, portion, version="7.1", seed=11, sequence=(0, 20))
    run_import(db, config, [city])
    sizes = dict(query(db, "SELECT schemaname || '.' || relname, n_live_tup"
                           " FROM pg_stat_user_tables"
                           " WHERE schemaname IN ('kataster', 'kataster_privat')"))
    read = {}
    analyze = runs._analyze

    def after_merge(ctx):
        read.update({t: (seq, rows, merged) for t, seq, rows, merged in ctx.conn.execute(
            "SELECT schemaname || '.' || relname, seq_scan, seq_tup_read, n_tup_ins + n_tup_upd"
            " FROM pg_stat_xact_user_tables"
            " WHERE schemaname IN ('kataster', 'kataster_privat')")})
        analyze(ctx)

    monkeypatch.setattr(runs, "_analyze", after_merge)
    summary = run_import(db, config, [portion])
    assert summary["status"] == "committed"
    merged = {t: m["delivered"] + m["closed"] for t, m in summary["merge"].items()
              if m["delivered"] or m["closed"]}
    assert "kataster.ax_flurstueck" in merged
    for table, named in merged.items():
        seq, rows, written = read[table]
        assert written > 0 and sizes[table] > 20 * named, (table, written, sizes[table])
        # A whole read of the table (thousands of rows) would show here.
        assert rows <= 2 * named, (table, seq, rows, sizes[table])
