"""Validation: rules with stable ids, run as stages per spatial partition and as set-based SQL.

* Geometry and coverage rules run vectorised in shapely (GEOS) per partition: one Gemarkung's
  current parcels plus the neighbouring parcels around it, so that overlaps, gaps and district
  errors along Gemarkung borders are found too. Partitions run in parallel with Dask (local
  processes by default, or an existing cluster given by ``scheduler``).
* Identifier, history and area rules run as SQL inside PostGIS.
* Findings are stored with their stable key: a re-run keeps ``accepted`` findings accepted,
  marks vanished ones ``fixed`` and reopens a ``fixed`` finding only if it appears again.
"""

from __future__ import annotations

import getpass
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from psycopg import sql

from pipeline import checks, kennzeichen
from pipeline.errors import UsageError
from pipeline.rules import Finding
from pipeline.stages import Pipeline, Stage

log = logging.getLogger(__name__)
MARGIN = 1.0   # metres around a partition's parcels from which neighbours are loaded
CELL = 100.0   # metres: grid cells in which neighbours are looked up


# -- partition stages (shapely) --------------------------------------------------------------
def _stage_empty_invalid(ctx, params):
    p = ctx["parcels"]
    ids, geoms = p["gml_id"].to_numpy(), p.geometry.values
    return {"findings": checks.empty_geometries(ids, geoms) + checks.invalid_geometries(ids, geoms)}


def _stage_sliver(ctx, params):
    p = ctx["parcels"]
    geoms = p.geometry.values
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) & shapely.is_valid(geoms)
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


def _district_keys(frame, flur=True):
    """"LLGGGG:FFF" per row as Python strings: ":FFF" without a complete Gemarkung, "LLGGGG:"
    without a Flur (never NaN, whatever pandas' string dtype does with missing values)."""
    def text(col):
        return frame[col].astype("string").fillna("").to_numpy(dtype=object)

    land, gem = text("land"), text("gemarkungsnummer")
    key = np.where((land != "") & (gem != ""), land + gem, "")   # "" : no (complete) Gemarkung
    if flur:
        key = key + ":" + frame["flurnummer"].astype("Int64").astype("string").fillna("").to_numpy(
            dtype=object)
    return key


def _complete(keys):
    """Keys naming land, Gemarkung and Flur (neither ":FFF" nor "LLGGGG:")."""
    keys = keys.astype(str)
    return ~np.char.endswith(keys, ":") & ~np.char.startswith(keys, ":")


def _owned(keys, partition):
    """A finding involving parcels of several Gemarkungen belongs to the smallest key (parcels
    without a Gemarkung have no partition that looks at neighbours: they never own one)."""
    keys = [k for k in keys if k]
    return bool(keys) and min(keys) == partition


def _stage_edges(ctx, params):
    """GEOS coverage validation of the context (``coverage_invalid_edges``), shared by the
    coverage and district stages: ``usable`` marks valid non-empty geometries, ``clean`` those
    of them without invalid edges. Clean polygons form a valid coverage (an overlap or a narrow
    gap marks edges on both sides), so GEOS's fast coverage union may join them."""
    geoms = ctx["context"].geometry.values
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) & shapely.is_valid(geoms)
    idx = np.flatnonzero(usable)
    edges = shapely.coverage_invalid_edges(geoms[idx], gap_width=params["gap_max_width"])
    clean = np.zeros(len(geoms), dtype=bool)
    clean[idx[shapely.is_empty(edges)]] = True
    return {"usable": usable, "clean": clean}


def _union(geoms, clean):
    """Union of polygons: coverage union of the clean ones, general union with the rest."""
    union = shapely.coverage_union_all(geoms[clean])
    if (~clean).any():
        union = shapely.union_all([union, *geoms[~clean]])
    return union


