"""The vectorised validation stages (shapely/GEOS), run per partition.

A stage declares what it consumes and produces; a :class:`Pipeline` checks, when it is
assembled and before any data flows, that every input a stage consumes is provided by the
caller or produced by an earlier stage (Stetl's rule). Stages return findings instead of
raising on the first bad row. No stage touches a database: :mod:`pipeline.validation.partitions`
reads the data and hands it in (``verify_hole`` is the one callback into the database).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from pipeline.errors import PluginError
from pipeline.validation import checks, coverage
from pipeline.validation.findings import Finding


@dataclass(frozen=True)
class Stage:
    """One step.

    Attributes
    ----------
    name : str
    consumes : tuple of str
        Names of inputs in the context (e.g. ``"parcels"``).
    produces : tuple of str
        Names it adds to the context; ``"findings"`` are collected, never overwritten.
    run : callable
        ``run(context, params) -> dict`` of produced values.
    """

    name: str
    consumes: tuple
    produces: tuple
    run: object


class Pipeline:
    """Stages in order, checked when assembled."""

    def __init__(self, stages, provided):
        self.stages = list(stages)
        available = set(provided)
        for stage in self.stages:
            missing = [c for c in stage.consumes if c not in available]
            if missing:
                raise PluginError(
                    f"stage {stage.name!r} consumes {', '.join(missing)}, which neither the "
                    f"input ({', '.join(sorted(provided))}) nor an earlier stage produces")
            available |= set(stage.produces)

    def run(self, context, params):
        context = dict(context)
        findings = list(context.get("findings", []))
        for stage in self.stages:
            out = stage.run(context, params) or {}
            findings.extend(out.pop("findings", []))
            context.update(out)
        context["findings"] = findings
        return context


# -- partition stages (shapely) --------------------------------------------------------------
def _stage_valid(ctx, params):
    """``valid``: per row of the context (of the parcels where there is none) whether its
    geometry is present, not empty and valid, computed once for all stages (GEOS's validity
    test is the dearest of the per-parcel checks). The context lists the parcels first, so the
    parcels' marks are its first ``len(parcels)``."""
    frame = ctx["parcels"] if ctx["context"] is None else ctx["context"]
    geoms = frame.geometry.values
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    return {"valid": present & shapely.is_valid(geoms)}


def _stage_empty_invalid(ctx, params):
    p = ctx["parcels"]
    ids, geoms = p["gml_id"].to_numpy(), p.geometry.values
    return {"findings": checks.empty_geometries(ids, geoms)
            + checks.invalid_geometries(ids, geoms, valid=ctx["valid"][:len(p)])}


def _stage_sliver(ctx, params):
    p = ctx["parcels"]
    geoms = p.geometry.values
    ok = ctx["valid"][:len(p)]
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    width = np.divide(2 * area, perimeter, out=np.zeros_like(area), where=perimeter > 0)
    hit = np.flatnonzero(ok & ((area < params["sliver_max_area"])
                               | (width < params["sliver_min_width"])))
    return {"findings": [
        Finding("geometry.sliver", p["gml_id"].iat[i],
                f"parcel {p['flurstueckskennzeichen'].iat[i]} is a sliver: {area[i]:.2f} m², "
                f"mean width {width[i]:.2f} m", geom=shapely.point_on_surface(geoms[i]))
        for i in hit]}


def _district_keys(frame):
    """"LLGGGG:FFF" per row as Python strings: ":FFF" without a complete Gemarkung, "LLGGGG:"
    without a Flur (never NaN, whatever pandas' string dtype does with missing values)."""
    def text(col):
        return frame[col].astype("string").fillna("").to_numpy(dtype=object)

    land, gem = text("land"), text("gemarkungsnummer")
    key = np.where((land != "") & (gem != ""), land + gem, "")   # "" : no (complete) Gemarkung
    return key + ":" + frame["flurnummer"].astype("Int64").astype("string").fillna("").to_numpy(
        dtype=object)


def _complete(keys):
    """Keys naming land, Gemarkung and Flur (neither ":FFF" nor "LLGGGG:")."""
    keys = keys.astype(str)
    return ~np.char.endswith(keys, ":") & ~np.char.startswith(keys, ":")


def _owned(keys, partition):
    """A finding involving parcels of several partitions belongs to the smallest of their keys
    (``teil``: Gemarkung and tile; parcels without a Gemarkung have no partition that looks at
    neighbours: they never own one). A
    scoped validation (``partition`` None) is one piece: it owns every finding a partition
    would."""
    keys = [k for k in keys if k]
    return bool(keys) and (partition is None or min(keys) == partition)


