"""Scans we make ourselves: parcels drawn as an old Flurkarte, distorted as paper and scanner
distort it, with ground control points at known parcel corners.

The parcels (shapely polygons in EPSG:25832) are drawn at a map scale and resolution (lines
and Zähler), on a paper tone with noise and a frame. The sheet is then distorted: an affine
part (rotation, scale, shear) and, for ``smooth``, a gentle non-linear warp (a few pixels, as
paper shrinks unevenly). Ground control points are parcel corners spread over the sheet;
other corners are returned as check points. Used by the tests, the demo and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely


@dataclass
class GeneratedScan:
    image: Path
    points: Path
    gcps: np.ndarray          # (n, 4): column, row, x, y
    checks: np.ndarray        # (m, 2): x, y of corners that are not control points
    resolution: float         # metres per pixel of the undistorted sheet


def _distortion(kind, width, height, rng):
    angle = np.radians(rng.uniform(2, 4))
    sx, sy, shear = 1.03, 0.98, 0.015
    a = np.array([[sx * np.cos(angle), -np.sin(angle) + shear],
                  [np.sin(angle), sy * np.cos(angle)]])
    offset = np.array([0.08 * width, 0.05 * height])

    def apply(px):
        px = np.asarray(px, dtype=float)
        out = px @ a.T + offset
        if kind == "smooth":
            out = out + np.column_stack([
                4.0 * np.sin(px[:, 1] / height * np.pi) * np.sin(px[:, 0] / width * np.pi),
                3.0 * np.sin(px[:, 0] / width * 2 * np.pi)])
        return out
    corners = apply(np.array([[0, 0], [width, 0], [width, height], [0, height]]))
    size = np.ceil(corners.max(axis=0) + 0.08 * np.array([width, height])).astype(int)
    return apply, size


def generate_scan(parcels, out, scale=1000, dpi=150, kind="affine", n_gcps=12, seed=1,
                  fmt="tif"):
    """Draw ``parcels`` (shapely polygons, EPSG:25832) as a distorted scan at ``out`` (a TIFF,
    PNG or JPEG by suffix) with a QGIS ``.points`` file beside it."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = Path(out)
    geoms = shapely.get_parts(np.asarray(parcels, dtype=object))
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    res = scale * 0.0254 / dpi
    width, height = int((x1 - x0) / res) + 1, int((y1 - y0) / res) + 1
    apply, size = _distortion(kind, width, height, rng)

    def to_scan(xy):
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        return apply(np.column_stack([(xy[:, 0] - x0) / res, (y1 - xy[:, 1]) / res]))

    paper = np.array([236, 226, 196], dtype=np.int16)
    sheet = np.empty((size[1], size[0], 3), dtype=np.uint8)
    for top in range(0, size[1], 512):          # in bands of rows: large scans stay cheap
        rows = min(512, size[1] - top)
        noise = rng.integers(-10, 11, (rows, size[0], 1), dtype=np.int16)
        sheet[top:top + rows] = np.clip(paper + noise, 0, 255)
    img = Image.fromarray(sheet, "RGB")
    draw = ImageDraw.Draw(img)
    ink = (60, 40, 30)
    rings = shapely.get_exterior_ring(geoms)
    dense = shapely.segmentize(rings, max_segment_length=res * 20)
    for ring in dense:
        pts = to_scan(shapely.get_coordinates(ring))
        draw.line([tuple(p) for p in pts], fill=ink, width=2)
    for k, g in enumerate(geoms):
        p = shapely.point_on_surface(g)
        c = to_scan([[p.x, p.y]])[0]
        draw.text((c[0] - 6, c[1] - 5), str(k + 1), fill=ink)
    frame = to_scan(shapely.get_coordinates(shapely.segmentize(
        shapely.box(x0, y0, x1, y1).exterior, res * 50)))
    draw.line([tuple(p) for p in frame], fill=ink, width=4)
    img.save(out)

    corners = np.unique(np.round(shapely.get_coordinates(rings), 3), axis=0)
    targets = np.array([[x0 + (x1 - x0) * fx, y0 + (y1 - y0) * fy]
                        for fy in np.linspace(0.05, 0.95, 3)
                        for fx in np.linspace(0.05, 0.95, max(n_gcps // 3, 2))])[:n_gcps]
    chosen = []
    for t in targets:
        d = np.hypot(*(corners - t).T)
        d[chosen] = np.inf
        chosen.append(int(np.argmin(d)))
    world = corners[chosen]
    pixel = to_scan(world)
    rest = np.delete(corners, chosen, axis=0)
    inner = (rest[:, 0] > x0 + 5) & (rest[:, 0] < x1 - 5) & (rest[:, 1] > y0 + 5) & \
        (rest[:, 1] < y1 - 5)
    checks = rest[inner][rng.permutation(int(inner.sum()))[:20]]
    points = out.with_name(out.name + ".points")
    lines = ["#CRS: EPSG:25832", "mapX,mapY,sourceX,sourceY,enable,dX,dY,residual"]
    lines += [f"{x:.3f},{y:.3f},{c:.3f},{-r:.3f},1,0,0,0"
              for (c, r), (x, y) in zip(pixel, world, strict=True)]
    points.write_text("\n".join(lines) + "\n")
    return GeneratedScan(out, points, np.column_stack([pixel, world]), checks, res)
