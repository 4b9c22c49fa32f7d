"""The OGR vector importer: every format, real WFS data, coordinates, and bad input."""

import gzip
import json
import shutil
import zipfile

import geopandas as gpd
import jsonschema
import numpy as np
import pyproj
import pytest
import shapely
from conftest import SHARED, kataster, query

import importers.crs  # noqa: F401 - makes Debian's proj-data grids (BETA2007) visible to PROJ
from pipeline.synthetic.city import build, generate
from schemas import json_schema

WFS_4258 = SHARED / "vereinfacht" / "hellenthal_10_other_flurstuecke_alkis_vereinfacht_2.0.xml"


def import_json(env, *args):
    proc = kataster("import", *args, "--json", env=env)
    data = json.loads(proc.stdout)
    jsonschema.validate(data, json_schema("import-summary"))
    return proc, data


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "fgb", "gml"])
def test_generated_files_in_every_format(fmt, tmp_path, cli_env, db):
    out = tmp_path / ("sample.gpkg" if fmt == "gpkg" else "sample")
    generate(300, out, fmt=fmt, seed=5)
    expected = build(300, seed=5)
    proc, data = import_json(cli_env, out)
    assert proc.returncode == 0, proc.stderr
    assert data["status"] == "committed"
    assert data["objects"] == {"AX_Flurstueck": 300,
                               "AX_Gebaeude": len(expected["GebaeudeBauwerk"]),
                               "AX_Gemarkungsteil_Flur": len(expected["KatasterBezirk"])}
    src = expected["Flurstueck"].set_index("flstkennz")
    got = query(db, "SELECT flurstueckskennzeichen, gml_id, amtliche_flaeche, gemarkung, lage,"
                    " ST_AsBinary(geom) FROM kataster.flurstueck")
    assert len(got) == 300
    for fsk, gml_id, area, gemarkung, lage, wkb in got:
        row = src.loc[fsk]
        assert gml_id == row["idflurst"]
        assert area == row["flaeche"]
        assert gemarkung == row["gemarkung"] and lage == row["lagebeztxt"]
        geom = shapely.from_wkb(bytes(wkb))
        assert shapely.equals_exact(geom.normalize(), row.geometry.normalize(), tolerance=1e-6)
    # Parts of the Flurstückskennzeichen land in their own columns.
    fsk, land, gem, flur, zaehler, nenner = query(
        db, "SELECT flurstueckskennzeichen, land, gemarkungsnummer, flurnummer, zaehler, nenner"
            " FROM kataster.flurstueck WHERE nenner IS NOT NULL LIMIT 1")[0]
    assert (land, gem, f"{flur:03d}", f"{zaehler:05d}", f"{int(nenner):04d}") == (
        fsk[0:2], fsk[2:6], fsk[6:9], fsk[9:14], fsk[14:18])


def test_real_wfs_answer_in_etrs89_latitude_longitude(tmp_path, cli_env, db):
    """A real NRW 'ALKIS vereinfacht' WFS answer, EPSG:4258 with lat/lon axis order."""
    copy = tmp_path / WFS_4258.name
    shutil.copy(WFS_4258, copy)
    proc, data = import_json(cli_env, copy)
    assert proc.returncode == 0, proc.stderr
    assert data["objects"] == {"AX_Flurstueck": 10}
    assert data["profile"] == "alkis-vereinfacht"
    assert "ETRS89 (EPSG:4258)" in data["transformation"]
    assert not list(tmp_path.glob("*.gfs")), "GDAL must not write side files next to the input"
    fsk, gml_id, area, gemarkung, gemeinde, computed, wkb = query(
        db, "SELECT flurstueckskennzeichen, gml_id, amtliche_flaeche, gemarkung, gemeinde,"
            " geometrie_flaeche, ST_AsBinary(geom) FROM kataster.flurstueck"
            " WHERE flurstueckskennzeichen = '05439400800041______'")[0]
    assert (gml_id, area, gemarkung, gemeinde) == ("DENW42AL1000Nv0Q", 9850.0, "Losheim",
                                                   "Hellenthal")
    # The first vertex in the file is "50.3255714647955 6.40995293945009" (latitude first).
    to_utm = pyproj.Transformer.from_crs("EPSG:4258", "EPSG:25832")  # authority axis order
    e, n = to_utm.transform(50.3255714647955, 6.40995293945009)
    coords = shapely.get_coordinates(shapely.from_wkb(bytes(wkb)))
    assert np.hypot(coords[:, 0] - e, coords[:, 1] - n).min() < 0.001
    assert 315_000 < e < 317_000 and 5_577_000 < n < 5_580_000
    assert abs(computed - area) / area < 0.01
    assert query(db, "SELECT transformation FROM kataster.import_run WHERE id = %s",
                 (data["run_id"],))[0][0] == data["transformation"]


