"""Exports round-trip, the analyst API, and the notebook runs against the test database."""

import json

import geopandas as gpd
import jsonschema
import nbclient
import nbformat
import pandas as pd
import pytest
import shapely
from conftest import ROOT, kataster, query

from pipeline import api, views
from pipeline.runs import run_import
from schemas import json_schema

FORMATS = {"gpkg": ".gpkg", "geojson": ".geojson", "csv": ".csv", "parquet": ".parquet"}
LAYERS = ["flurstueck", "gebaeude", "gemarkung", "flur", "befund"]


@pytest.fixture
def loaded(db, config, sample_gpkg):
    run_import(db, config, [sample_gpkg])
    return db


def read_back(fmt, path, layer):
    if fmt == "csv":
        df = pd.read_csv(path, dtype={"gemarkungsnummer": str, "land": str, "nenner": str,
                                      "flurstueckskennzeichen": str, "gml_id": str,
                                      "id": str})
        return gpd.GeoDataFrame(df.drop(columns="wkt"),
                                geometry=gpd.GeoSeries.from_wkt(df["wkt"]), crs=25832)
    if fmt == "parquet":
        return gpd.read_parquet(path)
    if fmt == "gpkg":
        return gpd.read_file(path, layer=layer, engine="pyogrio")
    return gpd.read_file(path, engine="pyogrio")


