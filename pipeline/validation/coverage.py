"""Where polygons of a coverage may overlap, found by cancelling shared edges.

Every valid polygon, its shell counter-clockwise and its holes clockwise, is the region its
boundary winds around once. Summed over all polygons, the winding number of all their edges
around a point is the number of polygons covering it. An edge two neighbours share appears
once in each direction and cancels from that sum; what is left (the *residual*: the outline
of the coverage, its holes, and every edge that is not shared exactly) has the same winding
number everywhere. So the polygons overlap exactly where the residual winds twice or more,
and the residual of a clean coverage is only its outline: a few edges per hundred polygons.

This replaces GEOS's coverage validation (``coverage_invalid_edges``) as the source of
overlap candidates: it is cheaper (sorting the edges instead of testing each polygon against
its neighbours) and it sees what GEOS's does not. GEOS accepts every edge that an adjacent
polygon matches, so a coverage drawn over another (a delivery imported twice with an offset,
two digitisations of one area) shows only its outline there, and the polygons inside, whose
edges all match within their own coverage, were never compared; here they lie where the
winding number is 2. Used by :func:`pipeline.validation.stages._stage_edges`.
"""

from __future__ import annotations

import numpy as np
import shapely

# Faces of the residual smaller than this (m²) are candidates whatever their winding number:
# a point on such a sliver may fall on its border, where the count is not defined.
TINY_FACE = 1e-6
# Uncancelled edges beyond which every polygon becomes a candidate: noding them costs more
# than comparing each polygon with its neighbours (27,000 generated parcels, some with points
# their neighbours lack: 8,400 edges left 0.15 s, 32,000 1.2 s, 79,000 5.8 s; every pair
# compared 1.3 s; 27,000 clean ones leave 580 of their 81,000).
MOST_LEFT = 20_000


def residual(geoms):
    """The edges of the valid polygons ``geoms`` (Polygon or MultiPolygon) that are not
    cancelled by the same edge in the other direction.

    Returns ``(x1, y1, x2, y2, weight, owners, edges)``: each remaining edge once, from its
    smaller end point to its larger one (by x, then y), ``weight`` its net count in that
    direction (+1 an outline edge that way, -1 the other way, ±2 an edge drawn twice the same
    way, …), ``owners`` the indices in ``geoms`` of the polygons drawing these edges, and the
    number of distinct edges.
    """
    coords, ring_of, ring_owner, shell = _rings(geoms)
    point = _points(coords)
    seg = np.flatnonzero(ring_of[1:] == ring_of[:-1])
    p1, p2 = point[seg], point[seg + 1]
    x1, y1, x2, y2 = p1.real, p1.imag, p2.real, p2.imag
    ring = ring_of[seg]
    # Orientation: a shell must turn counter-clockwise (positive area), a hole clockwise.
    twice_area = np.bincount(ring, weights=x1 * y2 - x2 * y1, minlength=len(shell))
    backwards = ((twice_area > 0) != shell)[ring]
    # Each edge from its smaller end to its larger one, +1 if the oriented ring runs that way.
    low_first = (x1 < x2) | ((x1 == x2) & (y1 < y2))
    low, high = np.where(low_first, p1, p2), np.where(low_first, p2, p1)
    keep = low != high                                  # repeated points are no edges
    low, high = low[keep], high[keep]
    sign = np.where((low_first ^ backwards)[keep], 1, -1)
    owner = ring_owner[ring[keep]]
    # Equal edges next to each other: sorted by a hash of their ends (no stable sort needed:
    # the order within a group does not matter, and the unstable one is five times faster).
    order = np.argsort(_hash(low.real, low.imag, high.real, high.imag))
    low, high, sign, owner = low[order], high[order], sign[order], owner[order]
    new = np.ones(len(low), dtype=bool)
    new[1:] = (low[1:] != low[:-1]) | (high[1:] != high[:-1])
    start = np.flatnonzero(new)
    net = np.add.reduceat(sign, start) if len(start) else np.zeros(0, dtype=int)
    left = net != 0
    drawn_by = owner[left[np.cumsum(new) - 1]]          # every polygon drawing such an edge
    first = start[left]
    return (low.real[first], low.imag[first], high.real[first], high.imag[first], net[left],
            np.unique(drawn_by), len(start))


def _points(coords):
    """Rows of x, y as complex numbers x + iy: one value per point, compared and moved at
    once."""
    return np.ascontiguousarray(coords, dtype=np.float64).view(np.complex128).reshape(-1)