def test_gauss_krueger_uses_beta2007(tmp_path, cli_env, db):
    layers = build(200, seed=9)
    parcels = layers["Flurstueck"]
    gk = parcels.to_crs(31466)
    path = tmp_path / "gk.shp"
    gk.to_file(path, engine="pyogrio")
    proc, data = import_json(cli_env, path)
    assert proc.returncode == 0, proc.stderr
    assert "DHDN to ETRS89 (8)" in data["transformation"]   # the BETA2007 grid operation
    ops = pyproj.transformer.TransformerGroup("EPSG:31466", "EPSG:25832", always_xy=True)
    assert "BETA2007" in ops.transformers[0].definition
    got = dict(query(db, "SELECT flurstueckskennzeichen, ST_AsBinary(ST_Centroid(geom))"
                         " FROM kataster.flurstueck"))
    for fsk, geom in zip(parcels["flstkennz"], parcels.geometry, strict=True):
        c = shapely.from_wkb(bytes(got[fsk]))
        # GK → UTM with the grid and back: the original position within a few millimetres.
        assert c.distance(geom.centroid) < 0.01


def _vereinfacht(n=20, seed=3):
    return build(n, seed=seed)["Flurstueck"]


def _failed(proc, db, *phrases):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for phrase in phrases:
        assert phrase in proc.stderr, proc.stderr
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck")[0][0] == 0


def test_missing_file(tmp_path, cli_env, db):
    proc = kataster("import", tmp_path / "nope.gpkg", env=cli_env)
    _failed(proc, db, "nope.gpkg", "file not found")


def test_unreadable_file(tmp_path, cli_env, db):
    bad = tmp_path / "broken.gpkg"
    bad.write_bytes(b"this is not a GeoPackage\n" * 100)
    proc, data = import_json(cli_env, bad)
    _failed(proc, db, "broken.gpkg", "GDAL cannot read it")
    assert data["status"] == "failed" and "GDAL cannot read it" in data["error"]


def test_file_without_crs_is_refused_unless_srs_given(tmp_path, cli_env, db):
    path = tmp_path / "nocrs.shp"
    _vereinfacht().set_crs(None, allow_override=True).to_file(path, engine="pyogrio")
    assert not path.with_suffix(".prj").exists()
    proc = kataster("import", path, env=cli_env)
    _failed(proc, db, "nocrs.shp", "no coordinate system", "--srs")
    ok = kataster("import", path, "--srs", "EPSG:25832", env=cli_env)
    assert ok.returncode == 0, ok.stderr
    assert query(db, "SELECT count(*) FROM kataster.flurstueck")[0][0] == 20


def test_wrong_geometry_type(tmp_path, cli_env, db):
    parcels = _vereinfacht()
    parcels.loc[7, "geometry"] = shapely.Point(350000, 5700000)
    path = tmp_path / "mixed.geojson"
    parcels.to_file(path, engine="pyogrio")
    proc = kataster("import", path, env=cli_env)
    _failed(proc, db, "mixed.geojson", "feature fid 7", "Point geometry where a polygon")


def test_empty_file(tmp_path, cli_env, db):
    path = tmp_path / "empty.gpkg"
    _vereinfacht().iloc[:0].to_file(path, layer="Flurstueck", engine="pyogrio")
    proc = kataster("import", path, env=cli_env)
    _failed(proc, db, "empty.gpkg", "contains no features")


