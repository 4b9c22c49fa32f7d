"""kataster repair (explicit, lossless) and kataster changes (between runs)."""

import json

import geopandas as gpd
import jsonschema
import pyogrio
import shapely
from conftest import kataster, query

from pipeline.synthetic.city import build
from schemas import json_schema


def _write(layers, path):
    for name, gdf in layers.items():
        pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG", append=path.exists())


def test_repair_is_explicit_and_keeps_the_delivered_geometry(cli_env, db, tmp_path):
    layers = build(300, seed=12)
    parcels = layers["Flurstueck"]
    # A spike (repairable without changing the area) and a bow-tie (would split: refused).
    poly = shapely.get_geometry(parcels.geometry.iat[10], 0)
    c = list(poly.exterior.coords)
    spike = shapely.MultiPolygon([shapely.Polygon([c[0], (c[0][0] + 0.0, c[0][1] - 3.0)] + c[:])])
    assert not spike.is_valid
    x0, y0, x1, y1 = parcels.geometry.iat[20].bounds
    bowtie = shapely.MultiPolygon([shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])])
    parcels.loc[10, "geometry"] = spike
    parcels.loc[20, "geometry"] = bowtie
    path = tmp_path / "invalid.gpkg"
    _write(layers, path)
    kataster("import", path, env=cli_env, check=True)
    fsk_before = query(db, "SELECT count(DISTINCT flurstueckskennzeichen), count(*)"
                           " FROM kataster.flurstueck")[0]
    dry = json.loads(kataster("repair", "--json", env=cli_env, check=True).stdout)
    jsonschema.validate(dry, json_schema("repair-summary"))
    by_id = {p["gml_id"]: p for p in dry["proposals"]}
    spike_id, bowtie_id = parcels.at[10, "idflurst"], parcels.at[20, "idflurst"]
    assert by_id[spike_id]["ok"] and not by_id[bowtie_id]["ok"]
    assert "split the parcel into 2 pieces" in by_id[bowtie_id]["reason"]
    assert not dry["applied"]
    assert query(db, "SELECT count(*) FROM kataster.flurstueck WHERE NOT ST_IsValid(geom)")[0][0] == 2
    done = json.loads(kataster("repair", "--yes", "--json", env=cli_env, check=True).stdout)
    assert done["applied"] and done["run_id"]
    valid, area = query(db, "SELECT ST_IsValid(geom), geometrie_flaeche FROM kataster.flurstueck"
                            " WHERE gml_id = %s", (spike_id,))[0]
    assert valid and abs(area - spike.area) < 1e-6
    delivered, a_del, a_rep = query(db, "SELECT ST_AsBinary(delivered), area_delivered,"
                                        " area_repaired FROM kataster.repair_log")[0]
    assert shapely.equals_exact(shapely.from_wkb(bytes(delivered)), spike, 1e-9)
    assert abs(a_del - a_rep) < 1e-6
    statuses = dict(query(db, "SELECT object_id, status FROM kataster.finding"
                              " WHERE rule = 'geometry.invalid'"))
    assert statuses == {spike_id: "fixed", bowtie_id: "open"}
    assert query(db, "SELECT count(DISTINCT flurstueckskennzeichen), count(*)"
                     " FROM kataster.flurstueck")[0] == fsk_before       # nothing dropped
    # Exports show the repaired geometry.
    out = tmp_path / "export.gpkg"
    kataster("export", "gpkg", "--layer", "flurstueck", "--out", out, env=cli_env, check=True)
    exported = gpd.read_file(out, layer="flurstueck", engine="pyogrio").set_index("gml_id")
    assert exported.geometry[spike_id].is_valid