def _stage_edges(ctx, params):
    """The coverage checks shared by the overlap and gap stages, on the context's ``valid``
    geometries: ``overlapping`` marks those that may overlap another (where the polygons'
    uncancelled edges wind twice, :mod:`pipeline.validation.coverage`); ``drawing`` lists those
    drawing uncancelled edges (indices among the valid ones), the only ones that can border a
    gap; ``tree`` is an STRtree of the valid ones (in their order), which both stages query."""
    geoms = ctx["context"].geometry.values
    idx = np.flatnonzero(ctx["valid"])
    tree = shapely.STRtree(geoms[idx])
    cand, drawing = coverage.overlap_candidates(geoms[idx], tree)
    overlapping = np.zeros(len(geoms), dtype=bool)
    overlapping[idx[cand]] = True
    return {"overlapping": overlapping, "drawing": drawing, "tree": tree}


def _union(geoms, clean):
    """Union of polygons: coverage union of the clean ones, general union with the rest."""
    union = shapely.coverage_union_all(geoms[clean])
    if (~clean).any():
        union = shapely.union_all([union, *geoms[~clean]])
    return union


def _valid_polygons(ctx, marks):
    """The valid polygons of the context: geometries, gml_ids, owning partition keys
    (``teil``), the indices among them of those ``marks`` (a boolean per context row) marks,
    and their indices in the context."""
    context = ctx["context"]
    idx = np.flatnonzero(ctx["valid"])
    return (context.geometry.values[idx], context["gml_id"].to_numpy()[idx],
            context["teil"].to_numpy(dtype=object)[idx], np.flatnonzero(marks[idx]), idx)


def _stage_overlap(ctx, params):
    """coverage.overlap: both polygons of every overlap are marked ``overlapping`` (both
    meet the place covered twice); each marked polygon is compared with every polygon it
    meets (each pair once)."""
    g, ids, gkey, cand, _ = _valid_polygons(ctx, ctx["overlapping"])
    part = ctx["partition"]
    findings = []
    if len(cand):
        marked = np.zeros(len(g), dtype=bool)
        marked[cand] = True
        a, b = ctx["tree"].query(g[cand], predicate="intersects")
        a = cand[a]
        keep = (a != b) & (~marked[b] | (a < b))
        a, b = a[keep], b[keep]
        inter = shapely.intersection(g[a], g[b])
        polys = shapely.get_parts(inter, return_index=True)
        area = np.bincount(polys[1], weights=shapely.area(polys[0]) *
                           (shapely.get_dimensions(polys[0]) == 2), minlength=len(a))
        for k in np.flatnonzero(area > 0):
            i, j = a[k], b[k]
            if not _owned([gkey[i], gkey[j]], part):
                continue
            first, second = sorted([ids[i], ids[j]])
            if is_dust(_polygonal(inter[k]), params) or area[k] <= params["overlap_min_area"]:
                findings.append(precision_dust(first, _polygonal(inter[k])))
                continue
            findings.append(Finding(
                "coverage.overlap", first, f"parcels {first} and {second} overlap by "
                f"{area[k]:.2f} m²", geom=_polygonal(inter[k]), related=[second]))
    return {"findings": dedupe(findings)}


