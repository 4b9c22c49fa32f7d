"""Benchmark: georeferencing a large scan into a COG, against Debian's gdalwarp + gdal_translate.

Generates a 10,000 × 8,000 px RGB scan (uncompressed TIFF, 240 MB) of generated parcels with
12 ground control points, then in the same run:

* ours: ``kataster import`` of the scan (the whole run: the image read once to refuse a
  damaged file, its sha256, the points checked and fitted, the warp and the COG, the
  catalogue row committed) in a child process;
* the anchor: Debian's GDAL tools doing the same warp: ``gdal_translate -of VRT -gcp …``
  (attach the points), ``gdalwarp -order 1`` into a tiled GeoTIFF, ``gdal_translate -of COG``,
  with the same transformation (polynomial 1), resampling (bilinear), intermediate file (tiled,
  uncompressed: gdalwarp's default), final compression (DEFLATE with predictor 2, 512-pixel
  blocks), overviews (AUTO, average), warp memory (256 MB), cache (256 MB) and threads (2).

Prints both times, the ratio (anchor ÷ ours; the goal is ≥ 1.0) and each side's peak RSS.
Not a test; record the figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

THREADS = 2


def child_peak_mb():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def timed(cmd, env=None):
    """(seconds, peak RSS in MB) of a child process; peak RSS of all children so far is a
    running maximum, so each side runs in its own helper process."""
    probe = ("import resource, subprocess, sys, time, json; t = time.monotonic();"
             " r = subprocess.run(json.loads(sys.argv[1])); dt = time.monotonic() - t;"
             " print(json.dumps([r.returncode, dt,"
             " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))")
    out = subprocess.run([sys.executable, "-c", probe, json.dumps([str(c) for c in cmd])],
                         env=env, capture_output=True, text=True)
    code, seconds, peak = json.loads(out.stdout.strip().splitlines()[-1])
    if code != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{out.stderr[-3000:]}")
    return seconds, peak


def make_scan(work, width=10_050):
    """A generated scan about ``width`` pixels wide, its points beside it."""
    import shapely

    from pipeline.synthetic.city import build
    from pipeline.synthetic.scan import generate_scan

    layers = build(12_000, seed=5)
    parcels = layers["Flurstueck"]
    x0, y0 = parcels.total_bounds[:2]
    inside = parcels[parcels.geometry.within(shapely.box(x0 + 100, y0 + 100, x0 + 1500,
                                                         y0 + 1220))]
    bx = inside.total_bounds
    # The sheet plus the generator's margins (distortion, collar) ≈ width pixels.
    res = (bx[2] - bx[0]) * 1.2 / width
    dpi = 1000 * 0.0254 / res
    return generate_scan(inside.geometry.values, work / "grosse_flurkarte.tif", dpi=dpi,
                         kind="affine", n_gcps=12)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=10_150)
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out" / "georef"))
    args = ap.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    from import_vector import fresh_database, kataster_env

    from pipeline.embedded import EmbeddedCluster

    started = time.monotonic()
    scan = make_scan(work, args.width)
    import rasterio

    with rasterio.open(scan.image) as src:
        size = (src.width, src.height, src.count)
    print(f"scan: {size[0]} x {size[1]} px, {size[2]} bands, "
          f"{scan.image.stat().st_size / 1e6:.0f} MB, 12 control points "
          f"(generated in {time.monotonic() - started:.0f} s)", flush=True)

    cluster = EmbeddedCluster(work / "state")
    cluster.up()
    try:
        url = fresh_database(cluster.url("postgres", "admin"), "bench_georef")
        env = kataster_env(url, work / "s", KATASTER_KARTEN_DIR=str(work / "karten"),
                           KATASTER_VALIDATION_AFTER_IMPORT="false")
        exe = Path(sys.executable).with_name("kataster")
        from pipeline.db import Database

        Database(url).prepare()

        # The anchor: Debian's GDAL command-line tools.
        gdal_env = dict(os.environ, GDAL_CACHEMAX="256", GDAL_NUM_THREADS=str(THREADS))
        gcps = [a for c, r, x, y in scan.gcps for a in ("-gcp", c, r, x, y)]
        vrt, warped, cog = work / "gcps.vrt", work / "warped.tif", work / "gdal_cog.tif"
        anchor = 0.0
        peaks = []
        for cmd in (["gdal_translate", "-q", "-of", "VRT", "-a_srs", "EPSG:25832", *gcps,
                     scan.image, vrt],
                    ["gdalwarp", "-q", "-order", "1", "-r", "bilinear", "-t_srs", "EPSG:25832",
                     "-dstalpha", "-multi", "-wo", f"NUM_THREADS={THREADS}", "-wm", "256",
                     "-co", "TILED=YES", "-co", "BLOCKXSIZE=512", "-co", "BLOCKYSIZE=512",
                     "-co", "BIGTIFF=IF_SAFER", vrt, warped],
                    ["gdal_translate", "-q", "-of", "COG", "-co", "COMPRESS=DEFLATE",
                     "-co", "PREDICTOR=2", "-co", "BLOCKSIZE=512", "-co", "OVERVIEWS=AUTO",
                     "-co", "OVERVIEW_RESAMPLING=AVERAGE", "-co", f"NUM_THREADS={THREADS}",
                     "-co", "BIGTIFF=IF_SAFER", warped, cog]):
            seconds, peak = timed(cmd, gdal_env)
            anchor += seconds
            peaks.append(peak)
        print(f"gdalwarp + gdal_translate: {anchor:.1f} s, peak RSS {max(peaks):.0f} MB",
              flush=True)

        ours, our_peak = timed([exe, "import", scan.image, "--transformation", "polynomial1",
                                "--json"], env)
        cogs = list((work / "karten").rglob("*.tif"))
        assert len(cogs) == 1, cogs
        print(f"kataster import:           {ours:.1f} s, peak RSS {our_peak:.0f} MB", flush=True)
        with rasterio.open(cogs[0]) as a, rasterio.open(cog) as b:
            sizes = f"ours {a.width} x {a.height}, GDAL's {b.width} x {b.height}"
        print(f"\nCOG sizes: {sizes}; files {cogs[0].stat().st_size / 1e6:.0f} MB and "
              f"{cog.stat().st_size / 1e6:.0f} MB")
        print(f"ratio (gdalwarp + gdal_translate) / ours: {anchor / ours:.2f}")
        print("\n| side | seconds | peak RSS |\n| --- | ---: | ---: |")
        print(f"| kataster import (whole run) | {ours:.1f} | {our_peak:.0f} MB |")
        print(f"| gdalwarp + gdal_translate -of COG | {anchor:.1f} | {max(peaks):.0f} MB |")
    finally:
        cluster.destroy()


if __name__ == "__main__":
    main()
