"""GML geometry of NAS files → shapely, with arcs stroked to a stated maximum deviation.

Supported, in the GML 3.2 forms and the GML 3.1 forms older extracts use:

* points: Point, MultiPoint (``pointMember``/``pointMembers``);
* curves: LineString, Curve with the segments LineStringSegment, Arc, ArcString, Circle,
  ArcByCenterPoint, CircleByCenterPoint; CompositeCurve, OrientableCurve (``orientation="-"``
  reverses), MultiCurve (``curveMember``/``curveMembers``);
* surfaces: Polygon and PolygonPatch with exterior/interior of LinearRing or Ring (of curve
  members); Surface with ``gml:patches`` or ``gml:polygonPatches``; CompositeSurface,
  MultiSurface (``surfaceMember``/``surfaceMembers``);
* positions: ``pos``, ``posList``, ``coordinates`` and ``pointProperty``; ``srsDimension`` 3
  (the height is dropped); a ``srsName`` on an inner element (a position with its own CRS).

Rings split into one curve per boundary segment (as real extracts do) are concatenated.

Arcs are stroked from a canonical end: the end point that sorts first. Two neighbours that share
an arc (one writes it forwards, the other backwards) therefore get exactly the same vertices,
and their boundaries meet without gaps or overlaps of precision dust.

Anything else is a :class:`GeometryError` naming the element and its line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
import shapely.errors

GML = "http://www.opengis.net/gml/3.2"
GML31 = "http://www.opengis.net/gml"
G = "{" + GML + "}"


class GeometryError(ValueError):
    """A geometry cannot be read; ``line`` is the line of the offending element."""

    def __init__(self, message, line=None):
        self.line = line
        super().__init__(message)


class HeightOnly(Exception):
    """A point with a single coordinate: a height in the CRS ``srs``, not a map position."""

    def __init__(self, value, srs):
        self.value = value
        self.srs = srs
        super().__init__(f"height {value} in {srs}")


@dataclass
class Context:
    """What one conversion needs and collects: the maximum arc deviation, the ``srsName``
    values found on inner elements, and the srsDimension in force."""

    max_dev: float
    inner_srs: set = field(default_factory=set)


_LOCAL = {}          # tag -> local name (a document has a few dozen distinct tags)
_GML_LOCAL = {}      # tag -> local name of a GML 3.2 or 3.1 element, "" for others


def local_name(tag):
    """The local name of an element's tag ("" for comments and other nodes), cached."""
    name = _LOCAL.get(tag)
    if name is None:
        name = tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
        if len(_LOCAL) < 10_000:
            _LOCAL[tag] = name
    return name


def _gml_local(tag):
    name = _GML_LOCAL.get(tag)
    if name is None:
        name = local_name(tag) if isinstance(tag, str) and tag[1:].startswith((GML, GML31)) else ""
        if len(_GML_LOCAL) < 10_000:
            _GML_LOCAL[tag] = name
    return name


def _children(el, name):
    """Child elements called ``name`` in the GML 3.2 or 3.1 namespace."""
    return [c for c in el if _gml_local(c.tag) == name]


def _child(el, name):
    found = _children(el, name)
    return found[0] if found else None


def _elements(el):
    return [c for c in el if isinstance(c.tag, str)]


def _fail(el, message):
    raise GeometryError(message, getattr(el, "sourceline", None))


def _dimension(el):
    """srsDimension of ``el`` or the nearest ancestor that states it (2 if none does)."""
    node = el
    while node is not None:
        d = node.get("srsDimension")
        if d:
            try:
                return int(d)
            except ValueError:
                _fail(el, f"srsDimension {d!r} is not a number")
        node = node.getparent()
    return None


def _numbers(el, text):
    try:
        values = np.array(text.split(), dtype=float)
    except ValueError:
        _fail(el, f"gml:{local_name(el.tag)} holds something that is not a number: "
                  f"{text.strip()[:60]!r}")
    if not np.isfinite(values).all():
        _fail(el, f"gml:{local_name(el.tag)} holds a coordinate that is not a finite number "
                  f"({values[~np.isfinite(values)][0]})")
    return values


def _note_srs(el, ctx):
    srs = el.get("srsName")
    if srs:
        ctx.inner_srs.add(srs.strip())


