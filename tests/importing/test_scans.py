"""Scanned maps: generated scans of generated parcels, georeferenced through the real import.

Each scan is drawn from the parcels of the shared sample (lines and numbers, paper tone,
noise, a frame), distorted, and given ground control points at parcel corners. After the
import, other parcel corners (check points) must lie on the drawn lines of the COG.
"""

import json

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from conftest import kataster, query

from pipeline.errors import SourceError
from pipeline.runs import run_import
from pipeline.synthetic.scan import generate_scan


@pytest.fixture(scope="module")
def parcels(sample_gpkg):
    df = pyogrio.read_dataframe(sample_gpkg, layer="Flurstueck")
    x0, y0 = df.total_bounds[:2]
    box = shapely.box(x0 + 100, y0 + 100, x0 + 340, y0 + 280)
    inside = df[df.geometry.within(box)]
    assert len(inside) >= 15
    return inside


@pytest.fixture
def karten_config(config, tmp_path):
    return config.with_overrides(karten__dir=str(tmp_path / "karten"))


def _valid_cog(path):
    """GDAL's own COG validator (Debian's python3-gdal), without errors or warnings."""
    import subprocess

    proc = subprocess.run(["/usr/bin/python3", "-m",
                           "osgeo_utils.samples.validate_cloud_optimized_geotiff", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "is a valid cloud optimized GeoTIFF" in proc.stdout, \
        proc.stdout + proc.stderr
    assert "warning" not in proc.stdout.lower() and "error" not in proc.stdout.lower(), \
        proc.stdout


def _corner_errors(cog, checks):
    """Distance (m) from each check corner to the nearest drawn line pixel of the COG."""
    with rasterio.open(cog) as src:
        errors = []
        for x, y in checks:
            r, c = src.index(x, y)
            win = rasterio.windows.Window(c - 15, r - 15, 31, 31)
            data = src.read([1, 2, 3], window=win, boundless=True, masked=True)
            dark = ~np.ma.getmaskarray(data)[0] & (data.data.mean(axis=0) < 110)
            rows, cols = np.nonzero(dark)
            if not len(rows):
                errors.append(np.inf)
                continue
            d = np.hypot(rows - 15, cols - 15).min() * abs(src.transform.a)
            errors.append(d)
    return np.array(errors)


def test_affine_scan_is_placed_checked_and_catalogued(db, karten_config, parcels, tmp_path):
    scan = generate_scan(parcels.geometry.values, tmp_path / "flurkarte.tif", kind="affine")
    x0, y0, x1, y1 = parcels.total_bounds        # the frame the generator draws
    summary = run_import(db, karten_config, [scan.image],
                         options={"kartenart": "Flurkarte", "jahr": "1936", "massstab": "1000",
                                  "rahmen": f"{x0},{y0},{x1},{y1}"})
    assert summary["status"] == "committed" and summary["importer"] == "scan"
    # The run records the method and its accuracy.
    recorded = query(db, "SELECT transformation FROM kataster.import_run WHERE id = %s",
                     (summary["run_id"],))[0][0]
    assert recorded == summary["transformation"] and "über 12 Passpunkte" in recorded
    row = query(db, "SELECT id, pfad, rms_m, transformation, gcp_anzahl, jahr, aufloesung_m,"
                    " ST_Area(geom) FROM kataster.historische_karte")
    assert len(row) == 1
    sheet, pfad, rms, method, n, jahr, res, area = row[0]
    assert (method, n, jahr) == ("polynomial1", 12, 1936)
    assert rms < 0.2                       # an affine distortion fits a polynomial of order 1
    residuals = query(db, "SELECT residuen FROM kataster.karte")[0][0]
    assert len(residuals) == 12 and all(r["residual"] < 0.3 for r in residuals)
    box = shapely.box(*parcels.total_bounds)
    assert abs(area - box.area) < 0.001 * box.area     # the footprint is the map frame
    cog = tmp_path / "karten" / pfad
    assert cog.is_file() and not list((tmp_path / "karten").rglob("*.tmp-*"))
    with rasterio.open(cog) as src:
        assert src.crs.to_epsg() == 25832 and src.count == 4
        assert src.block_shapes[0] == (512, 512) and src.overviews(1)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.colorinterp[3].name == "alpha"
        corner = src.read(4, window=rasterio.windows.Window(0, 0, 4, 4))
        assert (corner == 0).all()        # outside the scan: transparent
        # The collar between the frame and the paper's edge is transparent too; inside the
        # frame the scan is opaque.
        for dx, dy, alpha in ((-3, 0, 0), (0, -3, 0), (3, 3, 255)):
            r, c = src.index(x0 + dx, y0 + dy)
            assert src.read(4, window=rasterio.windows.Window(c, r, 1, 1))[0, 0] == alpha
    _valid_cog(cog)
    errors = _corner_errors(cog, scan.checks)
    assert len(errors) >= 10 and errors.max() <= 0.5, errors
    # The same scan with the same points again: nothing happens.
    again = run_import(db, karten_config, [scan.image])
    assert again["status"] == "skipped"
    # New points for the same sheet: the old version is closed, a new COG written.
    points = scan.points.read_text().splitlines()
    points[2] = points[2].replace(",1,0,0,0", ",0,0,0,0")        # one point disabled
    scan.points.write_text("\n".join(points) + "\n")
    third = run_import(db, karten_config, [scan.image])
    assert third["status"] == "committed"
    versions = query(db, "SELECT gml_id, endet IS NULL, gcp_anzahl, pfad FROM kataster.karte"
                         " ORDER BY beginnt")
    assert [(v[0], v[1], v[2]) for v in versions] == [(sheet, False, 12), (sheet, True, 11)]
    assert all((tmp_path / "karten" / v[3]).is_file() for v in versions)


def test_smooth_warp_with_thin_plate_spline(db, karten_config, parcels, tmp_path):
    scan = generate_scan(parcels.geometry.values, tmp_path / "urkarte.png", kind="smooth",
                         n_gcps=15, seed=3)
    run_import(db, karten_config, [scan.image], options={"transformation": "tps"})
    pfad, rms = query(db, "SELECT pfad, rms_m FROM kataster.karte")[0]
    # The thin-plate spline's RMS is measured leaving each point out; stated bound: 1 m.
    assert rms < 1.0
    spline = _corner_errors(tmp_path / "karten" / pfad, scan.checks)
    assert spline.max() <= 1.0, spline
    # The same points with a polynomial of order 1 cannot follow the warp as closely.
    run_import(db, karten_config, [scan.image], force=True,
               options={"transformation": "polynomial1", "blatt": "AFFIN"})
    pfad, rms_affine = query(db, "SELECT pfad, rms_m FROM kataster.karte WHERE gml_id = 'AFFIN'")[0]
    affine = _corner_errors(tmp_path / "karten" / pfad, scan.checks)
    assert rms_affine > rms and affine.mean() > spline.mean(), (affine, spline)


def _points(scan, edit):
    lines = scan.points.read_text().splitlines()
    scan.points.write_text("\n".join(edit(lines)) + "\n")


@pytest.mark.parametrize("case, expected", [
    ("truncated", "cannot be read to its end"),
    ("too_large", "karten.max_pixels"),
    ("outside", "outside the image"),
    ("duplicate", "same pixel position"),
    ("collinear", "on one line"),
    ("too_few", "needs at least 6"),
    ("no_crs", "names no coordinate system"),
    ("bad_fit", "worst points"),
    ("no_points", "no ground control points"),
])
def test_bad_scans_are_refused_and_nothing_is_written(db, karten_config, parcels, tmp_path,
                                                      case, expected):
    scan = generate_scan(parcels.geometry.values, tmp_path / "blatt.tif", kind="affine")
    cfg, options = karten_config, {}
    if case == "truncated":
        data = scan.image.read_bytes()
        scan.image.write_bytes(data[: len(data) // 2])
    elif case == "too_large":
        cfg = karten_config.with_overrides(karten__max_pixels=1000)
    elif case == "outside":
        _points(scan, lambda ls: ls[:2] + ["352000,5700000,99999,-5,1,0,0,0"] + ls[3:])
    elif case == "duplicate":
        _points(scan, lambda ls: ls + [ls[2].replace(ls[2].split(",")[0], "1.5", 1)])
    elif case == "collinear":
        _points(scan, lambda ls: ls[:2] + [f"{350000 + k},{5700000 + k},{10 + k},{-10 - k},1"
                                           for k in range(5)])
    elif case == "too_few":
        options = {"transformation": "polynomial2"}
        _points(scan, lambda ls: ls[:6])
    elif case == "no_crs":
        _points(scan, lambda ls: ls[1:])
    elif case == "bad_fit":
        _points(scan, lambda ls: ls[:2] + [ls[2].replace(ls[2].split(",")[0], str(
            float(ls[2].split(",")[0]) + 25), 1)] + ls[3:])
    elif case == "no_points":
        scan.points.unlink()
    with pytest.raises(SourceError, match=expected) as err:
        run_import(db, cfg, [scan.image], options=options)
    assert "Traceback" not in str(err.value)
    assert query(db, "SELECT count(*) FROM kataster.karte")[0][0] == 0
    karten = tmp_path / "karten"
    assert not karten.exists() or not [p for p in karten.rglob("*") if p.is_file()]


def test_claimed_district_and_accuracy_become_findings(db, karten_config, parcels, tmp_path,
                                                       sample_gpkg):
    run_import(db, karten_config, [sample_gpkg])
    land, gemarkung, flur = query(db, "SELECT land, gemarkungsnummer, flurnummer"
                                      " FROM kataster.flur_karte"
                                " WHERE NOT ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s,"
                                " 25832)) LIMIT 1", tuple(parcels.total_bounds))[0]
    scan = generate_scan(parcels.geometry.values, tmp_path / "fremd.tif", kind="smooth")
    cfg = karten_config.with_overrides(karten__rms_warning=0.01)
    summary = run_import(db, cfg, [scan.image],
                         options={"gemarkung": f"{land}{gemarkung}", "flur": str(flur),
                                  "blatt": "FREMD-1"})
    assert summary["findings"]["warning"] == 2
    rules = dict(query(db, "SELECT rule, message FROM kataster.finding WHERE object_id ="
                           " 'FREMD-1'"))
    assert set(rules) == {"karte.lage", "karte.genauigkeit"}
    assert f"Gemarkung {land}{gemarkung} Flur {flur}" in rules["karte.lage"]


def test_cli_imports_a_scan_and_refuses_a_world_file_without_crs(cli_env, parcels, tmp_path):
    env = dict(cli_env, KATASTER_KARTEN_DIR=str(tmp_path / "karten"))
    scan = generate_scan(parcels.geometry.values, tmp_path / "rahmen.jpg", kind="affine")
    proc = kataster("import", scan.image, "--sheet", "titel=Rahmenkarte 3", "--sheet",
                    "kartenart=Rahmenkarte", "--json", env=env, check=True)
    summary = json.loads(proc.stdout)
    assert summary["status"] == "committed" and summary["importer"] == "scan"
    # An image placed by a world file but without a coordinate system.
    plain = tmp_path / "plain.png"
    from PIL import Image

    Image.new("RGB", (200, 100), (230, 220, 200)).save(plain)
    plain.with_suffix(".pgw").write_text("0.5\n0\n0\n-0.5\n350000\n5700000\n")
    proc = kataster("import", plain, env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "names no coordinate system" in proc.stderr and "--srs" in proc.stderr
    proc = kataster("import", plain, "--srs", "EPSG:25832", "--json", env=env, check=True)
    assert json.loads(proc.stdout)["transformation"] == "georeferenziert"


def test_gauss_krueger_points_and_leftovers_of_a_killed_run(db, karten_config, parcels,
                                                           tmp_path):
    """Points in Gauß-Krüger zone 2 (DHDN, EPSG:31466) are transformed with BETA2007 before the
    warp; a temporary COG of a run whose process is gone is removed at the next start."""
    from importers.crs import parse_crs, transformer

    scan = generate_scan(parcels.geometry.values, tmp_path / "gk.tif", kind="affine")
    to_utm, description = transformer(parse_crs("EPSG:31466", "test"), "test")
    assert "BETA2007" in description
    lines = scan.points.read_text().splitlines()
    out = ["#CRS: EPSG:31466", lines[1]]
    for line in lines[2:]:
        x, y, *rest = line.split(",")
        gx, gy = to_utm.transform(float(x), float(y), direction="INVERSE")
        out.append(",".join([f"{gx:.3f}", f"{gy:.3f}", *rest]))
    scan.points.write_text("\n".join(out) + "\n")
    karten = tmp_path / "karten"
    (karten / "ALT").mkdir(parents=True)
    dead = karten / "ALT" / "abc.tif.tmp-999999999"          # no such process
    alive = karten / "ALT" / "def.tif.tmp-1"                 # init: a running process
    warp = karten / "ALT" / "abc.tif.tmp-999999999.warp"    # its warp file
    for f in (dead, alive, warp):
        f.write_bytes(b"x")
    summary = run_import(db, karten_config, [scan.image])
    assert summary["transformation"].startswith("polynomial1, RMS 0.")
    assert "über 12 Passpunkte; Passpunkte: DHDN" in summary["transformation"]
    assert "BETA2007" in summary["transformation"]
    assert not dead.exists() and not warp.exists() and alive.exists()
    pfad, rms = query(db, "SELECT pfad, rms_m FROM kataster.karte")[0]
    assert rms < 0.2
    errors = _corner_errors(karten / pfad, scan.checks)
    assert errors.max() <= 0.5, errors


def test_wms_draws_the_scan_under_the_parcels_by_year(db, karten_config, parcels, tmp_path,
                                                     sample_gpkg, artefacts):
    import io
    import socket
    import urllib.parse
    import urllib.request

    from conftest import url_as
    from PIL import Image

    from exporters.serving.server import Server
    from pipeline.db import Database

    run_import(db, karten_config, [sample_gpkg])
    scan = generate_scan(parcels.geometry.values, tmp_path / "flurkarte.tif", kind="affine")
    run_import(db, karten_config, [scan.image], options={"jahr": "1936"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = Server(db, tmp_path / "run", port=port, with_ogcapi=False, karten=tmp_path / "karten",
                 service=Database(url_as(db.url, "service")))
    srv.start()
    try:
        x0, y0, x1, y1 = parcels.total_bounds
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2

        def getmap(**extra):
            q = {"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "STYLES": "",
                 "LAYERS": "historische_karte,flurstueck", "CRS": "EPSG:25832",
                 "BBOX": f"{cx - 110},{cy - 80},{cx + 110},{cy + 80}", "WIDTH": 825,
                 "HEIGHT": 600, "FORMAT": "image/png", "TRANSPARENT": "TRUE", **extra}
            try:
                with urllib.request.urlopen(f"{srv.base_url}/wms?{urllib.parse.urlencode(q)}",
                                            timeout=60) as r:
                    return r.headers.get("Content-Type", ""), r.read()
            except urllib.error.HTTPError as err:
                return err.headers.get("Content-Type", ""), err.read()

        def paper(body):
            img = Image.open(io.BytesIO(body)).convert("RGBA")
            px = np.asarray(img)
            tone = (px[..., 3] > 200) & (abs(px[..., 0].astype(int) - 236) < 25) & \
                (abs(px[..., 2].astype(int) - 196) < 25)
            return img, tone.mean()

        ctype, body = getmap()
        assert ctype.startswith("image/png"), body[:400]
        img, share = paper(body)
        assert share > 0.5                          # the scan fills the view
        dark = (np.asarray(img)[..., :3].max(axis=2) < 40).mean()
        assert dark > 0.005                         # the parcel lines over it
        img.save(artefacts / "historische_karte_unter_flurstuecken.png")
        assert paper(getmap(JAHR="1936")[1])[1] > 0.5
        assert paper(getmap(JAHR="1800")[1])[1] < 0.01      # no sheet of that year
        # A value that fails the validation is not substituted: MapServer falls back to the
        # default (every year), so nothing of it reaches the SQL.
        ctype, body = getmap(JAHR="1936) OR (1=1")
        assert ctype.startswith("image/png") and paper(body)[1] > 0.5
        _map_page_shows_the_scan(srv, cx, cy, artefacts)
    finally:
        srv.stop()


def _map_page_shows_the_scan(srv, cx, cy, artefacts):
    """The map page draws the scans in their own image under the map, with an opacity slider
    and a choice of year."""
    from playwright.sync_api import sync_playwright
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(25832, 4326, always_xy=True).transform(cx, cy)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(f"{srv.base_url}/#18/{lat:.6f}/{lon:.6f}")
        page.wait_for_function("document.querySelector('img.kataster-scan[data-geladen]') &&"
                               " document.querySelector('img.kataster-bild[data-geladen]')",
                               timeout=60_000)
        assert page.evaluate("getComputedStyle(document.querySelector('.leaflet-scans-pane'))"
                             ".zIndex") == "350"
        assert page.eval_on_selector_all("#karten-jahr option", "e => e.map(o => o.value)") \
            == ["", "1936"]
        page.screenshot(path=str(artefacts / "kartenseite_historische_karte.png"))
        page.fill("#karten-deckkraft", "30")
        page.dispatch_event("#karten-deckkraft", "input")
        assert page.evaluate("document.querySelector('img.kataster-scan').style.opacity") == "0.3"
        with page.expect_request(lambda r: "historische_karte" in r.url and "JAHR=1936" in r.url,
                                 timeout=30_000):
            page.select_option("#karten-jahr", "1936")
        page.uncheck("#karten-an")
        page.wait_for_function("!document.querySelector('img.kataster-scan')", timeout=30_000)
        browser.close()


def test_export_and_python_api(db, config, cli_env, parcels, tmp_path, sample_gpkg):
    """`kataster export karte` clips the sheets of a Flur or a box into one GeoTIFF; the
    analyst API lists the catalogue as a GeoDataFrame and opens a sheet with rasterio."""
    from pipeline import api

    karten = tmp_path / "karten"
    cfg = config.with_overrides(karten__dir=str(karten))
    run_import(db, cfg, [sample_gpkg])
    scan = generate_scan(parcels.geometry.values, tmp_path / "flurkarte.tif", kind="affine")
    run_import(db, cfg, [scan.image], options={"jahr": "1936", "blatt": "FK-1936"})
    catalogue = api.maps(database=db)
    assert list(catalogue["id"]) == ["FK-1936"] and catalogue.crs.to_epsg() == 25832
    assert catalogue.geometry.iloc[0].area > 10_000
    assert len(api.maps(jahr=1900, database=db)) == 0
    with api.open_map("FK-1936", config=cfg, database=db) as src:
        assert src.crs.to_epsg() == 25832 and src.count == 4
    env = dict(cli_env, KATASTER_KARTEN_DIR=str(karten))
    x0, y0, x1, y1 = parcels.total_bounds
    box = f"{x0 + 20},{y0 + 20},{x0 + 120},{y0 + 90}"
    out = tmp_path / "ausschnitt.tif"
    proc = kataster("export", "karte", "--bbox", box, "--out", out, "--json", env=env,
                    check=True)
    assert json.loads(proc.stdout)["sheets"] == ["FK-1936"]
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 25832
        assert abs(src.bounds.left - (x0 + 20)) < 1 and abs(src.bounds.top - (y0 + 90)) < 1
        assert (src.read(4) == 255).mean() > 0.99      # inside the sheet everywhere
    gem, flur = query(db, "SELECT gemarkungsnummer, flurnummer FROM kataster.flur_karte"
                          " WHERE ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 25832))"
                          " ORDER BY ST_Area(ST_Intersection(geom, ST_MakeEnvelope(%s, %s, %s,"
                          " %s, 25832))) DESC LIMIT 1", (x0, y0, x1, y1) * 2)[0]
    out = tmp_path / "flur.tif"
    kataster("export", "karte", "--gemarkung", gem, "--flur", flur, "--out", out, env=env,
             check=True)
    with rasterio.open(out) as src:
        alpha = src.read(4)
        # Opaque where the sheet covers the Flur, transparent outside the Flur or the sheet.
        assert 0.01 < (alpha == 255).mean() < 0.99
    proc = kataster("export", "karte", "--bbox", "1,1,2,2", "--out", tmp_path / "leer.tif",
                    env=env)
    assert proc.returncode != 0 and "no scanned map covers" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "leer.tif").exists()


def test_jpeg_compressed_colour_scan(db, karten_config, parcels, tmp_path):
    """karten.compression = jpeg: the alpha band becomes the COG's mask, overviews included."""
    scan = generate_scan(parcels.geometry.values, tmp_path / "farbig.jpg", kind="affine")
    cfg = karten_config.with_overrides(karten__compression="jpeg")
    run_import(db, cfg, [scan.image])
    cog = tmp_path / "karten" / query(db, "SELECT pfad FROM kataster.karte")[0][0]
    _valid_cog(cog)
    with rasterio.open(cog) as src:
        assert src.count == 3 and src.overviews(1)
        assert src.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "YCbCr JPEG"
        assert src.read_masks(1, window=rasterio.windows.Window(0, 0, 4, 4)).max() == 0
    assert _corner_errors(cog, scan.checks).max() <= 0.5


def test_csv_points_and_a_placed_geotiff_with_alpha(db, karten_config, parcels, tmp_path):
    """Points as a CSV of pixel and map coordinates (given with --gcps and --srs); and an image
    already placed (a GeoTIFF with CRS and an alpha band, here the export of a sheet) is taken
    as it is, its alpha band kept as the transparent area."""
    import csv as csvmod

    scan = generate_scan(parcels.geometry.values, tmp_path / "blatt.png", kind="affine")
    points = tmp_path / "passpunkte.csv"
    with open(points, "w", newline="") as fh:
        w = csvmod.writer(fh)
        w.writerow(["id", "pixel_x", "pixel_y", "x", "y"])
        for k, (c, r, x, y) in enumerate(scan.gcps):
            w.writerow([f"P{k + 1}", f"{c:.3f}", f"{r:.3f}", f"{x:.3f}", f"{y:.3f}"])
    scan.points.unlink()
    run_import(db, karten_config, [scan.image],
               options={"gcps": str(points), "srs": "EPSG:25832", "blatt": "CSV"})
    pfad, rms, residuals = query(db, "SELECT pfad, rms_m, residuen FROM kataster.karte")[0]
    assert rms < 0.2 and residuals[0]["id"] == "P1"
    assert _corner_errors(tmp_path / "karten" / pfad, scan.checks).max() <= 0.5
    # The COG itself, copied elsewhere, imported as a placed image: a second sheet.
    placed = tmp_path / "platziert.tif"
    placed.write_bytes((tmp_path / "karten" / pfad).read_bytes())
    summary = run_import(db, karten_config, [placed], options={"blatt": "PLATZIERT"})
    assert summary["transformation"] == "georeferenziert"
    pfad2, area, area1 = query(db, "SELECT k.pfad, ST_Area(k.geom), (SELECT ST_Area(geom)"
                                   " FROM kataster.karte WHERE gml_id = 'CSV')"
                                   " FROM kataster.karte k WHERE gml_id = 'PLATZIERT'")[0]
    assert abs(area - area1) / area1 < 0.2      # the placed image's outline ⊇ the scan's
    with rasterio.open(tmp_path / "karten" / pfad2) as src:
        assert src.count == 4 and (src.read(4, window=rasterio.windows.Window(0, 0, 3, 3))
                                   == 0).all()
    assert _corner_errors(tmp_path / "karten" / pfad2, scan.checks).max() <= 0.5


def test_points_with_an_unknown_crs_are_refused(db, karten_config, parcels, tmp_path):
    scan = generate_scan(parcels.geometry.values, tmp_path / "blatt.tif", kind="affine")
    _points(scan, lambda ls: ["#CRS: EPSG:999999"] + ls[1:])
    with pytest.raises(SourceError, match="unknown coordinate system"):
        run_import(db, karten_config, [scan.image])
    assert query(db, "SELECT count(*) FROM kataster.karte")[0][0] == 0


def test_a_killed_scan_import_leaves_the_previous_state(db, cli_env, parcels, tmp_path):
    """kill -9 while the COG is being written: nothing is catalogued, the half-written files
    stay only until the next scan import, which removes them and succeeds."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    karten = tmp_path / "karten"
    env = dict(cli_env, KATASTER_KARTEN_DIR=str(karten))
    scan = generate_scan(parcels.geometry.values, tmp_path / "gross.tif", kind="affine",
                         dpi=900)                          # ~10,000 px wide: a few seconds
    exe = Path(sys.executable).with_name("kataster")
    proc = subprocess.Popen([str(exe), "import", str(scan.image)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(karten.rglob("*.tmp-*")) and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the import ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(karten.rglob("*.tmp-*"))                   # left behind by the kill
    time.sleep(3)                                          # the server notices the dead client
    assert query(db, "SELECT count(*) FROM kataster.karte")[0][0] == 0
    small = generate_scan(parcels.geometry.values, tmp_path / "klein.tif", kind="affine")
    kataster("import", small.image, env=env, check=True)
    assert not list(karten.rglob("*.tmp-*"))
    assert query(db, "SELECT count(*) FROM kataster.karte")[0][0] == 1