def test_repair_updates_the_derived_district_maps(cli_env, db, tmp_path):
    # Without KatasterBezirk the Flur and Gemarkung maps are unions of the valid parcels; a
    # repaired parcel is valid and joins them in the repair's own transaction.
    layers = build(200, seed=14)
    del layers["KatasterBezirk"]
    parcels = layers["Flurstueck"]
    poly = shapely.get_geometry(parcels.geometry.iat[10], 0)
    c = list(poly.exterior.coords)
    parcels.loc[10, "geometry"] = shapely.MultiPolygon(
        [shapely.Polygon([c[0], (c[0][0], c[0][1] - 3.0)] + c[:])])
    path = tmp_path / "spike.gpkg"
    _write(layers, path)
    kataster("import", path, env=cli_env, check=True)
    inside = ("SELECT (SELECT count(*) FROM kataster.{} k WHERE ST_Covers(k.geom,"
              " ST_PointOnSurface(f.geom))) FROM kataster.ax_flurstueck f WHERE gml_id = %s")
    spike_id = parcels.at[10, "idflurst"]
    assert [query(db, inside.format(t), (spike_id,))[0][0]
            for t in ("flur_karte", "gemarkung_karte")] == [0, 0]
    kataster("repair", "--yes", env=cli_env, check=True)
    assert [query(db, inside.format(t), (spike_id,))[0][0]
            for t in ("flur_karte", "gemarkung_karte")] == [1, 1]
    # The Gemarkung map is the union of the Flur map (0008), the same as from the parcels.
    assert query(db, "SELECT bool_and(ST_Equals(g.geom, u.geom)) FROM kataster.gemarkung_karte g"
                     " JOIN (SELECT land, gemarkungsnummer, ST_Union(geom) AS geom"
                     "       FROM kataster.ax_flurstueck WHERE endet IS NULL"
                     "       GROUP BY 1, 2) u USING (land, gemarkungsnummer)")[0][0]


def test_changes_between_runs(cli_env, db, tmp_path):
    layers = build(400, seed=13)
    first = tmp_path / "first.gpkg"
    _write(layers, first)
    r1 = json.loads(kataster("import", first, "--json", env=cli_env, check=True).stdout)
    parcels = layers["Flurstueck"].copy()
    gem = parcels["gemaschl"].iat[0]
    idx = parcels.index[parcels["gemaschl"] == gem]
    area_id, geom_id, gone_id = (parcels.at[i, "idflurst"] for i in idx[:3])
    parcels.loc[idx[0], "flaeche"] += 3
    parcels.loc[idx[1], "geometry"] = shapely.MultiPolygon([shapely.get_geometry(
        shapely.set_precision(parcels.at[idx[1], "geometry"], 0.01), 0)])
    new = parcels.loc[[idx[3]]].copy()
    new["idflurst"] = "DENW36ALNEW00001"
    new["flstkennz"] = new["flstkennz"].str.slice(0, 9) + "99999______"
    parcels = parcels.drop(index=idx[2])
    layers["Flurstueck"] = gpd.GeoDataFrame(
        __import__("pandas").concat([parcels, new], ignore_index=True), crs=25832)
    second = tmp_path / "second.gpkg"
    _write(layers, second)
    r2 = json.loads(kataster("import", second, "--json", env=cli_env, check=True).stdout)
    assert r2["changes"] == {"since_run": r1["run_id"], "hinzugefuegt": 1, "entfernt": 1,
                             "geometrie": 1, "flaeche": 1}
    out = tmp_path / "changes.gpkg"
    proc = kataster("changes", r1["run_id"], r2["run_id"], "--json", "--out", out, env=cli_env)
    data = json.loads(proc.stdout)
    jsonschema.validate(data, json_schema("changes"))
    kinds = {(c["art"], c["gml_id"]) for c in data["changes"]}
    assert kinds == {("flaeche", area_id), ("geometrie", geom_id), ("entfernt", gone_id),
                     ("hinzugefuegt", "DENW36ALNEW00001")}
    assert "eigentum" not in data["counts"]
    assert len(gpd.read_file(out, layer="aenderungen", engine="pyogrio")) == 4
    bad = kataster("changes", r2["run_id"], r1["run_id"], env=cli_env)
    assert bad.returncode == 2 and "earlier run" in bad.stderr
