"""Scanned maps: a scan with its ground control points, or an image already georeferenced.

The importer reads only what describes the scan: the image's header (size, bands, its own
georeferencing), the ground control points (a QGIS Georeferencer ``.points`` file beside the
scan or given with ``--gcps``, or a CSV of pixel and map coordinates) and the sheet's
attributes from the options. It checks the points, fits the transformation and measures its
accuracy, and hands the core one row for ``kataster.karte`` and one :class:`Scan` per sheet:
writing the Cloud-Optimized GeoTIFF is the core's step ``karte_cog`` (``pipeline.rasters``).

Pixel coordinates are (column, row) from the image's top-left corner, rows growing downwards;
QGIS writes rows as negative ``sourceY``, which is read as such.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from importers.base import Batch, ImportSource, SourceFile
from importers.crs import parse_crs, transformer
from pipeline.errors import CRSError, SourceError

SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}
WORLD_FILES = {".tif": ".tfw", ".tiff": ".tfw", ".png": ".pgw", ".jpg": ".jgw", ".jpeg": ".jgw"}
# Ground control points a transformation needs at least (a thin-plate spline passes through
# every point: its accuracy is measured leaving each one out, which needs a fourth).
MIN_GCPS = {"polynomial1": 3, "polynomial2": 6, "polynomial3": 10, "tps": 4}
TRANSFORMATIONS = tuple(MIN_GCPS)
SHEET_OPTIONS = ("titel", "kartenart", "massstab", "jahr", "gemarkung", "flur", "quelle",
                 "blatt", "rahmen")


@dataclass(frozen=True)
class Scan:
    """What the core's step warps: the image, the points in EPSG:25832, the method, where the
    COG goes (relative to ``karten.dir``) and how it is compressed."""

    path: Path
    gml_id: str
    pfad: str
    transformation: str           # polynomial1..3, tps, or "georeferenziert"
    gcps: tuple = ()              # (column, row, x, y) in EPSG:25832
    crs_wkt: str | None = None    # georeferenced input: its CRS
    compression: str = "deflate"
    frame: bytes | None = None    # the map frame (WKB, EPSG:25832): outside it is transparent


class ScanImporter:
    """Scans (TIFF, PNG, JPEG) with ground control points, or georeferenced images."""

    name = "scan"

    def detect(self, path):
        path = Path(path)
        return path.is_file() and path.suffix.lower() in SUFFIXES

    def open(self, paths, options, config):
        if len(paths) != 1 or Path(paths[0]).is_dir():
            raise SourceError(paths[0] if paths else "scan",
                              "a scan is imported one image at a time",
                              hint="run one import per scan (its points beside it or --gcps)")
        path = Path(paths[0])
        files = [SourceFile.of(path)]
        row, scan, extra = read_scan(path, options, config, files[0].sha256)
        files += [SourceFile.of(p) for p in extra]
        batch = Batch("kataster.karte", "Karte", pd.DataFrame([row]))
        return ImportSource(
            importer=self.name, files=files, source="scan", versioned=False,
            batches=lambda: iter([batch]), tables=["kataster.karte"],
            transformation=describe(row), options=dict(options),
            steps=("karte_cog",), rasters=[scan])


def describe(row):
    """What the run records as its transformation: the method, its accuracy, and the
    coordinate transformation the points went through."""
    text = row["transformation"]
    if row["rms_m"] is not None:
        text += f", RMS {row['rms_m']:.3f} m über {row['gcp_anzahl']} Passpunkte"
    if row["attrs"]:
        text += f"; Passpunkte: {row['attrs']['koordinatenumrechnung']}"
    return text


def read_scan(path, options, config, sha=None):
    """(row for kataster.karte, Scan, [files read besides the scan]) for one scan. The row's
    ``attrs`` name the coordinate transformation the points (or corners) went through."""
    from rasterio.errors import RasterioIOError

    method = options.get("transformation") or config["karten.transformation"]
    if method not in MIN_GCPS:
        raise SourceError(path, f"unknown transformation {method!r}",
                          hint=f"choose one of {', '.join(TRANSFORMATIONS)}")
    try:
        with open_plain(path) as src:
            width, height, count = src.width, src.height, src.count
            has_geo = src.crs is not None or not src.transform.is_identity
            crs_wkt = src.crs.to_wkt() if src.crs is not None else None
            transform = src.transform
            colormap = _has_colormap(src)
            alpha = count in (2, 4) and src.colorinterp[-1].name == "alpha"
    except RasterioIOError as err:
        raise SourceError(path, f"not a readable image: {_first_line(err)}",
                          hint="check that the file is a complete TIFF, PNG or JPEG") from None
    if width * height > config["karten.max_pixels"]:
        raise SourceError(path, f"the image has {width:,} × {height:,} = {width * height:,} "
                                f"pixels, more than karten.max_pixels ({config['karten.max_pixels']:,});"
                                " refused before reading (a possible decompression bomb)",
                          hint="raise karten.max_pixels if the scan is genuine")
    _check_complete(path, height)
    if colormap:
        raise SourceError(path, "the image has a colour palette, which the map services cannot "
                                "blend under the parcels", hint="save the scan as RGB or grey")
    if count - alpha not in (1, 3):
        raise SourceError(path, f"the image has {count} bands; a scan is grey (1) or RGB (3), "
                                "each with an alpha band or without",
                          hint="save the scan without extra bands")
    sha = sha or SourceFile.of(path).sha256
    gcp_file = _gcp_file(path, options)
    extra, gcps, residuals, rms = [], (), [], None
    if gcp_file is not None:
        extra.append(gcp_file)
        ids, pixel, world, crs = read_gcps(gcp_file, options.get("srs"))
        world, moved = _to_target(world, crs, gcp_file)
        check_gcps(gcp_file, ids, pixel, world, width, height, method)
        residuals, rms = accuracy(ids, pixel, world, method)
        if rms > config["karten.rms_max"]:
            worst = sorted(residuals, key=lambda r: -r["residual"])[:5]
            listed = ", ".join(f"{r['id']} ({r['residual']:.2f} m)" for r in worst)
            raise SourceError(gcp_file, f"the ground control points fit with an RMS of {rms:.2f} m, "
                                        f"more than karten.rms_max ({config['karten.rms_max']:g} m); "
                                        f"worst points: {listed}",
                              hint="correct or remove these points in QGIS's Georeferencer, or "
                                   "choose another --transformation; nothing was imported")
        gcps = tuple((float(c), float(r), float(x), float(y))
                     for (c, r), (x, y) in zip(pixel, world, strict=True))
        footprint = _footprint_gcps(pixel, world, width, height, method)
        crs_wkt = None
    elif has_geo:
        world_file = _world_file(path)
        if crs_wkt is None:
            if not options.get("srs"):
                raise SourceError(world_file or path,
                                  "the image is placed by a world file but names no coordinate "
                                  "system", hint="give it with --srs (e.g. --srs EPSG:25832)")
            crs_wkt = parse_crs(options["srs"], "--srs").to_wkt()
        if world_file is not None:
            extra.append(world_file)
        method = "georeferenziert"
        corners = np.array([transform @ (c, r) for c, r in
                            ((0, 0), (width, 0), (width, height), (0, height))])
        corners, moved = _to_target(corners, parse_crs(crs_wkt, str(path)), path)
        footprint = shapely.Polygon(corners)
    else:
        raise SourceError(path, "no ground control points and no georeferencing found",
                          hint=f"save the points from QGIS's Georeferencer as {path.name}.points "
                               "beside the scan, or give --gcps FILE")
    frame = None
    if options.get("rahmen"):
        frame = _frame(options["rahmen"], crs if gcp_file is not None else
                       parse_crs(crs_wkt, str(path)), path)
        footprint = footprint.intersection(frame)
        if footprint.is_empty or footprint.area <= 0:
            raise SourceError(path, "the map frame given with --sheet rahmen does not overlap the "
                                    "placed scan", hint="give the frame in the coordinate system "
                                                        "of the points: minx,miny,maxx,maxy")
        footprint = max(shapely.get_parts(footprint), key=lambda g: g.area)
    if not footprint.is_valid or footprint.area <= 0:
        raise SourceError(gcp_file or path, "the transformation folds the image over itself "
                                            "(the footprint is not a valid area)",
                          hint="check the ground control points for swapped coordinates")
    gml_id = options.get("blatt") or f"KARTE{sha[:11].upper()}"
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", gml_id):
        raise SourceError(path, f"sheet id {gml_id!r} may use only letters, digits, '_', '.' "
                                "and '-' (at most 64)", hint="choose another --sheet blatt=…")
    params = json.dumps([sha, method, gcps, crs_wkt, config["karten.compression"],
                         None if frame is None else frame.wkt])
    pfad = f"{gml_id}/{hashlib.sha256(params.encode()).hexdigest()[:16]}.tif"
    gemarkung = options.get("gemarkung")
    if gemarkung is not None and not re.fullmatch(r"\d{6}", str(gemarkung)):
        raise SourceError(path, f"--sheet gemarkung={gemarkung} is not a Gemarkungskennzeichen",
                          hint="give land and Gemarkungsnummer as 6 digits, e.g. 051234")
    row = {
        "gml_id": gml_id, "titel": options.get("titel") or path.stem,
        "kartenart": options.get("kartenart"), "massstab": _int(options, "massstab", path),
        "jahr": _int(options, "jahr", path), "gemarkung_kennzeichen": gemarkung,
        "flurnummer": _int(options, "flur", path), "quelle": options.get("quelle"),
        "datei": path.name, "sha256": sha,
        "gcp_datei": gcp_file.name if gcp_file is not None else None,
        "transformation": method, "gcp_anzahl": len(gcps) or None,
        "rms_m": None if rms is None else round(rms, 4),
        "residuen": residuals or None, "pfad": pfad,
        "geom": shapely.MultiPolygon([footprint]), "src": str(path),
    }
    scan = Scan(path, gml_id, pfad, method, gcps, crs_wkt, config["karten.compression"],
                None if frame is None else shapely.to_wkb(frame))
    row["attrs"] = {"koordinatenumrechnung": moved} if moved else {}
    return row, scan, extra


@contextmanager
def open_plain(path):
    """The image opened with rasterio, without its warning that a scan has no georeferencing
    of its own (that is what the points are for)."""
    import rasterio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            yield src


def _check_complete(path, height, rows=512):
    """Read the image once, in bands of rows (memory does not grow with it), so that a
    truncated or damaged file is refused here; GDAL's warper only logs such read errors."""
    from rasterio.errors import RasterioError
    from rasterio.windows import Window

    try:
        with open_plain(path) as src:
            for top in range(0, height, rows):
                src.read(window=Window(0, top, src.width, min(rows, height - top)))
    except RasterioError as err:
        raise SourceError(path, f"the image cannot be read to its end (truncated or damaged): "
                                f"{_first_line(err)}",
                          hint="copy or scan the sheet again; nothing was imported") from None