def _stage_gap(ctx, params):
    """coverage.gap: holes enclosed by parcels, whatever their size (a missing parcel), and
    open gaps narrower than ``gap_max_width``; only the candidates need a general union.

    The candidates are the polygons that are not ``clean``: those that may overlap and those
    GEOS's coverage validation (``coverage_invalid_edges``, for gaps narrower than the width)
    flags, run on the polygons drawing uncancelled edges only, since a gap's sides are such
    edges. The clean ones form a valid coverage, which GEOS's fast coverage union may join."""
    width = params["gap_max_width"]
    valid = ctx["valid"]
    drawing = np.flatnonzero(valid)[ctx["drawing"]]
    narrow = shapely.coverage_invalid_edges(ctx["context"].geometry.values[drawing],
                                            gap_width=width)
    clean = valid & ~ctx["overlapping"]
    clean[drawing[~shapely.is_empty(narrow)]] = False
    g, ids, gkey, cand, idx = _valid_polygons(ctx, ~clean)
    clean = clean[idx]
    part = ctx["partition"]
    findings = []
    union = _union(g, clean)
    # The outline of the partition's own parcels (the context lists them first): the driver
    # unions the outlines of all partitions to find holes on partition borders.
    own = idx < ctx["own"]
    outline = _union(g[own], clean[own]) if own.any() else None
    tree = ctx["tree"]
    holes = []
    for poly in shapely.get_parts(union):
        for ring in poly.interiors:
            hole = shapely.Polygon(ring)
            inside = tree.query(hole, predicate="contains_properly")
            if len(inside):    # islands: parcels inside the hole are not part of the gap
                hole = shapely.difference(hole, shapely.union_all(g[inside]))
                if hole.area < 1e-6:
                    continue
            holes.append(hole)
            touching = tree.query(hole, predicate="intersects")
            if len(touching) == 0 or not _owned(list(gkey[touching]), part):
                continue
            if not ctx["verify_hole"](hole):
                continue
            findings.append(hole_finding(hole, sorted(ids[touching]), params))
    if len(cand):
        # Open gaps narrower than the width: closing of the candidates minus all parcels.
        near = shapely.union_all(g[cand])
        closed = shapely.buffer(shapely.buffer(near, width / 2, join_style="mitre"),
                                -width / 2, join_style="mitre")
        around = tree.query(closed, predicate="intersects")
        gaps = shapely.difference(closed, shapely.union_all([*g[around], *holes]))
        for gap in shapely.get_parts(gaps):
            if gap.geom_type != "Polygon" or gap.area < 1e-6:
                continue
            touching = tree.query(shapely.buffer(gap, 1e-6), predicate="intersects")
            if len(touching) == 0 or not _owned(list(gkey[touching]), part):
                continue
            tids = sorted(ids[touching])
            if is_dust(gap, params):
                findings.append(precision_dust(tids[0], gap))
                continue
            findings.append(Finding(
                "coverage.gap", tids[0], f"gap of {gap.area:.3f} m² narrower than {width} m "
                f"between parcels {', '.join(tids[:6])}", geom=gap, related=tids[1:]))
    return {"findings": dedupe(findings), "outline": outline}


def hole_finding(hole, tids, params):
    """A hole enclosed by the parcels ``tids`` (sorted): coverage.gap, or precision dust."""
    if is_dust(hole, params):
        return precision_dust(tids[0], hole)
    return Finding(
        "coverage.gap", tids[0], f"hole of {hole.area:.1f} m² enclosed by parcels "
        f"{', '.join(tids[:6])}{' …' if len(tids) > 6 else ''} (a missing parcel?)",
        geom=hole, related=tids[1:])


def is_dust(geom, params):
    """True for a gap or overlap below the data's coordinate precision: smaller than
    ``validation.precision_min_area`` or narrower (2·area/perimeter) than
    ``validation.precision_min_width``."""
    area, length = geom.area, geom.length
    return area < params["precision_min_area"] or (
        length > 0 and 2 * area / length < params["precision_min_width"])


def precision_dust(object_id, geom):
    """One piece of precision dust; :func:`collapse_precision` counts them into one finding."""
    p = shapely.point_on_surface(geom)
    return Finding("coverage.precision", f"{object_id}@{p.x:.3f},{p.y:.3f}", "", geom=p)


def collapse_precision(findings, params):
    """The run's precision dust as one ``info`` finding with the count (none if there is
    none); every other finding unchanged."""
    dust = [f for f in findings if f.rule == "coverage.precision"]
    if not dust:
        return findings
    rest = [f for f in findings if f.rule != "coverage.precision"]
    # One finding per run under a stable key (no location, no related ids): its count changes.
    return rest + [Finding(
        "coverage.precision", "coverage.precision",
        f"{len(dust)} gaps or overlaps below the data's coordinate precision (smaller than "
        f"{params['precision_min_area']} m² or narrower than "
        f"{params['precision_min_width'] * 100:g} cm) were counted, not reported as errors")]


def _polygonal(geom):
    parts = [p for p in shapely.get_parts(geom) if shapely.get_dimensions(p) == 2]
    return shapely.union_all(parts) if parts else geom


def dedupe(findings):
    seen, out = set(), []
    for f in findings:
        if f.key not in seen:
            seen.add(f.key)
            out.append(f)
    return out


