"""Scanned maps in the core: each scan warped into a Cloud-Optimized GeoTIFF, atomically.

The step ``karte_cog`` (``pipeline.steps``) calls :func:`write_all` inside the import's
transaction. Every COG is written beside its place under ``karten.dir`` with a name ending in
``.tmp-<pid>``; :func:`publish` moves it into place once the run has committed, and
:func:`discard` removes it when the run fails. Temporary files of a killed run (their process
is gone) are removed at the next start. Nothing is written outside ``karten.dir``.

The warp is GDAL's, through rasterio: the scan's ground control points (EPSG:25832) with a
polynomial of order 1–3 or a thin-plate spline, bilinear resampling, an alpha band so that
the area outside the scan stays transparent, then GDAL's COG driver (512-pixel tiles,
overviews, deflate or JPEG).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

import shapely

from pipeline.config import project_dir
from pipeline.errors import SourceError
from pipeline.validation.findings import Finding
from schemas import sql_text

log = logging.getLogger(__name__)

TARGET = "EPSG:25832"
_TMP = re.compile(r"\.tmp-(\d+)(\.warp)?$")     # the COG being written, its warp file


def karten_dir(config):
    """The directory of the COGs (``karten.dir``; relative: from the project directory)."""
    path = Path(config["karten.dir"]).expanduser()
    if not path.is_absolute():
        path = project_dir(config) / path
    return path.resolve()


def remove_leftovers(root):
    """Remove temporary files of runs whose process is gone (a killed import)."""
    for path in Path(root).rglob("*.tmp-*"):
        m = _TMP.search(path.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            path.unlink(missing_ok=True)


def write_all(ctx):
    """Write the COG of every scan of the run; returns the findings on the sheets."""
    if not ctx.rasters:
        return []
    root = karten_dir(ctx.config)
    root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(root)
    for scan in ctx.rasters:
        final = (root / scan.pfad).resolve()
        if not final.is_relative_to(root):
            raise SourceError(scan.path, f"the map's place {scan.pfad!r} lies outside "
                                         "karten.dir; refused")
        if not final.exists():          # the same scan, points and method: the same file
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
            ctx.files.append((tmp, final))
            write_cog(scan, tmp)
            done = tmp
        else:
            done = final
        width, height, resolution = _size(done)
        ctx.conn.execute(sql_text("steps/karte_raster.sql"),
                         {"breite": width, "hoehe": height, "aufloesung": resolution,
                          "gml_id": scan.gml_id})
    return checks(ctx.conn, ctx.loader.run_id, ctx.config)


def publish(ctx):
    """Move the files of a committed run into place."""
    for tmp, final in (ctx.files if ctx is not None else ()):
        os.replace(tmp, final)


def discard(ctx):
    """Remove the files of a failed run."""
    for tmp, _ in (ctx.files if ctx is not None else ()):
        Path(tmp).unlink(missing_ok=True)        # (write_cog removes its own warp file)


def _size(path):
    import rasterio

    with rasterio.open(path) as src:
        return src.width, src.height, abs(src.transform.a)


def write_cog(scan, out, threads=2):
    """Warp one scan into a Cloud-Optimized GeoTIFF at ``out``.

    The warp goes into an uncompressed tiled GeoTIFF beside ``out`` (in pieces of
    ``warp_mem_limit``, so memory does not grow with the image; on disk it takes the image's
    raw size and a third more for the overviews, until the run ends), whose overviews are
    computed there; GDAL's COG driver then compresses both into the COG's layout."""
    import rasterio
    from rasterio.control import GroundControlPoint
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioError
    from rasterio.shutil import copy as rio_copy
    from rasterio.warp import calculate_default_transform, reproject

    warp = Path(f"{out}.warp")
    try:
        with rasterio.Env(GDAL_CACHEMAX=256, GDAL_NUM_THREADS=threads):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                plain = rasterio.open(scan.path)
            with plain:
                # An alpha band of the source (a placed GeoTIFF often has one) stays a mask.
                alpha = plain.count if plain.colorinterp[-1].name == "alpha" and \
                    plain.count in (2, 4) else 0
                n, dtype = plain.count - bool(alpha), plain.dtypes[0]
                size, bounds, own = (plain.width, plain.height), plain.bounds, plain.transform
            if scan.gcps:
                # z, id and info given: rasterio writes missing ones as "None" into the VRT
                # it hands GDAL, and GDAL then finds no transformation.
                gcps = [GroundControlPoint(row=r, col=c, x=x, y=y, z=0.0, id=str(k), info="")
                        for k, (c, r, x, y) in enumerate(scan.gcps)]
                method = ({"SRC_METHOD": "GCP_TPS"} if scan.transformation == "tps" else
                          {"SRC_METHOD": "GCP_POLYNOMIAL",
                           "MAX_GCP_ORDER": int(scan.transformation[-1])})
                transform, width, height = calculate_default_transform(
                    TARGET, TARGET, *size, gcps=gcps, **method)
                # The warper takes the points from its source: the scan seen through a VRT
                # that carries them (the scan itself is only read).
                source, src_crs, where = _with_gcps(scan, n + bool(alpha), size), TARGET, {}
            else:
                method = {}
                transform, width, height = calculate_default_transform(
                    scan.crs_wkt, TARGET, *size, *bounds)
                source, src_crs, where = str(scan.path), scan.crs_wkt, {"src_transform": own}
            profile = {"driver": "GTiff", "width": width, "height": height, "count": n + 1,
                       "dtype": dtype, "crs": TARGET, "transform": transform,
                       "tiled": True, "blockxsize": 512, "blockysize": 512,
                       "bigtiff": "if_safer",
                       "photometric": "rgb" if n == 3 else "minisblack"}
            with rasterio.open(source) as src, rasterio.open(warp, "w+", **profile) as dst:
                dst.colorinterp = _colours(n)
                reproject(rasterio.band(src, list(range(1, n + 1))),
                          rasterio.band(dst, list(range(1, n + 1))),
                          src_crs=src_crs, dst_transform=transform, dst_crs=TARGET,
                          src_alpha=alpha, dst_alpha=n + 1, resampling=Resampling.bilinear,
                          num_threads=threads, warp_mem_limit=256, **where, **method)
                if scan.frame is not None:
                    mask_outside(dst, n + 1, shapely.from_wkb(scan.frame))
            # Overviews down to one block, computed here on the uncompressed file (GDAL 3.10's
            # COG driver computing them itself took twice as long in all); in a second
            # opening, as a file still being created may be written as strips.
            with rasterio.open(warp, "r+") as dst:
                dst.build_overviews(_levels(width, height), Resampling.average)
        # JPEG: the alpha band becomes the COG's mask, and the driver computes the overviews
        # itself (given ones are dropped with the alpha band).
        options = {"COMPRESS": "JPEG", "QUALITY": 90, "OVERVIEWS": "IGNORE_EXISTING",
                   "OVERVIEW_RESAMPLING": "AVERAGE"} if scan.compression == "jpeg" else \
            {"COMPRESS": "DEFLATE", "PREDICTOR": 2, "OVERVIEWS": "FORCE_USE_EXISTING"}
        with rasterio.Env(GDAL_CACHEMAX=256):
            rio_copy(warp, out, driver="COG", BLOCKSIZE=512, NUM_THREADS=threads,
                     BIGTIFF="IF_SAFER", **options)
    except RasterioError as err:
        raise SourceError(scan.path, f"the scan cannot be read or warped: "
                                     f"{str(err).strip().splitlines()[0]}",
                          hint="check that the image is complete (not truncated); nothing "
                               "was imported") from None
    finally:
        warp.unlink(missing_ok=True)


def mask_outside(dst, alpha, frame):
    """Make the collar (outside the map frame) transparent, block by block."""
    from rasterio.features import geometry_mask

    for _, window in dst.block_windows(alpha):
        inside = geometry_mask([frame], (window.height, window.width),
                               dst.window_transform(window), invert=True)
        if inside.all():
            continue
        band = dst.read(alpha, window=window)
        band[~inside] = 0
        dst.write(band, alpha, window=window)


def _with_gcps(scan, n, size):
    """A VRT (as XML text, which GDAL opens like a file name) of the scan with its points."""
    from xml.sax.saxutils import escape, quoteattr

    points = "".join(f'<GCP Id="{k}" Pixel="{c!r}" Line="{r!r}" X="{x!r}" Y="{y!r}" Z="0"/>'
                     for k, (c, r, x, y) in enumerate(scan.gcps))
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}"><SimpleSource>'
        f'<SourceFilename relativeToVRT="0">{escape(str(Path(scan.path).resolve()))}'
        f"</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>"
        for b in range(1, n + 1))
    return (f'<VRTDataset rasterXSize="{size[0]}" rasterYSize="{size[1]}">'
            f"<GCPList Projection={quoteattr(TARGET)}>{points}</GCPList>{bands}</VRTDataset>")


def _levels(width, height, block=512):
    """Overview factors 2, 4, … until the image fits in one block (what the COG driver's
    OVERVIEWS=AUTO makes)."""
    levels, factor = [], 2
    while max(width, height) / (factor // 2) > block:
        levels.append(factor)
        factor *= 2
    return levels


def _colours(n):
    from rasterio.enums import ColorInterp

    bands = [ColorInterp.red, ColorInterp.green, ColorInterp.blue] if n == 3 else \
        [ColorInterp.gray]
    return bands + [ColorInterp.alpha]


def checks(conn, run_id, config):
    """Findings on the sheets this run stored: a footprint that does not meet the claimed
    district (karte.lage), an RMS above ``karten.rms_warning`` (karte.genauigkeit)."""
    findings = []
    for gml_id, kennzeichen, flur, wkb, known in conn.execute(
            sql_text("steps/karte_lage.sql"), {"run": run_id}).fetchall():
        district = f"Gemarkung {kennzeichen}" + (f" Flur {flur}" if flur is not None else "")
        said = ("ist nicht im Bestand" if not known else
                "wird von der eingepassten Karte nicht berührt")
        findings.append(Finding("karte.lage", gml_id,
                                f"Karte {gml_id}: die angegebene {district} {said}",
                                geom=shapely.from_wkb(wkb)))
    limit = config["karten.rms_warning"]
    for gml_id, rms, wkb in conn.execute(sql_text("steps/karte_genauigkeit.sql"),
                                         {"run": run_id, "limit": limit}).fetchall():
        findings.append(Finding("karte.genauigkeit", gml_id,
                                f"Karte {gml_id}: Passpunkte mit RMS {rms:.2f} m "
                                f"(Warnschwelle {limit:g} m)", geom=shapely.from_wkb(wkb)))
    return findings