def _coords(el, ctx):
    """Coordinates of the posList / pos / coordinates / pointProperty children of ``el``
    as an (n, 2) array (a third dimension is dropped)."""
    plist = _child(el, "posList")
    if plist is not None:
        _note_srs(plist, ctx)
        values = _numbers(plist, plist.text or "")
        dim = _dimension(plist) or 2
        return _reshape(plist, values, dim)
    coordinates = _child(el, "coordinates")
    if coordinates is not None:
        _note_srs(coordinates, ctx)
        cs, ts = coordinates.get("cs", ","), coordinates.get("ts", " ")
        decimal = coordinates.get("decimal", ".")
        tuples = [t for t in (coordinates.text or "").strip().split(ts) if t.strip()]
        rows = []
        for t in tuples:
            parts = [p.replace(decimal, ".") for p in t.strip().split(cs)]
            rows.append(_numbers(coordinates, " ".join(parts)))
        if not rows:
            _fail(coordinates, "empty gml:coordinates")
        if len({len(r) for r in rows}) != 1 or len(rows[0]) < 2:
            _fail(coordinates, "gml:coordinates with tuples of different or too few numbers")
        return np.vstack(rows)[:, :2]
    positions = []
    for child in _elements(el):
        name = local_name(child.tag)
        if name == "pos":
            positions.append(child)
        elif name in ("pointProperty", "pointRep"):
            point = _child(child, "Point")
            if point is None:
                _fail(child, f"gml:{name} without a gml:Point (references are not supported)")
            _note_srs(point, ctx)
            pos = _child(point, "pos")
            positions.append(pos if pos is not None else point)
    if not positions:
        _fail(el, f"no coordinates in gml:{local_name(el.tag)}")
    rows = []
    for pos in positions:
        if local_name(pos.tag) != "pos":
            rows.append(_coords(pos, ctx)[0])
            continue
        _note_srs(pos, ctx)
        values = _numbers(pos, pos.text or "")
        if len(values) < 2:
            _fail(pos, f"gml:pos with {len(values)} number(s) where a position needs 2 or 3")
        rows.append(values[:2])
    return np.vstack(rows)


def _reshape(el, values, dim):
    if dim not in (2, 3):
        _fail(el, f"srsDimension {dim} is not supported (2 or 3)")
    if values.size == 0 or values.size % dim:
        _fail(el, f"{values.size} numbers do not form {dim}-dimensional positions")
    return values.reshape(-1, dim)[:, :2]


def _circle(p0, p1, p2):
    """Centre and radius of the circle through three points, or None if collinear."""
    (ax, ay), (bx, by), (cx, cy) = p0, p1, p2
    # Relative to p0: keeps the arithmetic exact enough with UTM's 7-digit coordinates.
    bx, by, cx, cy = bx - ax, by - ay, cx - ax, cy - ay
    d = 2 * (bx * cy - by * cx)
    if abs(d) < 1e-12 * max(1.0, bx * bx + by * by, cx * cx + cy * cy):
        return None
    b2, c2 = bx * bx + by * by, cx * cx + cy * cy
    ux = (cy * b2 - by * c2) / d
    uy = (bx * c2 - cx * b2) / d
    return (ax + ux, ay + uy), math.hypot(ux, uy)


def _canonical_first(p0, p2):
    """True if p0 is the arc's canonical start (the end point that sorts first)."""
    return (p0[0], p0[1]) <= (p2[0], p2[1])


def stroke_arc(p0, p1, p2, max_dev, full=False):
    """Points along the arc p0 → p1 → p2 (or the full circle) with at most ``max_dev`` sagitta.

    The returned array starts with p0 and ends with p2 exactly. An arc is stroked from its
    canonical end, so the same arc written in the opposite direction gives the same vertices
    in reverse order.
    """
    p0, p1, p2 = (np.asarray(p, dtype=float) for p in (p0, p1, p2))
    if not full and not _canonical_first(p0, p2):
        return stroke_arc(p2, p1, p0, max_dev)[::-1].copy()
    c = _circle(p0, p1, p2)
    if c is None:
        return np.array([p0, p2]) if not full else np.array([p0, p1, p0])
    (ux, uy), r = c
    a0 = math.atan2(p0[1] - uy, p0[0] - ux)
    a2 = math.atan2(p2[1] - uy, p2[0] - ux)
    ccw = ((p1[0] - p0[0]) * (p2[1] - p0[1]) - (p1[1] - p0[1]) * (p2[0] - p0[0])) > 0
    if full:
        sweep = 2 * math.pi if ccw else -2 * math.pi
    else:
        sweep = (a2 - a0) % (2 * math.pi) if ccw else -((a0 - a2) % (2 * math.pi))
    return _stroke(ux, uy, r, a0, sweep, max_dev, p0, p0 if full else p2)