def _rings(geoms):
    """Coordinates of every ring of ``geoms``, the ring of each coordinate, and per ring its
    polygon (index in ``geoms``) and whether it is a shell. Most parcels are one ring: a
    geometry whose first point comes back only at its end is read as it is; the others
    (several parts, holes) through GEOS's parts and rings."""
    coords, of = shapely.get_coordinates(geoms, return_index=True)
    if not len(of):
        return coords, of, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    first = np.flatnonzero(np.r_[True, of[1:] != of[:-1]])
    last = np.r_[first[1:], len(of)] - 1
    owner = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(of)]))
    point = _points(coords)
    again = point == point[first][owner]
    # One ring: the first point comes back once, as the last one (a hole or a second part
    # follows a closed ring, so its last point is not the first).
    one = np.zeros(len(geoms), dtype=bool)
    one[of[first]] = (np.bincount(owner, weights=again) == 2) & again[last]
    if one.all():
        return coords, of, np.arange(len(geoms)), np.ones(len(geoms), dtype=bool)
    other = np.flatnonzero(~one)
    parts, part_of = shapely.get_parts(geoms[other], return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    more, ring_of = shapely.get_coordinates(rings, return_index=True)
    shell = np.ones(len(rings), dtype=bool)
    shell[1:] = ring_part[1:] != ring_part[:-1]
    simple = one[of]
    singles = np.flatnonzero(one)
    rank = np.cumsum(one) - 1                           # ring number of a one-ring geometry
    return (np.concatenate([coords[simple], more]),
            np.concatenate([rank[of[simple]], ring_of + len(singles)]),
            np.concatenate([singles, other[part_of[ring_part]]]),
            np.concatenate([np.ones(len(singles), dtype=bool), shell]))


def _hash(*columns):
    """One 64-bit number per row of float columns, from their exact bits (rows with equal
    values get equal numbers; a collision only splits a pair that would have cancelled, and
    the winding number, which counts both with their signs, stays the same)."""
    out = np.zeros(len(columns[0]), dtype=np.uint64)
    for k, col in enumerate(columns):
        bits = np.ascontiguousarray(col, dtype=np.float64).view(np.uint64)
        out = (out ^ bits) * np.uint64(0x9E3779B97F4A7C15 + 2 * k)
        out ^= out >> np.uint64(29)
    return out


def winding(points, x1, y1, x2, y2, weight):
    """The winding number of the weighted edges around each point (rows of x, y): the signed
    crossings of a ray from the point towards +x, over the edges an STRtree finds on it (so
    a tile whose edges mostly remain, with no vertex shared, costs what its rays cross)."""
    out = np.zeros(len(points))
    if not len(x1) or not len(points):
        return out
    edges = shapely.STRtree(shapely.linestrings(np.stack([np.c_[x1, y1], np.c_[x2, y2]], 1)))
    far = max(x1.max(), x2.max()) + 1.0
    rays = shapely.linestrings(np.stack([points, np.c_[np.full(len(points), far),
                                                       points[:, 1]]], axis=1))
    p, e = edges.query(rays)                            # boxes meet: exact test below
    px, py = points[p, 0], points[p, 1]
    ax, ay, bx, by = x1[e], y1[e], x2[e], y2[e]
    side = (bx - ax) * (py - ay) - (px - ax) * (by - ay)   # > 0: the point left of the edge
    up = (ay <= py) & (by > py) & (side > 0)
    down = (by <= py) & (ay > py) & (side < 0)
    return np.bincount(p, weights=(up.astype(int) - down.astype(int)) * weight[e],
                       minlength=len(points))


def covered_twice(x1, y1, x2, y2, weight):
    """The faces of the residual (see :func:`residual`) that are covered by two or more
    polygons, and the tiny faces whose count is uncertain (:data:`TINY_FACE`)."""
    if not len(x1):
        return np.empty(0, dtype=object)
    lines = shapely.linestrings(np.stack([np.c_[x1, y1], np.c_[x2, y2]], axis=1))
    faces = shapely.get_parts(shapely.polygonize(
        shapely.get_parts(shapely.node(shapely.multilinestrings(lines)))))
    if not len(faces):
        return faces
    inside = shapely.get_coordinates(shapely.point_on_surface(faces))
    count = winding(inside, x1, y1, x2, y2, weight)
    return faces[(count >= 2) | (shapely.area(faces) < TINY_FACE)]


def overlap_candidates(geoms, tree):
    """``(candidates, owners)`` for the valid polygons ``geoms``: the indices of those that
    may overlap another (meeting a place the residual winds around twice or more; ``tree``:
    an STRtree of ``geoms``) and of those drawing residual edges (the outline, holes, edges
    not shared exactly: every edge a gap between polygons can have). Where more than
    :data:`MOST_LEFT` edges remain (neighbours not sharing their vertices), all are both."""
    x1, y1, x2, y2, weight, owners, _ = residual(geoms)
    if len(x1) > MOST_LEFT:
        everything = np.arange(len(geoms))
        return everything, everything
    twice = covered_twice(x1, y1, x2, y2, weight)
    if not len(twice):
        return np.empty(0, dtype=np.int64), owners
    _, hit = tree.query(twice, predicate="intersects")
    return np.unique(hit), owners