def _frame(text, crs, where):
    """The map frame ``minx,miny,maxx,maxy`` (in the points' coordinate system) as a polygon in
    EPSG:25832, its edges densified so that a Gauß-Krüger frame keeps its shape."""
    try:
        x0, y0, x1, y1 = (float(v) for v in str(text).split(","))
    except ValueError:
        raise SourceError(where, f"--sheet rahmen={text} is not minx,miny,maxx,maxy") from None
    if not (x0 < x1 and y0 < y1):
        raise SourceError(where, f"--sheet rahmen={text}: min must be below max")
    ring = shapely.get_coordinates(shapely.segmentize(shapely.box(x0, y0, x1, y1).exterior,
                                                      max(x1 - x0, y1 - y0) / 64))
    xy, _ = _to_target(ring, crs, where)
    return shapely.Polygon(xy)


def _first_line(err):
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _has_colormap(src):
    try:
        src.colormap(1)
    except ValueError:
        return False
    return True


def _int(options, key, path):
    value = options.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SourceError(path, f"--sheet {key}={value} is not a whole number") from None


def _gcp_file(path, options):
    if options.get("gcps"):
        given = Path(options["gcps"])
        if not given.is_file():
            raise SourceError(given, "file not found", hint="check the path given with --gcps")
        return given
    for candidate in (path.with_name(path.name + ".points"), path.with_suffix(".points"),
                      path.with_name(path.name + ".csv"), path.with_suffix(".csv")):
        if candidate.is_file():
            return candidate
    return None