def _stage_coverage(ctx, params):
    """coverage.overlap and coverage.gap with GEOS coverage validation."""
    context = ctx["context"]
    part = ctx["partition"]
    geoms = context.geometry.values
    idx = np.flatnonzero(ctx["usable"])
    g = geoms[idx]
    ids = context["gml_id"].to_numpy()[idx]
    gkey = _district_keys(context, flur=False)[idx]
    findings = []
    width = params["gap_max_width"]
    clean = ctx["clean"][idx]
    cand = np.flatnonzero(~clean)
    # Overlaps: only polygons with invalid edges can overlap; compare those pairwise.
    if len(cand):
        tree = shapely.STRtree(g[cand])
        a, b = tree.query(g[cand], predicate="intersects")
        keep = a < b
        a, b = cand[a[keep]], cand[b[keep]]
        inter = shapely.intersection(g[a], g[b])
        polys = shapely.get_parts(inter, return_index=True)
        area = np.bincount(polys[1], weights=shapely.area(polys[0]) *
                           (shapely.get_dimensions(polys[0]) == 2), minlength=len(a))
        for k in np.flatnonzero(area > 0):
            i, j = a[k], b[k]
            if not _owned([gkey[i], gkey[j]], part):
                continue
            first, second = sorted([ids[i], ids[j]])
            if _dust(_polygonal(inter[k]), params) or area[k] <= params["overlap_min_area"]:
                findings.append(_precision(first, _polygonal(inter[k])))
                continue
            findings.append(Finding(
                "coverage.overlap", first, f"parcels {first} and {second} overlap by "
                f"{area[k]:.2f} m²", geom=_polygonal(inter[k]), related=[second]))
    # Holes enclosed by parcels, whatever their size (a missing parcel); only the candidates
    # need a general union.
    union = _union(g, clean)
    # The outline of the partition's own parcels (the context lists them first): the driver
    # unions the outlines of all partitions to find holes on partition borders.
    own = idx < ctx["own"]
    outline = _union(g[own], clean[own])
    tree_all = shapely.STRtree(g)
    holes = []
    for poly in shapely.get_parts(union):
        for ring in poly.interiors:
            hole = shapely.Polygon(ring)
            inside = tree_all.query(hole, predicate="contains_properly")
            if len(inside):    # islands: parcels inside the hole are not part of the gap
                hole = shapely.difference(hole, shapely.union_all(g[inside]))
                if hole.area < 1e-6:
                    continue
            holes.append(hole)
            touching = tree_all.query(hole, predicate="intersects")
            if len(touching) == 0 or not _owned(list(gkey[touching]), part):
                continue
            if not ctx["verify_hole"](hole):
                continue
            tids = sorted(ids[touching])
            if _dust(hole, params):
                findings.append(_precision(tids[0], hole))
                continue
            findings.append(Finding(
                "coverage.gap", tids[0], f"hole of {hole.area:.1f} m² enclosed by parcels "
                f"{', '.join(tids[:6])}{' …' if len(tids) > 6 else ''} (a missing parcel?)",
                geom=hole, related=tids[1:]))
    if len(cand):
        # Open gaps narrower than the width: closing of the candidates minus all parcels.
        near = shapely.union_all(g[cand])
        closed = shapely.buffer(shapely.buffer(near, width / 2, join_style="mitre"),
                                -width / 2, join_style="mitre")
        around = tree_all.query(closed, predicate="intersects")
        gaps = shapely.difference(closed, shapely.union_all([*g[around], *holes]))
        for gap in shapely.get_parts(gaps):
            if gap.geom_type != "Polygon" or gap.area < 1e-6:
                continue
            touching = tree_all.query(shapely.buffer(gap, 1e-6), predicate="intersects")
            if len(touching) == 0 or not _owned(list(gkey[touching]), part):
                continue
            tids = sorted(ids[touching])
            if _dust(gap, params):
                findings.append(_precision(tids[0], gap))
                continue
            findings.append(Finding(
                "coverage.gap", tids[0], f"gap of {gap.area:.3f} m² narrower than {width} m "
                f"between parcels {', '.join(tids[:6])}", geom=gap, related=tids[1:]))
    return {"findings": _dedupe(findings), "outline": outline}


def _dust(geom, params):
    """True for a gap or overlap below the data's coordinate precision: smaller than
    ``validation.precision_min_area`` or narrower (2·area/perimeter) than
    ``validation.precision_min_width``."""
    area, length = geom.area, geom.length
    return area < params["precision_min_area"] or (
        length > 0 and 2 * area / length < params["precision_min_width"])


def _precision(object_id, geom):
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


def _dedupe(findings):
    seen, out = set(), []
    for f in findings:
        if f.key not in seen:
            seen.add(f.key)
            out.append(f)
    return out


def _stage_district(ctx, params):
    """district.outside against imported Flur boundaries, or boundaries derived from parcels."""
    p = ctx["parcels"]
    context = ctx["context"]
    share_min = params["outside_min_share"]
    geoms = p.geometry.values
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) & shapely.is_valid(geoms)
    own = _district_keys(p)
    # A parcel whose identifier names no complete district claims none (id.syntax reports it).
    ok &= _complete(own)
    districts = ctx["districts"]
    if len(districts):
        keys = _district_keys(districts)
        shapes = districts.geometry.values
        how = "imported"
    else:
        cg = context.geometry.values
        ckeys = _district_keys(context)
        cok = ctx["usable"] & _complete(ckeys)
        keys, shapes = [], []
        for key in np.unique(ckeys[cok]):
            members = cok & (ckeys == key)
            union = _union(cg[members], ctx["clean"][members])
            filled = shapely.union_all([shapely.Polygon(q.exterior)
                                        for q in shapely.get_parts(union)])
            keys.append(key)
            shapes.append(filled)
        keys, shapes = np.asarray(keys), np.asarray(shapes, dtype=object)
        how = "derived from the other parcels"
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
        findings.append(Finding(
            "district.outside", p["gml_id"].iat[i],
            f"parcel {p['flurstueckskennzeichen'].iat[i]} says Gemarkung "
            f"{p['gemarkungsnummer'].iat[i]} Flur {p['flurnummer'].iat[i]} but "
            f"{share[k]:.0%} of it lies in Gemarkung {land_gem[2:]} Flur {flur} ({how})",
            geom=shapely.point_on_surface(geoms[i]), related=[keys[di[k]]]))
    return {"findings": findings}