def _stage_district(ctx, params):
    """district.outside against the stored Flur maps (``kataster.flur_karte``): imported
    boundaries where they were delivered, otherwise the union of the Flur's parcels with its
    holes filled (an island of parcels claiming another Flur lies inside this one). The maps are
    the whole city's, whatever piece of it a partition holds, so a parcel's finding depends on
    the parcel and the maps alone."""
    p = ctx["parcels"]
    share_min = params["outside_min_share"]
    geoms = p.geometry.values
    ok = ctx["valid"][:len(p)]
    own = _district_keys(p)
    # A parcel whose identifier names no complete district claims none (id.syntax reports it).
    ok &= _complete(own)
    districts = ctx["districts"]
    keys = _district_keys(districts)
    shapes = districts.geometry.values
    usable = _complete(keys) & ~(shapely.is_missing(shapes) | shapely.is_empty(shapes))
    keys, shapes = keys[usable], shapes[usable]
    imported = (districts["herkunft"].to_numpy(dtype=object) == "importiert")[usable]
    shapes = np.array([s if imp else _filled(s) for s, imp in zip(shapes, imported, strict=True)],
                      dtype=object)
    # Each district is prepared once and tested against the parcels near it; a parcel that only
    # touches another district (along the common border) has no share in it.
    tree = shapely.STRtree(geoms[ok])
    di, pi = tree.query(shapes, predicate="intersects")
    pi = np.flatnonzero(ok)[pi]
    other = keys[di] != own[pi]
    pi, di = pi[other], di[other]
    shapely.prepare(shapes)
    inside = ~shapely.touches(shapes[di], geoms[pi])
    pi, di = pi[inside], di[inside]
    share = shapely.area(shapely.intersection(geoms[pi], shapes[di])) / shapely.area(geoms[pi])
    findings = []
    for k in np.flatnonzero(share > share_min):
        i = pi[k]
        land_gem, flur = keys[di[k]].split(":")
        how = "imported" if imported[di[k]] else "derived from the other parcels"
        findings.append(Finding(
            "district.outside", p["gml_id"].iat[i],
            f"parcel {p['flurstueckskennzeichen'].iat[i]} says Gemarkung "
            f"{p['gemarkungsnummer'].iat[i]} Flur {p['flurnummer'].iat[i]} but "
            f"{share[k]:.0%} of it lies in Gemarkung {land_gem[2:]} Flur {flur} ({how})",
            geom=shapely.point_on_surface(geoms[i]), related=[keys[di[k]]]))
    return {"findings": findings}


def _filled(shape):
    """A derived district: its polygons without their holes."""
    return shapely.union_all([shapely.Polygon(q.exterior) for q in shapely.get_parts(shape)])


# The stages, in order; which rule a stage checks is the registry's (``Rule.source``).
# ``parcels`` are the partition's own parcels, ``context`` (None where a partition has no
# neighbours to look at) the parcels followed by their neighbours.
VALID = Stage("valid", ("parcels", "context"), ("valid",), _stage_valid)
PARTITION_STAGES = [
    VALID,
    Stage("geometry", ("parcels", "valid"), (), _stage_empty_invalid),
    Stage("sliver", ("parcels", "valid"), (), _stage_sliver),
    Stage("edges", ("context", "valid"), ("overlapping", "drawing", "tree"), _stage_edges),
    Stage("overlap", ("context", "valid", "overlapping", "tree", "partition"), (),
          _stage_overlap),
    Stage("gap", ("context", "valid", "overlapping", "drawing", "tree", "own", "partition",
                  "verify_hole"),
          ("outline",), _stage_gap),
    Stage("district", ("parcels", "valid", "districts"), (), _stage_district),
]


def stages_for(names):
    """The partition stages named, and the stages producing what they consume (and so on)."""
    wanted = {s.name for s in PARTITION_STAGES if s.name in names}
    for stage in reversed(PARTITION_STAGES):     # a stage needs only stages before it
        if stage.name in wanted:
            needed = set(stage.consumes)
            wanted |= {s.name for s in PARTITION_STAGES if set(s.produces) & needed}
    return [s for s in PARTITION_STAGES if s.name in wanted]


def parcel_stages(names):
    """The stages named that look at each parcel alone (with what they need), for parcels
    that have no context: those without a Gemarkung or without a place."""
    return [s for s in stages_for(names)
            if s is VALID or set(s.consumes) <= {"parcels", *VALID.produces}]


PARTITION_INPUTS = ("parcels", "context", "own", "districts", "partition", "verify_hole")