def _stroke(ux, uy, r, a0, sweep, max_dev, first, last):
    step = 2 * math.acos(max(-1.0, 1 - max_dev / r)) if r > max_dev else math.pi / 2
    n = max(2, math.ceil(abs(sweep) / step))
    angles = a0 + sweep * np.linspace(0, 1, n + 1)
    pts = np.column_stack([ux + r * np.cos(angles), uy + r * np.sin(angles)])
    if first is not None:
        pts[0] = first
    if last is not None:
        pts[-1] = last
    return pts


def _by_center(el, ctx, full):
    """ArcByCenterPoint / CircleByCenterPoint: centre, radius, start and end angle (degrees,
    counter-clockwise from the x axis, as GML defines them)."""
    centre = _coords(el, ctx)[0]
    radius_el = _child(el, "radius")
    if radius_el is None:
        _fail(el, f"gml:{local_name(el.tag)} without gml:radius")
    radius = float(_numbers(radius_el, radius_el.text or "")[0])
    if radius <= 0:
        _fail(radius_el, f"radius {radius} is not positive")
    if full:
        pts = _stroke(centre[0], centre[1], radius, 0.0, 2 * math.pi, ctx.max_dev, None, None)
        pts[-1] = pts[0]
        return pts
    angles = []
    for name in ("startAngle", "endAngle"):
        a = _child(el, name)
        if a is None:
            _fail(el, f"gml:ArcByCenterPoint without gml:{name}")
        value = float(_numbers(a, a.text or "")[0])
        if (a.get("uom") or "").lower() in ("rad", "urn:ogc:def:uom:epsg::9101"):
            value = math.degrees(value)
        angles.append(math.radians(value))
    sweep = angles[1] - angles[0]
    return _stroke(centre[0], centre[1], radius, angles[0], sweep, ctx.max_dev, None, None)


def _curve_coords(el, ctx):
    name = local_name(el.tag)
    if name in ("LineString", "LineStringSegment", "LinearRing"):
        return _coords(el, ctx)
    if name == "Curve":
        segments = _child(el, "segments")
        if segments is None or not _elements(segments):
            _fail(el, "gml:Curve without segments")
        return _join([_curve_coords(seg, ctx) for seg in _elements(segments)])
    if name in ("Arc", "ArcString"):
        pts = _coords(el, ctx)
        if len(pts) < 3 or len(pts) % 2 == 0:
            _fail(el, f"gml:{name} needs an odd number (≥ 3) of positions, got {len(pts)}")
        return _join([stroke_arc(pts[i], pts[i + 1], pts[i + 2], ctx.max_dev)
                      for i in range(0, len(pts) - 2, 2)])
    if name == "Circle":
        pts = _coords(el, ctx)
        if len(pts) < 3:
            _fail(el, f"gml:Circle needs 3 positions, got {len(pts)}")
        return stroke_arc(pts[0], pts[1], pts[2], ctx.max_dev, full=True)
    if name in ("ArcByCenterPoint", "CircleByCenterPoint"):
        return _by_center(el, ctx, full=name == "CircleByCenterPoint")
    if name == "OrientableCurve":
        base = _curve_coords(_first_child(_child(el, "baseCurve"), el), ctx)
        return base[::-1] if el.get("orientation") == "-" else base
    if name in ("CompositeCurve", "Ring"):
        members = [m for m in _members(el, "curveMember") if isinstance(m.tag, str)]
        if not members:
            _fail(el, f"gml:{name} without curve members")
        return _join([_curve_coords(m, ctx) for m in members])
    _fail(el, f"unsupported curve element gml:{name}")


def _members(el, name):
    """The geometries of ``name`` properties and of the plural ``name + 's'`` container."""
    out = []
    for prop in _children(el, name):
        out.append(_first_child(prop, el))
    for container in _children(el, name + "s"):
        out.extend(_elements(container))
    return out


def _first_child(el, parent=None):
    if el is None:
        _fail(parent, f"empty geometry property in gml:{local_name(parent.tag)}") if parent is not None \
            else _fail(None, "empty geometry property")
    for child in el:
        if isinstance(child.tag, str):
            return child
    _fail(el, f"empty gml:{local_name(el.tag)} (references by xlink:href are not supported)")