PARTITION_STAGES = [
    Stage("geometry", ("parcels",), (), _stage_empty_invalid,
          ("geometry.empty", "geometry.invalid")),
    Stage("sliver", ("parcels",), (), _stage_sliver, ("geometry.sliver",)),
    Stage("edges", ("context",), ("usable", "clean"), _stage_edges),
    Stage("coverage", ("context", "usable", "clean", "own", "partition", "verify_hole"),
          ("outline",), _stage_coverage, ("coverage.overlap", "coverage.gap",
                                          "coverage.precision")),
    Stage("district", ("parcels", "context", "usable", "clean", "districts"), (),
          _stage_district, ("district.outside",)),
]


def _stages(names):
    """The partition stages named, and the stages producing what they consume."""
    wanted = [s for s in PARTITION_STAGES if s.name in names]
    needed = {c for s in wanted for c in s.consumes}
    return [s for s in PARTITION_STAGES if s.name in names or set(s.produces) & needed]
PARTITION_INPUTS = ("parcels", "context", "own", "districts", "partition", "verify_hole")


# -- SQL rules (set-based in PostGIS) ------------------------------------------------------------
FSK_RE = kennzeichen.PATTERN       # the one key grammar (Flur "___" where a state has none)

SQL_RULES = {
    "id.syntax": """
        SELECT gml_id, ARRAY[]::text[], 'Flurstückskennzeichen ' || coalesce(flurstueckskennzeichen, 'NULL')
               || CASE WHEN flurstueckskennzeichen !~ %(fsk_re)s THEN ' is malformed'
                       ELSE ' disagrees with land ' || coalesce(land, '?') || ', Gemarkung '
                            || coalesce(gemarkungsnummer, '?') || ', Flur ' || coalesce(flurnummer::text, '?')
                            || ', Zähler ' || coalesce(zaehler::text, '?') || ', Nenner '
                            || coalesce(nenner, '-') END,
               ST_PointOnSurface(geom)
        FROM kataster.ax_flurstueck
        WHERE endet IS NULL AND {scope}
          AND CASE WHEN flurstueckskennzeichen IS NULL OR flurstueckskennzeichen !~ %(fsk_re)s
                   THEN true
                   ELSE land IS DISTINCT FROM substr(flurstueckskennzeichen, 1, 2)
                     OR gemarkungsnummer IS DISTINCT FROM substr(flurstueckskennzeichen, 3, 4)
                     OR flurnummer IS DISTINCT FROM
                            nullif(substr(flurstueckskennzeichen, 7, 3), '___')::int
                     OR zaehler IS DISTINCT FROM substr(flurstueckskennzeichen, 10, 5)::int
                     OR coalesce(nenner, '') <> coalesce(nullif(ltrim(replace(
                            substr(flurstueckskennzeichen, 15, 4), '_', ''), '0'), ''), '')
              END""",
    "id.duplicate": """
        SELECT d.gml_id, array_remove(g.ids, d.gml_id),
               'Flurstückskennzeichen ' || g.fsk || ' is also carried by '
               || array_to_string(array_remove(g.ids, d.gml_id), ', ') || '; both kept',
               g.where_
        FROM (SELECT flurstueckskennzeichen AS fsk, array_agg(gml_id ORDER BY gml_id) AS ids,
                     ST_PointOnSurface(ST_Collect(geom ORDER BY gml_id)) AS where_
              FROM kataster.ax_flurstueck WHERE endet IS NULL
              GROUP BY flurstueckskennzeichen HAVING count(*) > 1) g
        CROSS JOIN LATERAL unnest(g.ids) AS d(gml_id)
        WHERE EXISTS (SELECT 1 FROM kataster.ax_flurstueck f WHERE f.gml_id = d.gml_id
                      AND f.endet IS NULL AND {scope})""",
    "area.deviation": """
        SELECT gml_id, ARRAY[]::text[],
               'amtliche Fläche ' || amtliche_flaeche || ' m², computed '
               || round(computed::numeric, 2) || ' m² (difference '
               || round((computed - amtliche_flaeche)::numeric, 2) || ' m², tolerance '
               || round((%(area_abs)s + %(area_rel)s * amtliche_flaeche)::numeric, 2) || ' m²)',
               ST_PointOnSurface(geom)
        FROM (SELECT gml_id, amtliche_flaeche, geom,
                     ST_Area(geom) / CASE WHEN %(utm)s
                         THEN power(0.9996 * (1 + power(ST_X(ST_Centroid(geom)) - 500000, 2)
                                              / (2 * power(6381000, 2))), 2)
                         ELSE 1 END AS computed
              FROM kataster.ax_flurstueck
              WHERE endet IS NULL AND amtliche_flaeche IS NOT NULL AND geom IS NOT NULL
                AND NOT ST_IsEmpty(geom) AND {scope}) a
        WHERE abs(computed - amtliche_flaeche) > %(area_abs)s + %(area_rel)s * amtliche_flaeche""",
}
HISTORY_TABLES = ["kataster.ax_flurstueck", "kataster.ax_gebaeude", "kataster.ax_lagebezeichnung",
                  "kataster.ax_katalog", "kataster.bezirk", "kataster.ax_nutzung",
                  "kataster.ax_objekt"]
