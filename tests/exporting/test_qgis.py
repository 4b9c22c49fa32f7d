"""What a department member sees in QGIS (Debian's QGIS 3.22, headless PyQGIS under the system
python3): the public views through the documented service entry, and the exported files."""

import json
import subprocess
from pathlib import Path

import pyogrio
import pytest
from conftest import kataster, query, url_as

PROBE = Path(__file__).resolve().parents[1] / "clients" / "qgis_probe.py"
SYSTEM_PYTHON = "/usr/bin/python3"
VIEWS = {  # view -> geometry type QGIS must read from the database
    "flurstueck": "MultiPolygon", "gebaeude": "MultiPolygon", "nutzung": "MultiPolygon",
    "flur": "MultiPolygon", "gemarkung": "MultiPolygon", "flur_karte": "MultiPolygon",
    "gemarkung_karte": "MultiPolygon", "befund_punkt": "Point", "befund_flaeche": "MultiPolygon",
    "hausnummer": "Point", "strassenname": "Point", "grenzpunkt": "Point",
}


@pytest.fixture
def department(db, cli_env, tmp_path):
    """A database with parcels, buildings and findings of both kinds, and the environment of a
    department member (the reading role) with its service entry written by the command."""
    from pipeline.synthetic.city import build, plant_errors

    layers, _planted = plant_errors(build(600, seed=3), per_kind=2, seed=3)
    sample = tmp_path / "sample.gpkg"
    for name, frame in layers.items():
        pyogrio.write_dataframe(frame, sample, layer=name, driver="GPKG",
                                append=sample.exists())
    kataster("import", sample, env=cli_env, check=True)
    kataster("validate", env=cli_env, check=True)
    env = dict(cli_env, KATASTER_DATABASE_URL=url_as(db.url, "reader"),
               PGSERVICEFILE=str(tmp_path / "pg_service.conf"), QT_QPA_PLATFORM="offscreen",
               XDG_RUNTIME_DIR=str(tmp_path))
    out = kataster("db", "service", "--name", "kataster_test", env=env, check=True)
    assert out.stdout.strip() == "service=kataster_test"
    assert "password" not in (tmp_path / "pg_service.conf").read_text()
    return env