def _join(parts):
    """Concatenate coordinate runs, dropping the repeated joint points."""
    out = [parts[0]]
    for p in parts[1:]:
        last = out[-1][-1]
        if len(p) and abs(last[0] - p[0][0]) <= 1e-9 and abs(last[1] - p[0][1]) <= 1e-9:
            p = p[1:]
        out.append(p)
    return np.vstack(out) if len(out) > 1 else out[0]


def _ring(el, ctx):
    ring = _first_child(el, el)
    coords = _curve_coords(ring, ctx)
    if len(coords) < 4:
        _fail(ring, f"ring of gml:{local_name(ring.tag)} has {len(coords)} positions (at least 4 "
                    "are needed)")
    if abs(coords[0][0] - coords[-1][0]) > 1e-9 or abs(coords[0][1] - coords[-1][1]) > 1e-9:
        _fail(ring, f"ring of gml:{local_name(ring.tag)} is not closed "
                    f"({coords[0].tolist()} … {coords[-1].tolist()})")
    coords[-1] = coords[0]
    return coords


def _polygon(el, ctx):
    exterior = _child(el, "exterior")
    if exterior is None:
        exterior = _child(el, "outerBoundaryIs")
    if exterior is None:
        _fail(el, f"gml:{local_name(el.tag)} without exterior")
    shell = _ring(exterior, ctx)
    holes = [_ring(i, ctx) for i in _children(el, "interior") + _children(el, "innerBoundaryIs")]
    return shapely.Polygon(shell, holes)


def _convert(el, ctx):
    name = local_name(el.tag)
    if name == "Point":
        pos = _child(el, "pos")
        if pos is not None:
            values = _numbers(pos, pos.text or "")
            if len(values) == 1:
                raise HeightOnly(float(values[0]), pos.get("srsName") or el.get("srsName"))
        return shapely.Point(_coords(el, ctx)[0])
    if name == "MultiPoint":
        return shapely.MultiPoint([_convert(m, ctx) for m in _members(el, "pointMember")])
    if name in ("Polygon", "PolygonPatch"):
        return _polygon(el, ctx)
    if name == "Surface":
        patches = _child(el, "patches")
        if patches is None:
            patches = _child(el, "polygonPatches")
        if patches is None:
            _fail(el, "gml:Surface without gml:patches or gml:polygonPatches")
        polys = [_polygon(p, ctx) for p in _elements(patches)]
        if not polys:
            _fail(patches, "gml:Surface without patches")
        return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
    if name in ("MultiSurface", "CompositeSurface", "MultiPolygon"):
        polys = []
        for m in _members(el, "surfaceMember") + _members(el, "polygonMember"):
            polys.extend(shapely.get_parts(_convert(m, ctx)))
        if not polys:
            _fail(el, f"gml:{name} without members")
        return shapely.MultiPolygon(polys)
    if name in ("MultiCurve", "MultiLineString"):
        members = _members(el, "curveMember") + _members(el, "lineStringMember")
        if not members:
            _fail(el, f"gml:{name} without members")
        return shapely.MultiLineString([shapely.LineString(_curve_coords(m, ctx))
                                        for m in members])
    if name in ("LineString", "Curve", "CompositeCurve", "OrientableCurve"):
        return shapely.LineString(_curve_coords(el, ctx))
    if name == "Ring":
        return shapely.LineString(_curve_coords(el, ctx))
    _fail(el, f"unsupported geometry gml:{name}")


def to_shapely(el, max_dev, ctx=None):
    """Convert a GML geometry element to a shapely geometry (coordinates as in the file).

    ``ctx`` (a :class:`Context`) collects the ``srsName`` values of inner elements.
    Raises :class:`GeometryError` (with the line) or :class:`HeightOnly`.
    """
    ctx = ctx or Context(max_dev)
    try:
        return _convert(el, ctx)
    except GeometryError:
        raise
    except (ValueError, IndexError, TypeError, shapely.errors.ShapelyError) as err:
        # shapely's and GEOS's own complaints
        raise GeometryError(str(err), getattr(el, "sourceline", None)) from None


GEOMETRY_NAMES = {"Point", "MultiPoint", "LineString", "Curve", "CompositeCurve", "OrientableCurve",
                  "MultiCurve", "Polygon", "Surface", "CompositeSurface", "MultiSurface",
                  "PolygonPatch", "MultiPolygon", "MultiLineString", "Ring"}