HISTORY_SQL = {
    "history.open_versions": """
        SELECT gml_id, ARRAY[]::text[], {label} || ' ' || gml_id || ' has ' || count(*)
               || ' open versions (beginnt ' || string_agg(beginnt::text, ', ' ORDER BY beginnt) || ')',
               NULL::geometry
        FROM {table} t WHERE endet IS NULL AND {scope} GROUP BY gml_id HAVING count(*) > 1""",
    "history.order": """
        SELECT gml_id, ARRAY[]::text[], {label} || ' ' || gml_id || ': version beginning '
               || beginnt || CASE WHEN endet IS NOT NULL AND beginnt >= endet
                                  THEN ' ends before it begins (' || endet || ')'
                                  ELSE ' overlaps the previous version (ends '
                                       || coalesce(prev_endet::text, 'never') || ')' END,
               NULL::geometry
        FROM (SELECT gml_id, beginnt, endet,
                     lag(beginnt) OVER w AS prev_beginnt, lag(endet) OVER w AS prev_endet
              FROM {table} t WHERE {scope}
              WINDOW w AS (PARTITION BY gml_id ORDER BY beginnt)) v
        WHERE (endet IS NOT NULL AND beginnt >= endet)
           OR (prev_beginnt IS NOT NULL AND (prev_endet IS NULL OR prev_endet > beginnt))""",
}


def _sql_findings(conn, rule_ids, params, gemarkung):
    scope = sql.SQL("TRUE")
    args = {"fsk_re": FSK_RE, "area_abs": params["area_abs"], "area_rel": params["area_rel"],
            "utm": params["area_utm_correction"]}
    if gemarkung:
        scope = sql.SQL("gemarkungsnummer = %(gemarkung)s")
        args["gemarkung"] = gemarkung
    findings = []
    for rule_id in rule_ids:
        statements = []
        if rule_id in SQL_RULES:
            statements.append(sql.SQL(SQL_RULES[rule_id]).format(scope=scope))
        elif rule_id in HISTORY_SQL:
            for table in HISTORY_TABLES:
                if gemarkung and table != "kataster.ax_flurstueck":
                    continue
                label = sql.Literal(table.split(".")[1])
                statements.append(sql.SQL(HISTORY_SQL[rule_id]).format(
                    table=sql.Identifier(*table.split(".")), scope=scope, label=label))
        for statement in statements:
            for obj, related, message, wkb in conn.execute(
                    sql.SQL("SELECT gml_id, related, message, ST_AsBinary(g)"
                            " FROM ({}) AS r(gml_id, related, message, g)").format(statement),
                    args):
                findings.append(Finding(rule_id, obj, message, related=list(related or []),
                                        geom=shapely.from_wkb(bytes(wkb)) if wkb else None))
    return findings


# -- partitions ----------------------------------------------------------------------------------
def _read_parcels(conn, where, args):
    rows = conn.execute(sql.SQL(
        "SELECT gml_id, flurstueckskennzeichen, land, gemarkungsnummer, flurnummer,"
        " ST_AsBinary(geom) FROM kataster.ax_flurstueck WHERE endet IS NULL AND ") + where,
        args).fetchall()
    df = pd.DataFrame(rows, columns=["gml_id", "flurstueckskennzeichen", "land",
                                     "gemarkungsnummer", "flurnummer", "wkb"])
    geom = shapely.from_wkb(df.pop("wkb").map(lambda b: None if b is None else bytes(b)).to_numpy())
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom, crs=25832))


