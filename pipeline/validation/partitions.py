"""Partitions: one Gemarkung's current parcels in one tile plus a band of neighbours, read from
the database and run through the stages in Dask workers; the holes on partition borders found
from the union of the partitions' outlines."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from psycopg import sql

from pipeline.validation.stages import (
    PARTITION_INPUTS,
    Pipeline,
    collapse_precision,
    dedupe,
    hole_finding,
    parcel_stages,
    stages_for,
)
from schemas import queries

log = logging.getLogger(__name__)
QUERIES = queries("partitions")
QUERIES_SCOPE = queries("scope")
MARGIN = 1.0   # metres around a partition's parcels from which neighbours are loaded
CELL = 100.0   # metres: grid cells in which neighbours are looked up
BAND = 50.0    # metres around a tile's square read with it (parcels reaching further: CELL)
# A Gemarkung of more than MOST current parcels is cut into tiles of TILE metres (tile_of), so
# that a partition's work is bounded whatever the administrative layout: a delivery without a
# real Flur structure (1,000,000 parcels in one Gemarkung) had been one partition worked through
# by one process. 16 km² hold ~27,000 parcels of 600 m². Smaller Gemarkungen stay whole:
# cutting all of them into 4 km tiles made the full validation of the generated
# 1,000,000-parcel city (14 Gemarkungen) 60 s instead of 44 s.
MOST = 100_000
TILE = 4000.0


def tile_of(bounds):
    """The tile of each extent (rows of minx, miny, maxx, maxy): "x:y", the column and row of
    the square of TILE metres (a grid from the origin of EPSG:25832) holding the extent's
    centre; "" without an extent (NaN). Computed here from the exact coordinates, not in SQL:
    PostGIS's boxes are rounded to single precision, and a per-row SQL function cost 4 µs a
    parcel (2.2 s to list the tiles of 1,000,000 parcels)."""
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
    placed = ~np.isnan(bounds).any(axis=1)
    tiles = np.full(len(bounds), "", dtype=object)
    if placed.any():
        centre = np.floor((bounds[placed, :2] + bounds[placed, 2:]) / (2 * TILE)).astype(np.int64)
        # A piece of a city lies in a few tiles: name each once.
        low = centre.min(axis=0)
        rows = centre[:, 1].max() - low[1] + 1
        keys, inverse = np.unique((centre[:, 0] - low[0]) * rows + centre[:, 1] - low[1],
                                  return_inverse=True)
        names = np.array([f"{k // rows + low[0]}:{k % rows + low[1]}" for k in keys.tolist()],
                         dtype=object)
        tiles[placed] = names[inverse]
    return tiles


def partitions(conn, gemarkung=None):
    """The partitions of a full validation (of Gemarkung ``gemarkung`` only, if given) and the
    Gemarkungen cut into tiles: (Land, Gemarkung, tile) of the current parcels, tile None for a
    whole Gemarkung; in a cut one every tile of its extent ("x:y", some perhaps empty) and ""
    for its parcels without a geometry; ("", "", None) for those without a complete
    Gemarkung."""
    counts = conn.execute(QUERIES["gemarkungen"], {"gemarkung": gemarkung}).fetchall()
    large = sorted((la, ge) for la, ge, n in counts if la and ge and n > MOST)
    tiled = [la + ge for la, ge in large]
    found = {(la, ge, None) if la and ge else ("", "", None) for la, ge, n in counts
             if la + ge not in tiled}
    for la, ge in large:
        x0, y0, x1, y1, unplaced = conn.execute(QUERIES["extent"], {
            "land": la, "gemarkung": ge}).fetchone()
        if x0 is not None:
            cols, lines = (range(int(np.floor(lo / TILE)), int(np.floor(hi / TILE)) + 1)
                           for lo, hi in ((x0, x1), (y0, y1)))
            found |= {(la, ge, f"{c}:{r}") for c in cols for r in lines}
        if unplaced:
            found.add((la, ge, ""))
    return sorted(found, key=lambda p: (p[0], p[1], p[2] is not None, p[2] or "")), tiled


def _read_parcels(conn, where, args, tiled=()):
    """Current parcels (``where``: a named condition) with their owning partition (``teil``:
    Gemarkung and tile, see :func:`tile_of`) and geometry. The text columns stay Python
    strings (object columns): converting them to pandas' Arrow strings, and taking rows from
    those, cost more than reading them."""
    # Binary results: the geometries arrive as bytes, not as hex text to decode.
    condition = sql.SQL(QUERIES[where]).format(in_cells=sql.SQL(QUERIES["in_cells"]))
    rows = conn.execute(sql.SQL(QUERIES["parcels"]).format(where=condition), args,
                        binary=True).fetchall()
    names = ["gml_id", "flurstueckskennzeichen", "land", "gemarkungsnummer", "flurnummer",
             "teil"]
    table = np.empty((len(rows), 6), dtype=object)
    if rows:
        table[:] = rows      # one pass (a tuple per column from zip(*rows) cost four times more)
    columns = list(table.T)
    geom = shapely.from_wkb(columns.pop())
    # The partition owning what is found on a parcel: "LLGGGG/" its Gemarkung, "LLGGGG/x:y" a
    # tile of a Gemarkung cut into tiles, "" none for a parcel without a complete Gemarkung.
    land, gem = columns[2], columns[3]
    complete = land.astype(bool) & gem.astype(bool)      # neither None nor ""
    key = np.full(len(land), "", dtype=object)
    key[complete] = land[complete] + gem[complete]
    cut = np.isin(key, list(tiled)) if len(tiled) and len(key) else np.zeros(len(key), dtype=bool)
    key[complete] += "/"
    key[cut] += tile_of(shapely.bounds(geom[cut]))
    columns.append(key)
    frame = {n: pd.Series(c, dtype=object) for n, c in zip(names, columns, strict=True)}
    frame["flurnummer"] = pd.Series(pd.array(columns[4], dtype="Int64"))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geom, crs=25832))


def _read_districts(conn, env):
    """The Flur maps (``kataster.flur_karte``) meeting the box ``env``."""
    rows = conn.execute(QUERIES["fluren"], dict(zip(("minx", "miny", "maxx", "maxy"), env,
                                                    strict=True))).fetchall()
    frame = pd.DataFrame(rows, columns=["land", "gemarkungsnummer", "flurnummer", "herkunft",
                                        "wkb"])
    geom = shapely.from_wkb([bytes(w) if w is not None else None for w in frame.pop("wkb")])
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geom, crs=25832))


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


def _read_piece(conn, land, gem, tile, tiled):
    """A partition's own parcels and its neighbours: the other parcels within MARGIN of its
    parcels' extents, a band along its border.

    A tile is read in one query: the parcels meeting its square grown by BAND (its own are
    those whose centre lies in the square, :func:`tile_of`; the rest are neighbours); only for
    the parcels reaching beyond that box (long ones: roads, rivers) are the grid cells
    (:func:`_cells`) they reach read in a second query. A whole Gemarkung is read by its key,
    its band by the cells: its extent, or its Fluren's, can cover most of a city (one
    partition of 1,000,000 generated parcels had 640,000 parcels in its extent). Holes on the
    border that the band does not enclose are found from the outlines of all partitions
    (border_holes)."""
    where = {"land": land, "gemarkung": gem}
    if tile == "":
        return _read_parcels(conn, "without_tile", where, tiled), None
    if tile:
        x, y = (float(c) * TILE for c in tile.split(":"))
        box = np.array([x - BAND, y - BAND, x + TILE + BAND, y + TILE + BAND])
        read = _read_parcels(conn, "in_box", dict(zip(("minx", "miny", "maxx", "maxy"), box,
                                                      strict=True)), tiled)
        mine = (read["teil"] == f"{land}{gem}/{tile}").to_numpy()
        parcels = read[mine].reset_index(drop=True)
        known = read[~mine]
    else:
        parcels = _read_parcels(conn, "of_gemarkung", where, tiled)
        box, known = None, None
    geoms = parcels.geometry.values
    bounds = shapely.bounds(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))])
    if box is not None:     # the parcels whose neighbours the box read may lack
        bounds = bounds[~((bounds[:, :2] - MARGIN >= box[:2]).all(axis=1) &
                          (bounds[:, 2:] + MARGIN <= box[2:]).all(axis=1))]
    if not len(bounds):
        return parcels, known
    cells = _cells(bounds, MARGIN, CELL)
    sides = {k: list(cells[:, i]) for i, k in enumerate(("x0", "y0", "x1", "y1"))}
    if tile:
        more = _read_parcels(conn, "beyond_box", {**sides, **dict(zip(
            ("minx", "miny", "maxx", "maxy"), box, strict=True))}, tiled)
    else:
        more = _read_parcels(conn, "neighbours", {**sides, **where}, tiled)
    return parcels, more if known is None else pd.concat([known, more], ignore_index=True)


def validate_partition(url, partition, stage_names, params, tiled=()):
    """Run the partition stages for one Gemarkung or one tile of it (runs in a Dask worker;
    ``tiled``: the Gemarkungen cut into tiles); returns its findings and the outline of its
    parcels (WKB, for the border holes found by :func:`border_holes`)."""
    from pipeline.db import Database

    land, gem, tile = partition
    db = Database(url)
    if not (land and gem):
        # Parcels without a (complete) Gemarkung: only the per-parcel stages; their overlaps and
        # gaps are found from the neighbouring Gemarkungen, whose context includes them.
        with db.connect() as conn:
            parcels = _read_parcels(conn, "without_gemarkung", {})
        out = Pipeline(parcel_stages(stage_names), provided=PARTITION_INPUTS).run(
            {"parcels": parcels, "context": None, "own": 0, "districts": None, "partition": "",
             "verify_hole": None}, params)
        outline = shapely.union_all(parcels.geometry.values[out["valid"]])
        return out["findings"], shapely.to_wkb(outline)
    with db.connect() as conn:
        parcels, neighbours = _read_piece(conn, land, gem, tile, tiled)
        geoms = parcels.geometry.values
        bounds = shapely.bounds(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))])
        if not len(bounds):
            return Pipeline(parcel_stages(stage_names), provided=PARTITION_INPUTS).run(
                {"parcels": parcels, "context": None, "own": 0, "districts": None,
                 "partition": "", "verify_hole": None}, params)["findings"], None
        env = (*(bounds[:, :2].min(axis=0) - MARGIN), *(bounds[:, 2:].max(axis=0) + MARGIN))
        districts = _read_districts(conn, env) if "district" in stage_names else None
    context = pd.concat([parcels, neighbours], ignore_index=True)

    def verify_hole(hole):
        """True if no stored parcel fills the hole (neighbours far outside were not loaded)."""
        with db.connect() as conn:
            filled = conn.execute(QUERIES["area_filled"],
                                  {"hole": shapely.to_wkb(hole)}).fetchone()[0]
        return filled < 0.5 * hole.area

    pipeline = Pipeline(stages_for(stage_names), provided=PARTITION_INPUTS)
    out = pipeline.run({"parcels": parcels, "context": context, "own": len(parcels),
                        "districts": districts, "partition": f"{land}{gem}/{tile or ''}",
                        "verify_hole": verify_hole}, params)
    outline = out.get("outline")
    return out["findings"], None if outline is None else shapely.to_wkb(outline)




def validate_scope(conn, scope, stage_names, params):
    """The stage findings inside a scope (:class:`pipeline.validation.scope.Scope`), computed as
    the partitions compute them, in one piece in this process: the current parcels in the
    scope's boxes grown by a cell (so that holes and narrow gaps at their edges are seen
    closed) and around the open gap findings there, the touched parcels without a place, and
    the Flur maps around them. Sets ``scope.near``."""
    if not stage_names:
        return []
    def sides(boxes):
        return {k: list(boxes[:, i]) for i, k in enumerate(("x0", "y0", "x1", "y1"))}

    gaps = np.array(conn.execute(QUERIES_SCOPE["gaps_near"], sides(scope.boxes)).fetchall(),
                    dtype=float).reshape(-1, 4)
    load = np.concatenate([scope.boxes + np.array([-CELL, -CELL, CELL, CELL]),
                           gaps + np.array([-MARGIN, -MARGIN, MARGIN, MARGIN])])
    context = _read_parcels(conn, "in_boxes", {"parcels": scope.parcels, **sides(load)})
    geoms = context.geometry.values
    near = scope.meets(geoms) | context["gml_id"].isin(scope.parcels).to_numpy()
    scope.near = set(context["gml_id"][near])
    # The parcels first, as the stages expect of a context.
    context = context.iloc[np.argsort(~near, kind="stable")].reset_index(drop=True)
    parcels = context.iloc[:near.sum()]
    placed = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    districts = _read_districts(conn, shapely.total_bounds(placed)) if len(placed) else \
        _read_districts(conn, (0, 0, 0, 0))

    def verify_hole(hole):
        filled = conn.execute(QUERIES["area_filled"], {"hole": shapely.to_wkb(hole)}).fetchone()[0]
        return filled < 0.5 * hole.area

    out = Pipeline(stages_for(stage_names), provided=PARTITION_INPUTS).run(
        {"parcels": parcels, "context": context, "own": 0, "districts": districts,
         "partition": None, "verify_hole": verify_hole}, params)
    found = [f for f in dedupe(out["findings"]) if f.rule != "coverage.precision"]
    return [f for f, inside in zip(found, scope.contains(found), strict=True) if inside]


@contextmanager
def local_workers(scheduler):
    """The worker processes of :func:`run_partitions` for the default scheduler (None or
    ``"processes"``), started at once; None for the other schedulers.

    They are forked: copies of this process with the stages imported, ready in 0.1 s, where
    spawning fresh interpreters that import them took 0.8 s of a 7 s validation. A fork copies
    what the process holds, so the caller enters this before it opens a connection, and it
    forks only while no other thread runs (a fork keeps only the calling thread, and what the
    others held, a connection among them, would be released in the copy); otherwise (a Jupyter
    kernel runs threads) the workers are spawned. They die with this process, also when it is
    killed."""
    if scheduler not in (None, "processes"):
        yield None
        return
    from pipeline.processes import dies_with_this_process

    fork = threading.active_count() == 1
    with ProcessPoolExecutor(os.cpu_count() or 1, initializer=dies_with_this_process(),
                             mp_context=multiprocessing.get_context(
                                 "fork" if fork else "spawn")) as pool:
        if fork:      # all workers are forked at the first task: now, before any connection
            pool.submit(int).result()
        yield pool


def run_partitions(url, partitions, stage_names, params, scheduler=None, tiled=(), pool=None):
    """Findings of all partitions, in parallel with Dask, and of the holes on their borders.

    ``scheduler``: None → local processes (``pool``: those of :func:`local_workers`, which
    the caller starts before it opens a connection), or in-process for a single partition;
    ``"synchronous"`` → in this process; ``"tcp://host:port"`` → an existing Dask cluster;
    another of Dask's names (``"threads"``) → that scheduler.
    """
    if not partitions or not stage_names:
        return []
    import dask
    import dask.local
    import dask.multiprocessing

    tasks = [dask.delayed(validate_partition)(url, p, stage_names, params, tiled)
             for p in partitions]
    if scheduler and scheduler.startswith(("tcp://", "tls://")):
        from distributed import Client

        with Client(scheduler) as client:
            results = dask.compute(*tasks, scheduler=client)
    # Dask's schedulers as functions: named ones make Dask import distributed to look for a
    # client first (0.2 s).
    elif scheduler == "synchronous" or len(partitions) == 1:
        results = dask.compute(*tasks, scheduler=dask.local.get_sync)
    elif scheduler in (None, "processes"):
        results = dask.compute(*tasks, scheduler=dask.multiprocessing.get, pool=pool)
    else:
        results = dask.compute(*tasks, scheduler=scheduler)
    findings = dedupe([f for part, _ in results for f in part])
    if "gap" in stage_names and len(partitions) > 1:
        from pipeline.db import Database

        outlines = [shapely.from_wkb(w) for _, w in results if w is not None]
        with Database(url).connect() as conn:
            more = border_holes(conn, outlines, [f for f in findings if f.rule == "coverage.gap"],
                                params)
        log.info("%d holes on partition borders found from the outlines", len(more))
        findings += more
    return collapse_precision(dedupe(findings), params)


def border_holes(conn, outlines, known, params):
    """coverage.gap for holes that only the union of all partitions' outlines encloses: a
    partition sees its own parcels and a band of neighbours, which need not close a hole on
    its border. Holes a partition reported already (``known``) are skipped; the rest are
    checked against the database as a partition checks its own, precision dust included."""
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
        rows = conn.execute(QUERIES["around_hole"], {"hole": shapely.to_wkb(hole)}).fetchall()
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
        findings.append(hole_finding(hole, sorted(ids[touching]), params))
    return findings
