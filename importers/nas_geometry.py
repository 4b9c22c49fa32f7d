"""GML 3.2 geometry of NAS files → shapely, with arcs stroked to a stated maximum deviation.

Supported: Point, MultiPoint, LineString, Curve (LineStringSegment, Arc, ArcString, Circle),
CompositeCurve, OrientableCurve, MultiCurve, LinearRing, Ring (of curve members), Polygon,
PolygonPatch, Surface, CompositeSurface, MultiSurface. Rings split into one curve per boundary
segment (as real extracts do) are concatenated.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

GML = "http://www.opengis.net/gml/3.2"
G = "{" + GML + "}"


class GeometryError(ValueError):
    pass


def _coords(el):
    """Coordinates of a posList / pos / coordinates child sequence as an (n, 2) array."""
    dim = int(el.get("srsDimension") or 2)
    plist = el.find(G + "posList")
    if plist is not None:
        dim = int(plist.get("srsDimension") or dim)
        values = np.array(plist.text.split(), dtype=float)
    else:
        pos = el.findall(G + "pos")
        if not pos:
            pos_el = el.findall(G + "pointProperty/" + G + "Point/" + G + "pos")
            pos = pos_el
        if not pos:
            raise GeometryError(f"no coordinates in {_local(el.tag)}")
        values = np.array(" ".join(p.text for p in pos).split(), dtype=float)
        dim = len(pos[0].text.split())
    if values.size % dim:
        raise GeometryError(f"{values.size} numbers do not form {dim}-dimensional positions")
    return values.reshape(-1, dim)[:, :2]


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _circle(p0, p1, p2):
    """Centre and radius of the circle through three points, or None if collinear."""
    (ax, ay), (bx, by), (cx, cy) = p0, p1, p2
    d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    if abs(d) < 1e-12 * max(1.0, abs(ax), abs(ay)):
        return None
    ux = ((ax * ax + ay * ay) * (by - cy) + (bx * bx + by * by) * (cy - ay)
          + (cx * cx + cy * cy) * (ay - by)) / d
    uy = ((ax * ax + ay * ay) * (cx - bx) + (bx * bx + by * by) * (ax - cx)
          + (cx * cx + cy * cy) * (bx - ax)) / d
    return (ux, uy), math.hypot(ax - ux, ay - uy)


def stroke_arc(p0, p1, p2, max_dev, full=False):
    """Points along the arc p0 → p1 → p2 (or the full circle) with at most ``max_dev`` sagitta.

    The returned array starts with p0 and ends with p2 exactly.
    """
    c = _circle(p0, p1, p2)
    if c is None:
        return np.array([p0, p2]) if not full else np.array([p0, p1, p0])
    (ux, uy), r = c
    a0 = math.atan2(p0[1] - uy, p0[0] - ux)
    a1 = math.atan2(p1[1] - uy, p1[0] - ux)
    a2 = math.atan2(p2[1] - uy, p2[0] - ux)
    ccw = ((p1[0] - p0[0]) * (p2[1] - p0[1]) - (p1[1] - p0[1]) * (p2[0] - p0[0])) > 0
    if full:
        sweep = 2 * math.pi if ccw else -2 * math.pi
    else:
        def span(a, b):
            return (b - a) % (2 * math.pi) if ccw else -((a - b) % (2 * math.pi))
        sweep = span(a0, a2)
        _ = a1
    step = 2 * math.acos(max(-1.0, 1 - max_dev / r)) if r > max_dev else math.pi / 2
    n = max(2, math.ceil(abs(sweep) / step))
    angles = a0 + sweep * np.linspace(0, 1, n + 1)
    pts = np.column_stack([ux + r * np.cos(angles), uy + r * np.sin(angles)])
    pts[0] = p0
    pts[-1] = p0 if full else p2
    return pts


def _curve_coords(el, max_dev):
    name = _local(el.tag)
    if name in ("LineString", "LineStringSegment", "LinearRing"):
        return _coords(el)
    if name == "Curve":
        parts = [_curve_coords(seg, max_dev) for seg in el.find(G + "segments")]
        return _join(parts)
    if name in ("Arc", "ArcString"):
        pts = _coords(el)
        if len(pts) < 3 or len(pts) % 2 == 0:
            raise GeometryError(f"{name} needs an odd number (≥ 3) of positions, got {len(pts)}")
        return _join([stroke_arc(pts[i], pts[i + 1], pts[i + 2], max_dev)
                      for i in range(0, len(pts) - 2, 2)])
    if name == "Circle":
        pts = _coords(el)
        return stroke_arc(pts[0], pts[1], pts[2], max_dev, full=True)
    if name == "OrientableCurve":
        base = _curve_coords(_first_child(el.find(G + "baseCurve")), max_dev)
        return base[::-1] if el.get("orientation") == "-" else base
    if name in ("CompositeCurve", "Ring"):
        return _join([_curve_coords(_first_child(m), max_dev)
                      for m in el.findall(G + "curveMember")])
    raise GeometryError(f"unsupported curve element gml:{name}")


def _first_child(el):
    if el is None:
        raise GeometryError("empty geometry property")
    for child in el:
        if isinstance(child.tag, str):
            return child
    raise GeometryError(f"empty gml:{_local(el.tag)}")


def _join(parts):
    """Concatenate coordinate runs, dropping the repeated joint points."""
    out = [parts[0]]
    for p in parts[1:]:
        last = out[-1][-1]
        if len(p) and abs(last[0] - p[0][0]) <= 1e-9 and abs(last[1] - p[0][1]) <= 1e-9:
            p = p[1:]
        out.append(p)
    return np.vstack(out) if len(out) > 1 else out[0]


def _ring(el, max_dev):
    ring = _first_child(el)
    coords = _curve_coords(ring, max_dev)
    if abs(coords[0][0] - coords[-1][0]) > 1e-9 or abs(coords[0][1] - coords[-1][1]) > 1e-9:
        raise GeometryError(f"ring of gml:{_local(ring.tag)} is not closed "
                            f"({coords[0].tolist()} … {coords[-1].tolist()})")
    coords[-1] = coords[0]
    return coords


def _polygon(el, max_dev):
    exterior = el.find(G + "exterior")
    if exterior is None:
        raise GeometryError("polygon without exterior")
    shell = _ring(exterior, max_dev)
    holes = [_ring(i, max_dev) for i in el.findall(G + "interior")]
    return shapely.Polygon(shell, holes)


def to_shapely(el, max_dev):
    """Convert a GML geometry element to a shapely geometry (coordinates as in the file)."""
    name = _local(el.tag)
    if name == "Point":
        return shapely.Point(_coords(el)[0])
    if name == "MultiPoint":
        return shapely.MultiPoint([to_shapely(_first_child(m), max_dev)
                                   for m in el.findall(G + "pointMember")])
    if name in ("Polygon", "PolygonPatch"):
        return _polygon(el, max_dev)
    if name == "Surface":
        polys = [_polygon(p, max_dev) for p in el.find(G + "patches")
                 if isinstance(p.tag, str)]
        return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
    if name in ("MultiSurface", "CompositeSurface"):
        polys = []
        for m in el.findall(G + "surfaceMember") + el.findall(G + "surfaceMembers"):
            for child in m:
                if isinstance(child.tag, str):
                    g = to_shapely(child, max_dev)
                    polys.extend(shapely.get_parts(g))
        return shapely.MultiPolygon(polys)
    if name == "MultiCurve":
        lines = [shapely.LineString(_curve_coords(_first_child(m), max_dev))
                 for m in el.findall(G + "curveMember")]
        return shapely.MultiLineString(lines)
    if name in ("LineString", "Curve", "CompositeCurve", "OrientableCurve"):
        return shapely.LineString(_curve_coords(el, max_dev))
    raise GeometryError(f"unsupported geometry gml:{name}")


GEOMETRY_NAMES = {"Point", "MultiPoint", "LineString", "Curve", "CompositeCurve", "OrientableCurve",
                  "MultiCurve", "Polygon", "Surface", "CompositeSurface", "MultiSurface"}