def _cells(bounds, margin, size):
    """Boxes (minx, miny, maxx, maxy) covering every grid cell of ``size`` metres that a
    parcel's extent, grown by ``margin``, touches; runs of cells in a row are merged."""
    if not len(bounds):
        return np.empty((0, 4))
    lo = np.floor((bounds[:, :2] - margin) / size).astype(np.int64)
    hi = np.floor((bounds[:, 2:] + margin) / size).astype(np.int64)
    span = hi - lo + 1
    small = (span <= 2).all(axis=1)
    # Extents spanning at most two cells each way: their corners name all their cells.
    cells = np.concatenate([np.stack([lo[small, 0], lo[small, 1]], 1),
                            np.stack([hi[small, 0], lo[small, 1]], 1),
                            np.stack([lo[small, 0], hi[small, 1]], 1),
                            np.stack([hi[small, 0], hi[small, 1]], 1)])
    big = [np.stack(np.meshgrid(np.arange(a[0], b[0] + 1), np.arange(a[1], b[1] + 1)),
                    -1).reshape(-1, 2) for a, b in zip(lo[~small], hi[~small], strict=True)]
    cells = np.concatenate([cells, *big])
    base = cells.min(axis=0)
    width = cells[:, 0].max() - base[0] + 1
    key = np.unique((cells[:, 1] - base[1]) * width + (cells[:, 0] - base[0]))   # by y, then x
    cells = np.stack([key % width + base[0], key // width + base[1]], 1)
    new_run = np.ones(len(cells), dtype=bool)
    new_run[1:] = (cells[1:, 1] != cells[:-1, 1]) | (cells[1:, 0] != cells[:-1, 0] + 1)
    starts = np.flatnonzero(new_run)
    ends = np.append(starts[1:], len(cells)) - 1
    return np.stack([cells[starts, 0] * size, cells[starts, 1] * size,
                     (cells[ends, 0] + 1) * size, (cells[ends, 1] + 1) * size], 1).astype(float)


def validate_partition(url, partition, stage_names, params):
    """Run the partition stages for one Gemarkung (runs in a Dask worker); returns its findings
    and the outline of its parcels (WKB, for the border holes found by :func:`border_holes`)."""
    from pipeline.db import Database

    land, gem = partition
    db = Database(url)
    if not (land and gem):
        # Parcels without a (complete) Gemarkung: only the per-parcel stages; their overlaps and
        # gaps are found from the neighbouring Gemarkungen, whose context includes them.
        with db.connect() as conn:
            parcels = _read_parcels(conn, sql.SQL(
                "(coalesce(land, '') = '' OR coalesce(gemarkungsnummer, '') = '')"), ())
        stages = [s for s in PARTITION_STAGES
                  if s.name in stage_names and set(s.consumes) <= {"parcels"}]
        geoms = parcels.geometry.values
        outline = shapely.union_all(geoms[~shapely.is_missing(geoms) & shapely.is_valid(geoms)])
        findings = Pipeline(stages, provided=PARTITION_INPUTS).run(
            {"parcels": parcels, "context": None, "own": 0, "districts": None, "partition": "",
             "verify_hole": None}, params)["findings"]
        return findings, shapely.to_wkb(outline)
    with db.connect() as conn:
        parcels = _read_parcels(conn, sql.SQL("land = %s AND gemarkungsnummer = %s"), (land, gem))
        geoms = parcels.geometry.values
        bounds = shapely.bounds(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))])
        if not len(bounds):
            return Pipeline([s for s in PARTITION_STAGES if s.name in stage_names and
                             set(s.consumes) <= {"parcels"}], provided=PARTITION_INPUTS).run(
                {"parcels": parcels, "context": None, "own": 0, "districts": None,
                 "partition": "", "verify_hole": None}, params)["findings"], None
        env = (*(bounds[:, :2].min(axis=0) - MARGIN), *(bounds[:, 2:].max(axis=0) + MARGIN))
        # Neighbours: the other parcels in the grid cells our parcels (grown by the margin)
        # touch: a band along the border. The Gemarkung's extent, or its Flure's, can cover
        # most of a city (one partition of 1,000,000 generated parcels had 640,000 parcels in
        # its extent); holes on the border that the band does not enclose are found from the
        # outlines of all partitions (border_holes).
        cells = _cells(bounds, MARGIN, CELL)
        neighbours = _read_parcels(conn, sql.SQL(
            "gml_id = ANY(ARRAY(SELECT DISTINCT n.gml_id"
            " FROM unnest(%s::float8[], %s::float8[], %s::float8[], %s::float8[]) AS c(x0, y0, x1, y1)"
            " JOIN kataster.ax_flurstueck n ON n.geom && ST_MakeEnvelope(c.x0, c.y0, c.x1, c.y1, 25832)"
            " WHERE n.endet IS NULL AND NOT (coalesce(n.land, '') = %s"
            " AND coalesce(n.gemarkungsnummer, '') = %s)))"),
            (*[list(cells[:, k]) for k in range(4)], land, gem))
        drows = conn.execute(
            "SELECT land, gemarkungsnummer, flurnummer, ST_AsBinary(geom) FROM kataster.bezirk"
            " WHERE art = 'flur' AND endet IS NULL AND geom && ST_MakeEnvelope(%s, %s, %s, %s, 25832)",
            env).fetchall()
    districts = gpd.GeoDataFrame(
        pd.DataFrame(drows, columns=["land", "gemarkungsnummer", "flurnummer", "wkb"]).drop(
            columns="wkb"),
        geometry=gpd.GeoSeries(shapely.from_wkb([bytes(r[3]) for r in drows]), crs=25832))
    if len(districts) and not (districts["gemarkungsnummer"] == gem).any():
        districts = districts.iloc[:0]     # imported boundaries only where present for this one
    context = pd.concat([parcels, neighbours], ignore_index=True)

    def verify_hole(hole):
        """True if no stored parcel fills the hole (neighbours far outside were not loaded)."""
        with db.connect() as conn:
            filled = conn.execute(
                "SELECT coalesce(sum(ST_Area(ST_Intersection(geom, h))), 0) FROM"
                " kataster.ax_flurstueck, ST_GeomFromWKB(%s, 25832) h"
                " WHERE endet IS NULL AND geom && h AND ST_IsValid(geom)",
                (shapely.to_wkb(hole),)).fetchone()[0]
        return filled < 0.5 * hole.area

    pipeline = Pipeline(_stages(stage_names), provided=PARTITION_INPUTS)
    out = pipeline.run({"parcels": parcels, "context": context, "own": len(parcels),
                        "districts": districts, "partition": land + gem,
                        "verify_hole": verify_hole}, params)
    outline = out.get("outline")
    return out["findings"], None if outline is None else shapely.to_wkb(outline)