@pytest.mark.parametrize("with_cpg", [True, False])
def test_latin1_attributes(tmp_path, cli_env, db, with_cpg):
    parcels = _vereinfacht()
    parcels["lagebeztxt"] = "Düsseldorfer Straße 1"
    path = tmp_path / "latin1.shp"
    parcels.to_file(path, engine="pyogrio", encoding="ISO-8859-1")
    raw = path.with_suffix(".dbf").read_bytes()
    assert "Düsseldorfer Straße".encode("latin-1") in raw
    args = [path]
    if not with_cpg:
        path.with_suffix(".cpg").unlink()
        args += ["--encoding", "ISO-8859-1"]
    proc = kataster("import", *args, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    rows = query(db, "SELECT DISTINCT lage, gemarkung FROM kataster.flurstueck")
    assert {r[0] for r in rows} == {"Düsseldorfer Straße 1"}
    assert all("\ufffd" not in r[1] for r in rows)


def test_zip_without_usable_content(tmp_path, cli_env, db):
    path = tmp_path / "docs.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("README.txt", "nothing here")
        z.writestr("data.csv", "a,b\n1,2\n")
    proc = kataster("import", path, env=cli_env)
    _failed(proc, db, "docs.zip", "zip contains no usable file", "README.txt")


def test_zip_with_a_geopackage_inside(tmp_path, cli_env, db):
    gpkg = tmp_path / "inner.gpkg"
    _vereinfacht().to_file(gpkg, layer="Flurstueck", engine="pyogrio")
    path = tmp_path / "delivery.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(gpkg, "data/inner.gpkg")
    proc, data = import_json(cli_env, path)
    assert proc.returncode == 0 and data["objects"] == {"AX_Flurstueck": 20}
    assert data["files"][0]["path"].endswith("delivery.zip")


def test_zip_bomb(tmp_path, cli_env, db):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("huge.gpkg", "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(64):
                member.write(chunk)
    assert path.stat().st_size < 200_000
    proc = kataster("import", path, env=cli_env)
    _failed(proc, db, "bomb.zip", "decompression bomb")


def test_gzip_bomb_and_size_limit(tmp_path, cli_env, db):
    path = tmp_path / "bomb.geojson.gz"
    with gzip.open(path, "wb") as fh:
        for _ in range(64):
            fh.write(b" " * (1 << 20))
    proc = kataster("import", path, env=cli_env)
    _failed(proc, db, "bomb.geojson.gz", "decompression bomb")
    # An honest gzip file passes, unless it exceeds the configured size limit.
    good = tmp_path / "parcels.geojson"
    _vereinfacht().to_file(good, engine="pyogrio")
    gz = tmp_path / "parcels.geojson.gz"
    gz.write_bytes(gzip.compress(good.read_bytes()))
    small = dict(cli_env, KATASTER_IMPORT_MAX_UNCOMPRESSED_BYTES="1000")
    _failed(kataster("import", gz, env=small), db, "more than 1,000 bytes")
    ok = kataster("import", gz, env=cli_env)
    assert ok.returncode == 0, ok.stderr


def test_duplicate_identifier_is_kept_and_reported(tmp_path, cli_env, db):
    parcels = _vereinfacht()
    parcels.loc[5, "flstkennz"] = parcels.loc[4, "flstkennz"]
    path = tmp_path / "dup.gpkg"
    parcels.to_file(path, layer="Flurstueck", engine="pyogrio")
    proc, data = import_json(cli_env, path)
    assert proc.returncode == 0, proc.stderr
    assert data["objects"] == {"AX_Flurstueck": 20}
    assert data["findings"]["error"] == 2
    rows = query(db, "SELECT rule, object_id, related, message, ST_IsEmpty(geom)"
                     " FROM kataster.befund ORDER BY object_id")
    assert [r[0] for r in rows] == ["id.duplicate", "id.duplicate"]
    ids = sorted(parcels.loc[[4, 5], "idflurst"])
    assert [r[1] for r in rows] == ids and rows[0][2] == [ids[1]]
    assert parcels.loc[4, "flstkennz"] in rows[0][3] and "both kept" in rows[0][3]
    assert query(db, "SELECT count(*) FROM kataster.flurstueck WHERE flurstueckskennzeichen = %s",
                 (parcels.loc[4, "flstkennz"],))[0][0] == 2


def test_duplicate_object_id_with_different_content_fails(tmp_path, cli_env, db):
    parcels = _vereinfacht()
    parcels.loc[5, "idflurst"] = parcels.loc[4, "idflurst"]
    path = tmp_path / "dupid.gpkg"
    parcels.to_file(path, layer="Flurstueck", engine="pyogrio")
    proc = kataster("import", path, env=cli_env)
    _failed(proc, db, "dupid.gpkg", parcels.loc[4, "idflurst"], "different content")


def test_invalid_polygon_is_kept_as_delivered(tmp_path, cli_env, db):
    parcels = _vereinfacht()
    bowtie = shapely.MultiPolygon([shapely.Polygon([(350000, 5700000), (350010, 5700010),
                                                    (350010, 5700000), (350000, 5700010)])])
    parcels.loc[3, "geometry"] = bowtie
    path = tmp_path / "invalid.gpkg"
    parcels.to_file(path, layer="Flurstueck", engine="pyogrio")
    proc, data = import_json(cli_env, path)
    assert proc.returncode == 0 and data["findings"]["error"] == 1
    fsk = parcels.loc[3, "flstkennz"]
    valid, wkb = query(db, "SELECT ST_IsValid(geom), ST_AsBinary(geom) FROM kataster.flurstueck"
                           " WHERE flurstueckskennzeichen = %s", (fsk,))[0]
    assert valid is False and shapely.equals_exact(shapely.from_wkb(bytes(wkb)), bowtie, 0)
    rule, obj, message, x, y = query(db, "SELECT rule, object_id, message, ST_X(geom), ST_Y(geom)"
                                         " FROM kataster.befund")[0]
    assert rule == "geometry.invalid" and "Self-intersection" in message
    assert obj == parcels.loc[3, "idflurst"] and "invalid.gpkg" in message
    assert (round(x), round(y)) == (350005, 5700005)
    assert query(db, "SELECT count(*) FROM kataster.flurstueck")[0][0] == 20


def test_mapping_profile_for_another_layer(tmp_path, cli_env, db):
    parcels = _vereinfacht()
    other = gpd.GeoDataFrame({"FSK": parcels["flstkennz"], "FLAECHE": parcels["flaeche"],
                              "ADRESSE": parcels["lagebeztxt"]}, geometry=parcels.geometry)
    path = tmp_path / "stadt.shp"
    other.to_file(path, engine="pyogrio")
    unknown = kataster("import", path, env=cli_env)
    _failed(unknown, db, "no built-in profile fits", "--profile")
    profile = tmp_path.parent / "profile.yaml"
    from schemas import SCHEMAS_DIR

    shutil.copy(SCHEMAS_DIR / "profiles" / "example-parcels.yaml", profile)
    proc, data = import_json(cli_env, path, "--profile", profile)
    assert proc.returncode == 1 and "OBJ_ID" in data["error"]     # the example names an id field
    profile.write_text(profile.read_text().replace("    id: OBJ_ID", ""))
    proc, data = import_json(cli_env, path, "--profile", profile)
    assert proc.returncode == 0, proc.stderr
    assert data["profile"] == "example-parcels"
    rows = query(db, "SELECT gml_id = flurstueckskennzeichen, gemeinde, amtliche_flaeche > 0,"
                     " gemarkungsnummer IS NOT NULL FROM kataster.flurstueck")
    assert len(rows) == 20 and set(rows) == {(True, "Mülheim an der Ruhr", True, True)}
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nlayers:\n  - target: parcels\n    fields: {}\n")
    proc = kataster("import", path, "--profile", bad, env=cli_env)
    assert proc.returncode == 2 and "invalid profile" in proc.stderr