KEYS = {"flurstueck": "gml_id", "gebaeude": "gml_id", "gemarkung": "gemarkungsnummer",
        "flur": ["gemarkungsnummer", "flurnummer"], "befund": "id"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_exports_round_trip(fmt, loaded, cli_env, tmp_path):
    for layer in LAYERS:
        out = tmp_path / f"{layer}{FORMATS[fmt]}"
        proc = kataster("export", fmt, "--layer", layer, "--out", out, "--json", env=cli_env)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        jsonschema.validate(summary, json_schema("export-summary"))
        expected = views.read(loaded, layer)
        assert summary["features"] == len(expected)
        if layer == "befund":
            continue   # no findings in the clean sample; the count above is the check
        got = read_back(fmt, out, layer)
        assert len(got) == len(expected) > 0
        if fmt == "geojson":
            assert got.crs.to_epsg() == 4326
            got = got.to_crs(25832)
        else:
            assert got.crs.to_epsg() == 25832
        key = KEYS[layer]
        got = got.sort_values(key).reset_index(drop=True)
        expected = expected.sort_values(key).reset_index(drop=True)
        for col in expected.columns:
            if col in ("geom", "beginnt"):
                continue
            a, b = got[col], expected[col]
            if pd.api.types.is_numeric_dtype(b):
                assert (pd.to_numeric(a) - b).abs().max() < 1e-6 or a.isna().all() == b.isna().all(), col
            else:
                assert a.fillna("").astype(str).tolist() == b.fillna("").astype(str).tolist(), col
        tol = 1e-3 if fmt == "geojson" else 1e-9   # GeoJSON goes through WGS 84 and back
        distance = shapely.hausdorff_distance(got.geometry.values, expected.geometry.values)
        assert distance.max() <= tol
        assert abs(got.area.sum() - expected.area.sum()) < 1.0


def test_export_filters(loaded, cli_env, tmp_path):
    gem, flur = query(loaded, "SELECT gemarkungsnummer, flurnummer FROM kataster.flurstueck"
                              " GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1")[0]
    out = tmp_path / "one.gpkg"
    kataster("export", "gpkg", "--layer", "flurstueck", "--gemarkung", gem, "--flur", flur,
             "--out", out, env=cli_env, check=True)
    got = gpd.read_file(out, layer="flurstueck", engine="pyogrio")
    n = query(loaded, "SELECT count(*) FROM kataster.flurstueck WHERE gemarkungsnummer = %s"
                      " AND flurnummer = %s", (gem, flur))[0][0]
    assert len(got) == n > 0 and set(got["flurnummer"]) == {flur}
    minx, miny, maxx, maxy = 348700, 5693800, 349100, 5694200
    out = tmp_path / "box.csv"
    kataster("export", "csv", "--layer", "flurstueck", "--bbox", f"{minx},{miny},{maxx},{maxy}",
             "--out", out, env=cli_env, check=True)
    n = query(loaded, "SELECT count(*) FROM kataster.flurstueck WHERE ST_Intersects(geom,"
                      " ST_MakeEnvelope(%s, %s, %s, %s, 25832))", (minx, miny, maxx, maxy))[0][0]
    assert len(pd.read_csv(out)) == n > 0
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("id,gml_id,flurstueckskennzeichen,") and "MULTIPOLYGON" in text
    bad = kataster("export", "csv", "--layer", "flurstueck", "--bbox", "1,2,3", "--out", out,
                   env=cli_env)
    assert bad.returncode == 2 and "minx,miny,maxx,maxy" in bad.stderr
    bad = kataster("export", "csv", "--layer", "befund", "--gemarkung", "3096", "--out", out,
                   env=cli_env)
    assert bad.returncode == 2 and "cannot be filtered by Gemarkung" in bad.stderr


def test_api(loaded, config, sample_gpkg, tmp_path):
    parcels = api.parcels(database=loaded)
    assert isinstance(parcels, gpd.GeoDataFrame) and parcels.crs.to_epsg() == 25832
    n = query(loaded, "SELECT count(*) FROM kataster.flurstueck")[0][0]
    assert len(parcels) == n == 1200
    gem = parcels["gemarkungsnummer"].iloc[0]
    one = api.parcels(gemarkung=gem, database=loaded)
    assert set(one["gemarkungsnummer"]) == {gem} and 0 < len(one) < n
    flur = int(one["flurnummer"].iloc[0])
    assert set(api.parcels(gemarkung=gem, flur=flur, database=loaded)["flurnummer"]) == {flur}
    box = (348700, 5693800, 349100, 5694200)
    inbox = api.parcels(bbox=box, database=loaded)
    assert len(inbox) == int(parcels.intersects(shapely.box(*box)).sum()) > 0
    assert len(api.buildings(database=loaded)) > 0
    assert len(api.gemarkungen(database=loaded)) == 14
    assert set(api.fluren(gemarkung=gem, database=loaded)["gemarkungsnummer"]) == {gem}
    runs = api.import_runs(database=loaded)
    assert list(runs["status"]) == ["committed"]
    # Parcels at a date: before the first import there were none.
    assert len(api.parcels(at="2000-01-01", database=loaded)) == 0
    assert len(api.parcels(at="2999-01-01", database=loaded)) == n


def test_notebook_runs(loaded, monkeypatch):
    monkeypatch.setenv("KATASTER_DATABASE_URL", loaded.url)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.read(ROOT / "notebooks" / "01_flurstuecke.ipynb", as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Gemarkung Broich (3096):" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the map was not drawn"
    assert any("text/html" in o.get("data", {}) for o in outputs), "the size table is missing"


def test_api_docstring_examples_run(loaded, monkeypatch, tmp_path):
    """The numpydoc examples are real: run them against the loaded sample."""
    import doctest

    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("KATASTER_DATABASE_URL", loaded.url)
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(api, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 10 and result.failed == 0


def test_config_show_json_matches_the_config_schema(cli_env, tmp_path):
    data = json.loads(kataster("config", "show", "--json", env=cli_env, check=True).stdout)
    jsonschema.validate(data, json_schema("config"))


def test_shapefile_export(loaded, cli_env, tmp_path):
    from exporters.files import SHAPEFILE_FIELDS

    out = tmp_path / "flurstueck.shp"
    kataster("export", "shp", "--layer", "flurstueck", "--out", out, env=cli_env, check=True)
    assert out.with_suffix(".cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    got = gpd.read_file(out, engine="pyogrio")
    assert all(len(c) <= 10 for c in got.columns)
    expected = views.read(loaded, "flurstueck").sort_values("gml_id").reset_index(drop=True)
    got = got.sort_values("gml_id").reset_index(drop=True)
    assert len(got) == len(expected) == 1200
    assert list(got["fsk"]) == list(expected["flurstueckskennzeichen"])
    assert list(got["gemarkung"]) == list(expected["gemarkung"])     # umlauts survive (UTF-8)
    assert (got["amtl_fl"] - expected["amtliche_flaeche"]).abs().max() < 1e-6
    assert shapely.hausdorff_distance(got.geometry.values, expected.geometry.values).max() < 1e-6
    assert SHAPEFILE_FIELDS["flurstueckskennzeichen"] == "fsk"


def test_inspire_gml_export(loaded, cli_env, tmp_path):
    from lxml import etree

    out = tmp_path / "cp.gml"
    env = dict(cli_env, KATASTER_EXPORTS_INSPIRE_NAMESPACE="https://example.org/id/kataster")
    kataster("export", "inspire", "--layer", "flurstueck", "--out", out, env=env, check=True)
    doc = etree.parse(str(out))
    ns = {"cp": "http://inspire.ec.europa.eu/schemas/cp/4.0",
          "base": "http://inspire.ec.europa.eu/schemas/base/3.3",
          "gml": "http://www.opengis.net/gml/3.2", "wfs": "http://www.opengis.net/wfs/2.0"}
    parcels = doc.findall(".//cp:CadastralParcel", ns)
    assert len(parcels) == 1200 and doc.getroot().get("numberReturned") == "1200"
    required = ["areaValue", "beginLifespanVersion", "endLifespanVersion", "geometry", "inspireId",
                "label", "nationalCadastralReference", "referencePoint", "validFrom", "validTo"]
    for p in parcels[:50]:
        names = [etree.QName(c).localname for c in p]
        assert names == required, names
        assert p.find("cp:inspireId/base:Identifier/base:namespace", ns).text == \
            "https://example.org/id/kataster"
    expected = views.read(loaded, "flurstueck").set_index("gml_id")
    first = parcels[0]
    gid = first.find("cp:inspireId/base:Identifier/base:localId", ns).text
    row = expected.loc[gid]
    assert first.find("cp:nationalCadastralReference", ns).text == row["flurstueckskennzeichen"]
    label = str(row["zaehler"]) + (f"/{row['nenner']}" if row["nenner"] else "")
    assert first.find("cp:label", ns).text == label
    # GDAL reads it back: same parcels, same areas.
    back = gpd.read_file(out, engine="pyogrio")
    assert len(back) == 1200 and back.crs.to_epsg() == 25832
    back = back.set_index("localId")
    assert set(back.index) == set(expected.index)
    assert (back["areaValue"].astype(float) - expected.loc[back.index, "amtliche_flaeche"]
            ).abs().max() < 0.5
    assert abs(back.area.sum() - expected.geometry.area.sum()) < 1.0


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "shp"])
def test_an_export_imports_back(loaded, cli_env, server, tmp_path, fmt):
    """Our own GeoPackage could not be imported back ("contains no features to import …
    profile maps flurstueck", a message that contradicts itself). Now the built-in profiles
    kataster-export(-shp) take every export of parcels and buildings, into a fresh database."""
    from conftest import drop_database, new_database

    out = tmp_path / f"f.{fmt}"
    kataster("export", fmt, "--layer", "flurstueck", "--out", out, env=cli_env, check=True)
    name, url = new_database(server)
    try:
        env = dict(cli_env, KATASTER_DATABASE_URL=url)
        proc = kataster("import", out, "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert summary["profile"] in ("kataster-export", "kataster-export-shp")
        from pipeline.db import Database

        copy = query(Database(url), "SELECT flurstueckskennzeichen, gml_id, amtliche_flaeche,"
                                    " round(ST_Area(geom)) FROM kataster.flurstueck ORDER BY 1")
        original = query(loaded, "SELECT flurstueckskennzeichen, gml_id, amtliche_flaeche,"
                                 " round(ST_Area(geom)) FROM kataster.flurstueck ORDER BY 1")
        assert copy == original
    finally:
        drop_database(server, name)


def test_a_file_no_profile_fits_says_what_the_profiles_need(cli_env, tmp_path):
    path = tmp_path / "fremd.gpkg"
    gpd.GeoDataFrame({"nummer": [1]}, geometry=[shapely.box(350000, 5700000, 350010,
                                                            5700010)],
                     crs=25832).to_file(path, engine="pyogrio")
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no built-in profile fits" in proc.stderr
    assert "kataster-export needs the fields gml_id, flurstueckskennzeichen" in proc.stderr
    assert "alkis-vereinfacht needs the fields flstkennz" in proc.stderr