@dataclass
class ValidationResult:
    run_id: int
    findings: list
    counts: dict
    fixed: int
    seconds: float
    private: bool = False


def _params(config):
    keys = ("sliver_max_area", "sliver_min_width", "overlap_min_area", "gap_max_width",
            "outside_min_share", "area_abs", "area_rel", "area_utm_correction",
            "precision_min_area", "precision_min_width")
    return {k: config[f"validation.{k}"] for k in keys}


def run_partitions(url, partitions, stage_names, params, scheduler=None):
    """Findings of all partitions, in parallel with Dask, and of the holes on their borders.

    ``scheduler``: None → local processes (or in-process for a single partition);
    ``"synchronous"`` → in this process; ``"tcp://host:port"`` → an existing Dask cluster.
    """
    if not partitions or not stage_names:
        return []
    import dask

    tasks = [dask.delayed(validate_partition)(url, p, stage_names, params) for p in partitions]
    if scheduler and scheduler.startswith(("tcp://", "tls://")):
        from distributed import Client

        with Client(scheduler) as client:
            results = dask.compute(*tasks, scheduler=client)
    elif scheduler == "synchronous" or len(partitions) == 1:
        results = dask.compute(*tasks, scheduler="synchronous")
    else:
        from pipeline.processes import dies_with_this_process

        # Worker processes die with us: a killed validation leaves none behind.
        kwargs = {"initializer": dies_with_this_process()} if scheduler in (None, "processes") \
            else {}
        results = dask.compute(*tasks, scheduler=scheduler or "processes", **kwargs)
    findings = _dedupe([f for part, _ in results for f in part])
    findings = collapse_precision(findings, params)
    if "coverage" in stage_names and len(partitions) > 1:
        from pipeline.db import Database

        outlines = [shapely.from_wkb(w) for _, w in results if w is not None]
        with Database(url).connect() as conn:
            more = border_holes(conn, outlines, [f for f in findings if f.rule == "coverage.gap"])
        log.info("%d holes on partition borders found from the outlines", len(more))
        findings += more
    return _dedupe(findings)