def _world_file(path):
    ext = WORLD_FILES[path.suffix.lower()]
    for candidate in (path.with_suffix(ext), path.with_suffix(ext.upper()),
                      path.with_suffix(".wld")):
        if candidate.is_file():
            return candidate
    return None


_PIXEL = (("sourcex", "sourcey"), ("pixel_x", "pixel_y"), ("spalte", "zeile"), ("col", "row"))
_MAP = (("mapx", "mapy"), ("map_x", "map_y"), ("x", "y"), ("rechtswert", "hochwert"))


def read_gcps(path, srs=None):
    """(ids, pixel (n, 2) as column/row, map (n, 2), pyproj CRS) from a QGIS ``.points`` file or
    a CSV with a header naming pixel (sourceX/sourceY, pixel_x/pixel_y, spalte/zeile) and map
    columns (mapX/mapY, map_x/map_y, x/y, rechtswert/hochwert). Disabled points
    (``enable`` 0) are left out. The CRS comes from ``--srs``, else from a ``#CRS:`` line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise SourceError(path, f"cannot read the ground control points: {err}") from None
    crs_text = None
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            m = re.match(r"#\s*CRS\s*:\s*(.*)", line)
            if m:
                crs_text = m.group(1).strip() or None
            continue
        if line.strip():
            lines.append((number, line))
    if not lines:
        raise SourceError(path, "no ground control points in the file")
    header = [h.strip().lower() for h in next(csv.reader(io.StringIO(lines[0][1])))]
    pix = next((p for p in _PIXEL if set(p) <= set(header)), None)
    geo = next((g for g in _MAP if set(g) <= set(header)), None)
    if pix is None or geo is None:
        raise SourceError(f"{path}:{lines[0][0]}", f"the header {lines[0][1]!r} names no pixel "
                                                   "and map columns",
                          hint="expected mapX,mapY,sourceX,sourceY (QGIS) or "
                               "pixel_x,pixel_y,x,y")
    qgis = pix == ("sourcex", "sourcey")
    ids, pixel, world = [], [], []
    for number, line in lines[1:]:
        values = dict(zip(header, (v.strip() for v in next(csv.reader(io.StringIO(line)))),
                          strict=False))
        if values.get("enable", "1") in ("0", "false"):
            continue
        try:
            c, r = float(values[pix[0]]), float(values[pix[1]])
            x, y = float(values[geo[0]]), float(values[geo[1]])
        except (KeyError, TypeError, ValueError):
            raise SourceError(f"{path}:{number}", f"not a ground control point: {line!r}",
                              hint="each line needs four numbers") from None
        if not all(np.isfinite((c, r, x, y))):
            raise SourceError(f"{path}:{number}", f"not a finite coordinate: {line!r}")
        ids.append(values.get("id") or f"Punkt {len(ids) + 1} (Zeile {number})")
        pixel.append((c, -r if qgis else r))
        world.append((x, y))
    if srs:
        crs = parse_crs(srs, "--srs")
    elif crs_text:
        try:
            crs = parse_crs(crs_text, str(path))
        except CRSError as err:
            raise SourceError(path, f"the #CRS line names an unknown coordinate system: "
                                    f"{err.message}", hint="give the system with --srs") from None
    else:
        raise SourceError(path, "the file names no coordinate system for the map coordinates",
                          hint="give it with --srs (e.g. --srs EPSG:25832 or EPSG:31466)")
    return ids, np.array(pixel, dtype=float).reshape(-1, 2), \
        np.array(world, dtype=float).reshape(-1, 2), crs


def _to_target(xy, crs, where):
    """Map coordinates in EPSG:25832 (Gauß-Krüger through pyproj with BETA2007)."""
    tr, description = transformer(crs, str(where))
    if tr is None or len(xy) == 0:
        return xy, None
    x, y = tr.transform(xy[:, 0], xy[:, 1])
    out = np.column_stack([x, y])
    if not np.isfinite(out).all():
        raise SourceError(where, f"the map coordinates cannot be transformed from {crs.name} "
                                 "(not finite)", hint="check the coordinate system (--srs)")
    return out, description


def check_gcps(where, ids, pixel, world, width, height, method):
    """Refuse points outside the image, repeated points, too few for the method, and points on
    (nearly) one line."""
    n = len(ids)
    need = MIN_GCPS[method]
    if n < need:
        raise SourceError(where, f"{n} ground control points; the transformation {method} "
                                 f"needs at least {need}",
                          hint="add points or choose a lower --transformation")
    outside = [ids[i] for i in range(n) if not (0 <= pixel[i, 0] <= width
                                                 and 0 <= pixel[i, 1] <= height)]
    if outside:
        raise SourceError(where, f"ground control points outside the image ({width} × {height} "
                                 f"pixels): {', '.join(outside[:10])}",
                          hint="the points belong to another image, or their rows lost the "
                               "sign QGIS writes (sourceY is negative)")
    for name, pts, tol in (("pixel", pixel, 0.5), ("map", world, 0.01)):
        d = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
        same = np.argwhere(np.triu(d < tol, k=1))
        if len(same):
            i, j = same[0]
            raise SourceError(where, f"ground control points {ids[i]} and {ids[j]} "
                                     f"have the same {name} position", hint="remove one of them")
    for name, pts in (("pixel", pixel), ("map", world)):
        centred = pts - pts.mean(axis=0)
        s = np.linalg.svd(centred, compute_uv=False)
        if s[0] == 0 or s[-1] / s[0] < 1e-3:
            raise SourceError(where, f"the ground control points lie (nearly) on one line "
                                     f"({name} positions); they cannot place the image",
                              hint="add points spread over the whole sheet")


def _terms(pixel, order):
    """Polynomial terms of pixel positions (scaled to about ±1 for a stable fit)."""
    c, r = pixel[:, 0], pixel[:, 1]
    cols = [np.ones_like(c)]
    for degree in range(1, order + 1):
        for k in range(degree + 1):
            cols.append(c ** (degree - k) * r ** k)
    return np.column_stack(cols)


def _scaled(pixel, ref):
    centre = ref.mean(axis=0)
    scale = max(np.abs(ref - centre).max(), 1.0)
    return (pixel - centre) / scale


def _tps_fit(src, dst):
    n = len(src)
    d = np.hypot(*(src[:, None, :] - src[None, :, :]).transpose(2, 0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(d > 0, d ** 2 * np.log(d), 0.0)
    p = np.column_stack([np.ones(n), src])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    b = np.zeros((n + 3, 2))
    b[:n] = dst
    return np.linalg.solve(a, b)


def _tps_apply(coef, src, at):
    d = np.hypot(*(at[:, None, :] - src[None, :, :]).transpose(2, 0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(d > 0, d ** 2 * np.log(d), 0.0)
    n = len(src)
    return k @ coef[:n] + np.column_stack([np.ones(len(at)), at]) @ coef[n:]


def predict(pixel, world, method, at):
    """Map positions of pixel positions ``at`` under the transformation fitted to the points."""
    ref = pixel
    p, q = _scaled(pixel, ref), _scaled(np.asarray(at, dtype=float), ref)
    if method == "tps":
        return _tps_apply(_tps_fit(p, world), p, q)
    order = int(method[-1])
    coef, *_ = np.linalg.lstsq(_terms(p, order), world, rcond=None)
    return _terms(q, order) @ coef


def accuracy(ids, pixel, world, method):
    """Residual of every point in metres and their RMS. Polynomials: the least-squares fit's
    residuals (as QGIS's Georeferencer shows them). A thin-plate spline passes through every
    point, so each residual is measured leaving that point out of the fit."""
    if method == "tps":
        fitted = np.array([predict(np.delete(pixel, i, 0), np.delete(world, i, 0), method,
                                   pixel[i:i + 1])[0] for i in range(len(pixel))])
    else:
        fitted = predict(pixel, world, method, pixel)
    delta = world - fitted
    res = np.hypot(delta[:, 0], delta[:, 1])
    rows = [{"id": str(i), "dx": round(float(d[0]), 4), "dy": round(float(d[1]), 4),
             "residual": round(float(r), 4)} for i, d, r in zip(ids, delta, res, strict=True)]
    return rows, float(np.sqrt(np.mean(res ** 2)))


def _footprint_gcps(pixel, world, width, height, method):
    """The image's outline in EPSG:25832: its edges sampled every 1/32 and transformed."""
    t = np.linspace(0, 1, 33)[:-1]
    edge = np.concatenate([np.column_stack([t * width, np.zeros_like(t)]),
                           np.column_stack([np.full_like(t, width), t * height]),
                           np.column_stack([(1 - t) * width, np.full_like(t, height)]),
                           np.column_stack([np.zeros_like(t), (1 - t) * height])])
    return shapely.Polygon(predict(pixel, world, method, edge))