def probe(env, *files):
    proc = subprocess.run([SYSTEM_PYTHON, str(PROBE), "kataster_test", "kataster",
                           *map(str, files)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_qgis_loads_every_public_view_as_it_is(department, db):
    seen = probe(department)["database"]
    assert set(VIEWS) <= set(seen), sorted(seen)
    kinds = query(db, "SELECT GeometryType(geom), count(*) FROM kataster.befund GROUP BY 1")
    assert {k for k, _ in kinds} >= {"POINT", "POLYGON"}      # both kinds are really there
    for view, geometry in VIEWS.items():
        info = seen[view]
        assert info["valid"], (view, info)
        count = query(db, f"SELECT count(*) FROM kataster.{view}")[0][0]  # noqa: S608
        # The flat sample has no land use and no boundary points.
        assert count > 0 or view in ("nutzung", "grenzpunkt"), view
        assert (info["geometry"], info["crs"], info["count"]) == (geometry, "EPSG:25832",
                                                                  count), (view, info)
        # QGIS takes the first column as the key: named id in every view, and unique.
        assert info["key"] == "id" and info["unique_keys"] == count, (view, info)


def test_gdal_reads_the_views_through_the_service(department):
    out = subprocess.run(["ogrinfo", "-ro", "-so", "PG:service=kataster_test",
                          "kataster.flur"], env=department, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Geometry: Multi Polygon" in out.stdout and "ETRS89 / UTM zone 32N" in out.stdout


def test_qgis_opens_the_exports(department, tmp_path):
    files, crs = [], {"gpkg": "EPSG:25832", "geojson": "EPSG:4326", "shp": "EPSG:25832",
                      "csv": "EPSG:25832"}
    for fmt, name in (("gpkg", "f.gpkg"), ("geojson", "f.geojson"), ("shp", "f.shp"),
                      ("csv", "f.csv")):
        target = tmp_path / name
        kataster("export", fmt, "--layer", "flurstueck", "--out", target, env=department,
                 check=True)
        files.append(target)
    seen = probe(department, *files)["files"]
    for path in files:
        info = seen[str(path)]
        assert info["valid"] and info["crs"] == crs[path.suffix[1:]], (path, info)
        assert info["geometry"] in ("MultiPolygon", "Polygon"), (path, info)
        assert info["count"] == 600, (path, info)
        # Whole numbers stay whole numbers for QGIS (Flurnummer 1, not 1.0), NULLs included.
        ints = {"flurnummer", "zaehler"} if path.suffix != ".shp" else {"flurnr", "zaehler"}
        assert ints <= set(info["int_fields"]), (path, info["fields"])


def test_findings_as_shapefiles_and_geopackage_versions(department, tmp_path, db):
    """`export shp --layer befund` crashed on mixed geometry types and left a partial file:
    now one Shapefile per type; GeoPackages are written as version 1.2 (1.4 made Debian's
    GDAL 3.6 and QGIS 3.22 warn on every open)."""
    import sqlite3

    out = kataster("export", "shp", "--layer", "befund", "--out", tmp_path / "b.shp",
                   env=department)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "b.shp").exists()
    files = [tmp_path / "b_punkt.shp", tmp_path / "b_flaeche.shp"]
    seen = probe(department, *files)["files"]
    counts = dict(query(db, "SELECT GeometryType(geom) = 'POINT', count(*) FROM kataster.befund"
                            " GROUP BY 1"))
    assert (seen[str(files[0])]["geometry"], seen[str(files[0])]["count"]) == ("Point",
                                                                            counts[True])
    assert (seen[str(files[1])]["geometry"], seen[str(files[1])]["count"]) == (
        "MultiPolygon", counts[False])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b")]   # no leftovers
    gpkg = tmp_path / "k.gpkg"
    for layer in ("flurstueck", "befund_flaeche"):
        kataster("export", "gpkg", "--layer", layer, "--out", gpkg, env=department, check=True)
    with sqlite3.connect(gpkg) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 10200
        assert {r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")} == {
            "flurstueck", "befund_flaeche", "layer_styles"}
        assert {r[0] for r in conn.execute("SELECT f_table_name FROM layer_styles")} == {
            "flurstueck", "befund_flaeche"}


def test_qgis_project_and_styled_files(department, tmp_path, artefacts):
    """No export carried a style, so QGIS drew random fills without labels. Now GeoPackages
    carry the style source's QGIS styles, and 'kataster export qgis' writes a project of every
    public layer (from a GeoPackage beside it, or through the service entry) that QGIS reads
    and renders; the renders are kept beside the test's files."""
    from exporters.layers import LAYERS

    gpkg = tmp_path / "g.gpkg"
    kataster("export", "gpkg", "--layer", "gebaeude", "--out", gpkg, env=department,
             check=True)
    styled = probe(department, gpkg)["files"][str(gpkg)]
    gebaeude = next(lay for lay in LAYERS if lay.name == "gebaeude")
    assert styled["renderer"] == "RuleRenderer", styled
    assert styled["rules"] == [s.title for s in gebaeude.styles]

    titles = {lay.title_of(kind) for lay in LAYERS for _n, _v, kind, _g in lay.served()}
    assert {"Flurstücke", "Hausnummern", "Befunde (öffentlich): Flächen"} <= titles
    for args, name in ((("--out", tmp_path / "p" / "kataster.qgz"), "datei"),
                       (("--service", "kataster_test", "--out", tmp_path / "d" / "db.qgz"),
                        "datenbank")):
        kataster("export", "qgis", *args, env=department, check=True)
        outdir = artefacts / f"qgis_projekt_{name}"       # kept: the renders people look at
        outdir.mkdir(exist_ok=True)
        proc = subprocess.run([SYSTEM_PYTHON, str(PROBE), "--project", str(args[-1]),
                               str(outdir)], env=department, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        assert seen["read"] and set(seen["layers"]) == titles, seen["layers"].keys()
        assert seen["order"][0].startswith("Befunde") and seen["order"][-1] == \
            "Tatsächliche Nutzung"
        for title, info in seen["layers"].items():
            assert info["valid"] and info["crs"] == "EPSG:25832", (name, title, info)
            if info["renderer"] == "nullSymbol":       # texts only: house numbers, streets
                assert info["labels"], (name, title)
            else:
                assert info["renderer"] == "RuleRenderer" and info["rules"], (name, title)
        assert seen["layers"]["Flurstücke"]["labels"]
        assert seen["layers"]["Flurstücke"]["count"] == 600
        for scale, render in seen["renders"].items():
            assert abs(render["scale"] - int(scale)) / int(scale) < 0.05, render
            assert render["drawn"] > 500, (name, scale, render)   # the map is not empty


def test_qgis_opens_a_georeferenced_scan(department, cli_env, tmp_path):
    """A scanned map imported through `kataster import` opens in QGIS as a raster in
    EPSG:25832 with its colours and alpha band, where the catalogue says it lies."""
    import pyogrio
    import shapely

    from pipeline.synthetic.scan import generate_scan

    parcels = pyogrio.read_dataframe(tmp_path / "sample.gpkg", layer="Flurstueck")
    x0, y0 = parcels.total_bounds[:2]
    inside = parcels[parcels.geometry.within(shapely.box(x0, y0, x0 + 250, y0 + 180))]
    scan = generate_scan(inside.geometry.values, tmp_path / "flurkarte.png", kind="affine")
    env = dict(cli_env, KATASTER_KARTEN_DIR=str(tmp_path / "karten"))
    proc = kataster("import", scan.image, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    cogs = list((tmp_path / "karten").rglob("*.tif"))
    assert len(cogs) == 1
    info = probe(department, cogs[0])["files"][str(cogs[0])]
    assert info["valid"] and info["crs"] == "EPSG:25832" and info["bands"] == 4, info
    assert info["renderer"] == "multibandcolor"
    ex = info["extent"]
    bx = inside.total_bounds
    assert ex[0] < bx[0] and ex[1] < bx[1] and ex[2] > bx[2] and ex[3] > bx[3], (ex, bx)
    assert 150 < info["band1_mean"] < 255          # the paper tone, not an empty image