def border_holes(conn, outlines, known):
    """coverage.gap for holes that only the union of all partitions' outlines encloses: a
    partition sees its own parcels and a band of neighbours, which need not close a hole on
    its border. Holes a partition reported already (``known``) are skipped; the rest are
    checked against the database as a partition checks its own."""
    union = shapely.union_all(outlines)
    holes = [shapely.Polygon(r) for part in shapely.get_parts(union) for r in part.interiors]
    if not holes:
        return []
    places = shapely.STRtree([shapely.point_on_surface(f.geom) for f in known
                              if f.geom is not None] or [shapely.Point()])
    findings = []
    for hole in holes:
        if len(places.query(hole, predicate="contains")):
            continue
        rows = conn.execute(
            "SELECT gml_id, ST_AsBinary(geom) FROM kataster.ax_flurstueck, ST_GeomFromWKB(%s, 25832) h"
            " WHERE endet IS NULL AND geom && h AND ST_Intersects(geom, h) AND ST_IsValid(geom)",
            (shapely.to_wkb(hole),)).fetchall()
        ids = np.array([r[0] for r in rows], dtype=object)
        geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
        inside = shapely.contains_properly(hole, geoms)
        if inside.any():    # islands: parcels inside the hole are not part of the gap
            hole = shapely.difference(hole, shapely.union_all(geoms[inside]))
            if hole.area < 1e-6:
                continue
        filled = shapely.area(shapely.intersection(geoms, hole)).sum()
        touching = shapely.intersects(geoms, hole)
        if filled >= 0.5 * hole.area or not touching.any():
            continue
        tids = sorted(ids[touching])
        findings.append(Finding(
            "coverage.gap", tids[0], f"hole of {hole.area:.1f} m² enclosed by parcels "
            f"{', '.join(tids[:6])}{' …' if len(tids) > 6 else ''} (a missing parcel?)",
            geom=hole, related=tids[1:]))
    return findings


def may_see_owners(conn):
    """True if the database user may read owner data (the owner of the database's owner
    schema, kataster_eigentum, kataster_admin, a superuser)."""
    return conn.execute(
        "SELECT rolsuper OR EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname IN"
        " ('kataster_eigentum', 'kataster_admin') AND pg_has_role(current_user, g.oid, 'MEMBER'))"
        " OR pg_has_role(current_user, (SELECT nspowner FROM pg_namespace"
        "                               WHERE nspname = 'kataster_privat'), 'MEMBER')"
        " FROM pg_roles WHERE rolname = current_user").fetchone()[0]


def visible(result, private=False):
    """The findings an output may show: owner-related ones only with ``private``."""
    return [f for f in result.findings if private or not f.private]


def validate(db, config, rules=None, gemarkung=None, scheduler=None, private=False):
    """Run validation rules and store their findings.

    Parameters
    ----------
    db : pipeline.db.Database
    config : pipeline.config.Config
    rules : list of str, optional
        Rule ids (default: all validation rules).
    gemarkung : str, optional
        Only parcels of this Gemarkungsnummer (with their borders to the neighbours).
    scheduler : str, optional
        Dask scheduler (see :func:`run_partitions`).

    Returns
    -------
    ValidationResult
    """
    started = time.monotonic()
    from pipeline.owner_rules import RULE_IDS

    available = {r for s in PARTITION_STAGES for r in s.rules} | set(SQL_RULES) | \
        set(HISTORY_SQL) | set(RULE_IDS)
    rules = list(rules or sorted(available))
    unknown = [r for r in rules if r not in available]
    if unknown:
        raise UsageError(f"unknown or non-validation rules {', '.join(unknown)}; choose from "
                         f"{', '.join(sorted(available))}")
    if gemarkung:
        from pipeline.views import resolve_district

        with db.connect() as conn:
            gemarkung = resolve_district(conn, gemarkung)
    else:
        gemarkung = None
    params = _params(config)
    if private:
        with db.connect() as conn:
            if not may_see_owners(conn):
                raise UsageError("--private shows owner data: it needs the role "
                                 "kataster_eigentum or kataster_admin")
    stage_names = [s.name for s in PARTITION_STAGES if set(s.rules) & set(rules)]
    from pipeline.runs import acquire_import_lock, mark_dead_runs

    with db.connect(autocommit=True) as conn:
        # Shared: other validations may run, imports and repairs wait until we are done.
        acquire_import_lock(conn, config["database.lock_timeout"], shared=True)
        mark_dead_runs(conn, "validate")
        run_id = conn.execute(
            "INSERT INTO kataster.import_run (os_user, importer, options, server_pid)"
            " VALUES (%s, 'validate', %s, pg_backend_pid()) RETURNING id",
            (getpass.getuser(), json.dumps({"rules": rules, "gemarkung": gemarkung,
                                            "params": params}))).fetchone()[0]
        # One partition per Gemarkung, and one ("", "") for parcels without a complete one.
        partitions = conn.execute(
            "SELECT DISTINCT coalesce(land, ''), coalesce(gemarkungsnummer, '')"
            " FROM kataster.ax_flurstueck WHERE endet IS NULL"
            " AND (%(g)s::text IS NULL OR gemarkungsnummer = %(g)s) ORDER BY 1, 2",
            {"g": gemarkung}).fetchall()
        partitions = sorted({(la, ge) if la and ge else ("", "") for la, ge in partitions})
        try:
            # The set-based rules run in the database while the partitions run in the workers.
            with ThreadPoolExecutor(1) as pool:
                in_database = pool.submit(_database_rules, db, rules, params, gemarkung)
                t = time.monotonic()
                findings = run_partitions(db.url, partitions, stage_names, params, scheduler)
                log.info("%d partitions in %.1f s", len(partitions), time.monotonic() - t)
                findings += in_database.result()
            if {"coverage.gap", "coverage.overlap"} & set(rules):
                rules = sorted(set(rules) | {"coverage.precision"})
            findings = [f for f in _dedupe(findings) if f.rule in rules]
            with conn.transaction():
                fixed = store_findings(conn, run_id, findings, rules, gemarkung)
                stored = {}
                for schema in ("kataster", "kataster_privat"):
                    stored.update({k: (i, st) for k, i, st in conn.execute(sql.SQL(
                        "SELECT key, id, status FROM {}.finding WHERE key = ANY(%s)").format(
                        sql.Identifier(schema)), ([f.key for f in findings],))})
                for f in findings:
                    f.id, f.status = stored[f.key]
                counts = {"by_rule": {}, "by_severity": {s: 0 for s in ("error", "warning", "info")}}
                for f in findings:
                    if f.private and not private:
                        continue
                    counts["by_rule"][f.rule] = counts["by_rule"].get(f.rule, 0) + 1
                    counts["by_severity"][f.severity] += 1
                conn.execute("UPDATE kataster.import_run SET status = 'committed', finished ="
                             " clock_timestamp(), counts = %s, findings = %s WHERE id = %s",
                             (json.dumps(counts), json.dumps(counts["by_severity"]), run_id))
        except BaseException as err:
            conn.execute("UPDATE kataster.import_run SET status = 'failed', finished ="
                         " clock_timestamp(), error = %s WHERE id = %s", (str(err), run_id))
            raise
    return ValidationResult(run_id, findings, counts, fixed, round(time.monotonic() - started, 3),
                            private)


def _database_rules(db, rules, params, gemarkung):
    """Findings of the rules that are SQL (history, ids, areas) and of the owner rules, on a
    connection of their own."""
    from pipeline.owner_rules import RULE_IDS, owner_findings

    with db.connect(autocommit=True) as conn:
        t = time.monotonic()
        findings = _sql_findings(conn, [r for r in rules if r in SQL_RULES or r in HISTORY_SQL],
                                 params, gemarkung)
        log.info("SQL rules in %.1f s", time.monotonic() - t)
        t = time.monotonic()
        findings += owner_findings(conn, [r for r in rules if r in RULE_IDS])
        log.info("owner rules in %.1f s", time.monotonic() - t)
    return findings


def store_findings(conn, run_id, findings, rules, gemarkung=None):
    """Upsert findings by stable key; mark vanished ones of these rules ``fixed``.

    Returns the number of findings marked fixed.
    """
    from pipeline.runs import _store_findings

    _store_findings(conn, run_id, findings)
    fixed = 0
    for schema in ("kataster", "kataster_privat"):
        scope = sql.SQL("")
        args = {"run": run_id, "rules": list(rules)}
        if gemarkung:
            scope = sql.SQL(" AND object_id IN (SELECT gml_id FROM kataster.ax_flurstueck"
                            " WHERE gemarkungsnummer = %(gem)s)")
            args["gem"] = gemarkung
        fixed += conn.execute(sql.SQL(
            "UPDATE {}.finding SET status = 'fixed', status_by = 'kataster validate',"
            " status_at = now(), status_reason = 'not found again in run ' || %(run)s"
            " WHERE rule = ANY(%(rules)s) AND status <> 'fixed'"
            " AND coalesce(run_id, -1) <> %(run)s").format(sql.Identifier(schema)) + scope,
            args).rowcount
    return fixed


def summary_json(result):
    """The ``--json`` summary (schema: ``schemas/validate-summary.schema.json``)."""
    out = []
    for f in visible(result, result.private):
        loc = None
        if f.geom is not None and not shapely.is_empty(f.geom):
            p = shapely.point_on_surface(f.geom) if shapely.is_valid(f.geom) else \
                shapely.centroid(f.geom)
            loc = [round(p.x, 3), round(p.y, 3)]
        out.append({"id": f.id, "rule": f.rule, "severity": f.severity, "status": f.status,
                    "object": f.object_id, "related": list(f.related), "message": f.message,
                    "location": loc})
    return {"run_id": result.run_id, "findings": out, "counts": result.counts,
            "fixed": result.fixed, "seconds": result.seconds}
