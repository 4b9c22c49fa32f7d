"""Reading the public views: one query builder for exports, the Python API and tests.

Only public views are reachable here (``kataster.flurstueck`` and friends), so nothing read
through this module can contain personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from pipeline.errors import UsageError
from schemas import queries

QUERIES = queries("views")

LAYERS = {
    "flurstueck": ("kataster", "flurstueck"),
    "gebaeude": ("kataster", "gebaeude"),
    "gemarkung": ("kataster", "gemarkung"),
    "flur": ("kataster", "flur"),
    "befund": ("kataster", "befund"),
    "befund_punkt": ("kataster", "befund_punkt"),
    "befund_flaeche": ("kataster", "befund_flaeche"),
    "nutzung": ("kataster", "nutzung"),
    "hausnummer": ("kataster", "hausnummer"),
    "strassenname": ("kataster", "strassenname"),
    "grenzpunkt": ("kataster", "grenzpunkt"),
    "historische_karte": ("kataster", "historische_karte"),
}
ORDER = {"flurstueck": ("flurstueckskennzeichen", "gml_id"), "gebaeude": ("gml_id",),
         "gemarkung": ("land", "gemarkungsnummer"),
         "flur": ("land", "gemarkungsnummer", "flurnummer"), "befund": ("id",),
         "befund_punkt": ("id",), "befund_flaeche": ("id",), "nutzung": ("gml_id",),
         "hausnummer": ("id",), "strassenname": ("id",), "grenzpunkt": ("id",),
         "historische_karte": ("jahr", "id")}
# The geometry type of each layer, for files that need one even when a layer is empty.
POINTS = {"befund_punkt", "hausnummer", "strassenname", "grenzpunkt"}
GEOMETRY_TYPE = ({layer: "MultiPolygon" for layer in LAYERS} | {"befund": "Unknown"}
                 | {layer: "Point" for layer in POINTS})
NO_DISTRICT = {"befund", "befund_punkt", "befund_flaeche", "nutzung", "hausnummer",
               "grenzpunkt", "historische_karte"}
NO_FLUR = NO_DISTRICT | {"gemarkung", "gebaeude"}


def query(layer, gemarkung=None, flur=None, bbox=None, at=None):
    """Composed SQL and bound parameters selecting a public view with filters.

    Parameters
    ----------
    layer : str
        One of ``flurstueck``, ``gebaeude``, ``gemarkung``, ``flur``, ``befund``.
    gemarkung : str or int, optional
        Gemarkungsnummer (zero-padded to 4 digits).
    flur : int, optional
        Flurnummer.
    bbox : tuple of 4 floats, optional
        minx, miny, maxx, maxy in EPSG:25832; features intersecting it.
    at : str or datetime, optional
        Point in time (parcels only): the parcels as they were then.
    """
    if layer not in LAYERS:
        raise UsageError(f"unknown layer {layer!r}; choose one of: {', '.join(LAYERS)}")
    where, params = [], {}
    if gemarkung is not None:
        if layer in NO_DISTRICT:
            raise UsageError(f"layer {layer} cannot be filtered by Gemarkung; use a bbox")
        where.append(sql.SQL(QUERIES["filter_gemarkung"]))
        params["gemarkung"] = str(gemarkung).zfill(4)
    if flur is not None:
        if layer in NO_FLUR:
            raise UsageError(f"layer {layer} cannot be filtered by Flur")
        where.append(sql.SQL(QUERIES["filter_flur"]))
        params["flur"] = int(flur)
    if bbox is not None:
        minx, miny, maxx, maxy = (float(v) for v in bbox)
        where.append(sql.SQL(QUERIES["filter_bbox"]))
        params.update(minx=minx, miny=miny, maxx=maxx, maxy=maxy)
    if at is not None:
        if layer != "flurstueck":
            raise UsageError("only parcels can be read at a point in time")
        source = sql.SQL(QUERIES["parcels_at"])
        params["at"] = at
    else:
        source = sql.Identifier(*LAYERS[layer])
    q = sql.SQL(QUERIES["read"]).format(
        source=source, filters=sql.SQL(" AND ").join(where or [sql.SQL("TRUE")]),
        order=sql.SQL(", ").join(map(sql.Identifier, ORDER[layer])))
    return q, params


def resolve_district(conn, gemarkung=None, flur=None):
    """The Gemarkungsnummer for a number or a name, checked against the data; a Flur checked
    too. Unknown ones are a UsageError listing the closest (a filter on nothing would silently
    give nothing)."""
    import difflib

    if gemarkung is None:
        return None
    rows = conn.execute(QUERIES["gemarkungen"]).fetchall()
    text = str(gemarkung).strip()
    if text.isdigit():
        number = text.zfill(4)
        found = [r for r in rows if r[0] == number]
    else:
        found = [r for r in rows if (r[1] or "").casefold() == text.casefold()]
    if len(found) != 1:
        names = [f"{n} {name or ''}".strip() for n, name in rows]
        close = difflib.get_close_matches(text, [n for n, _ in rows] + [m or "" for _, m in rows],
                                          n=3)
        raise UsageError(f"no Gemarkung {text!r} in the data"
                         + (f"; did you mean {', '.join(close)}?" if close else "")
                         + f" (there are: {', '.join(names[:30])}"
                         + (" …)" if len(names) > 30 else ")"))
    number = found[0][0]
    if flur is not None:
        fluren = [r[0] for r in conn.execute(QUERIES["fluren"], {"gemarkung": number})]
        if int(flur) not in fluren:
            raise UsageError(f"Gemarkung {number} has no Flur {flur} (its Fluren: "
                             f"{', '.join(map(str, fluren[:40]))}{' …' if len(fluren) > 40 else ''})")
    return number


def read_frames(db, layer, chunk=50_000, **filters):
    """Yield GeoDataFrames (EPSG:25832) of a public view, ``chunk`` rows at a time."""
    if filters.get("gemarkung") is not None and layer in LAYERS and layer not in NO_DISTRICT:
        with db.connect() as conn:
            filters["gemarkung"] = resolve_district(conn, filters["gemarkung"],
                                                    filters.get("flur"))
    q, params = query(layer, **filters)
    with db.connect() as conn:
        with conn.cursor(name="kataster_read") as cur:
            cur.itersize = chunk
            cur.execute(q, params)
            cols = [d.name for d in cur.description]
            ints = {d.name: INTEGER_TYPES[d.type_code] for d in cur.description
                    if d.type_code in INTEGER_TYPES}
            while True:
                rows = cur.fetchmany(chunk)
                if not rows and cur.rownumber:
                    break
                yield _frame(rows, cols, ints)
                if not rows:
                    break


# PostgreSQL integer types (oid) -> pandas' nullable integer dtypes: a column with NULLs stays
# integer (plain pandas would turn it into floats: Flurnummer 1.0 in every file format).
INTEGER_TYPES = {21: "Int16", 23: "Int32", 20: "Int64"}


def _frame(rows, cols, ints=None):
    # Imported here: the command line reads the layer list at every start.
    import geopandas as gpd
    import pandas as pd

    df = pd.DataFrame(rows, columns=cols).drop(columns=["geom"])
    for col, dtype in (ints or {}).items():
        if df[col].isna().any():          # without NULLs pandas keeps them int64 anyway
            df[col] = df[col].astype(dtype)
    wkb = df.pop("_wkb").map(lambda b: None if b is None else bytes(b))
    df["geom"] = gpd.GeoSeries.from_wkb(wkb, crs="EPSG:25832").values
    return gpd.GeoDataFrame(df, geometry="geom", crs="EPSG:25832")


def read(db, layer, **filters):
    """A whole public view (with filters) as one GeoDataFrame in EPSG:25832."""
    import geopandas as gpd
    import pandas as pd

    frames = list(read_frames(db, layer, **filters))
    frames = [f for f in frames if len(f)] or frames[:1]
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return gpd.GeoDataFrame(out, geometry="geom", crs="EPSG:25832")


@dataclass(frozen=True)
class Districts:
    """What a run changed of the Flur map and the street names: the Flur map's ``pieces``
    ((Flurkennzeichen, cell), kataster.flur_stueck) and the street names' ``streets`` (their
    ids, Flurkennzeichen:Straße, kataster.strassenname)."""

    pieces: list
    streets: list


def refresh_derived(conn, districts=None, house_numbers=None):
    """Recompute the derived copies: the name lists (0007); the Flur map's pieces (0024), the
    Flur map (0020), the Gemarkung map (0027) and the street names (0021, 0025), whole when
    ``districts`` is None, else the pieces and street names it names, the maps of the pieces'
    Fluren and of their Gemarkungen; the house numbers (0022), only those of the presentation
    objects and buildings ``house_numbers`` names or whole when None; the boundary points
    (0014)."""
    for view in ("gemarkung_name_liste", "gemeinde_name_liste"):
        conn.execute(sql.SQL(QUERIES["refresh"]).format(view=sql.Identifier("kataster", view)))
    if districts is None:
        _district_maps(conn, {"fluren": None, "zellen": None})
        for name in ("street_names_clear", "street_names_fill"):
            conn.execute(QUERIES[name])
    else:
        if districts.pieces:
            _district_maps(conn, {"fluren": sorted({f for f, _ in districts.pieces}),
                                  "zellen": sorted({z for _, z in districts.pieces})})
        if districts.streets:
            for name in ("street_names_drop_ids", "street_names_fill_ids"):
                conn.execute(QUERIES[name], {"ids": sorted(districts.streets)})
    if house_numbers is None:
        for name in ("house_numbers_clear", "house_numbers_fill"):
            conn.execute(QUERIES[name])
    elif house_numbers:
        for name in ("house_numbers_drop_ids", "house_numbers_fill_ids"):
            conn.execute(QUERIES[name], {"ids": list(house_numbers)})
    conn.execute(sql.SQL(QUERIES["refresh"]).format(
        view=sql.Identifier("kataster", "grenzpunkt")))


def _district_maps(conn, cells):
    """Redraw the Flur map's pieces that ``cells`` names (Flurkennzeichen and cells, None:
    all), the maps of their Fluren and of those Fluren's Gemarkungen."""
    conn.execute(QUERIES["flur_pieces_drop"], cells)
    _write_unions(conn, "flur_piece_parts", cells, "flur_stueck")
    fluren = {"fluren": cells["fluren"]}
    gemarkungen = {r[0] for name in ("flur_map_drop", "flur_map_fill_imported")
                   for r in conn.execute(QUERIES[name], fluren)}
    gemarkungen |= _write_unions(conn, "flur_map_parts", fluren, "flur_karte")
    named = {"gemarkungen": None if cells["fluren"] is None else sorted(gemarkungen - {None})}
    for name in ("gemarkung_map_drop", "gemarkung_map_fill_imported"):
        conn.execute(QUERIES[name], named)
    _write_unions(conn, "gemarkung_map_parts", named, "gemarkung_karte")


def _write_unions(conn, parts_query, params, table):
    """Write the rows of ``parts_query`` (its last column the WKB of a row's parts) to table
    ``kataster.{table}`` by COPY, each with the union of its parts (:func:`union_parts`) as
    its geometry. Returns the Gemarkung ids (Land and Gemarkungsnummer) of the rows."""
    import shapely

    gemarkungen = set()
    conn.execute(QUERIES["cursor_reads_all"])
    with conn.cursor(name="kataster_map_parts") as parts:
        parts.itersize = 2000
        parts.execute(QUERIES[parts_query], params)
        cols = [d.name for d in parts.description][:-1]
        land, gem = cols.index("land"), cols.index("gemarkungsnummer")
        copy_rows = sql.SQL(QUERIES["copy_unions"]).format(
            table=sql.Identifier("kataster", table),
            columns=sql.SQL(", ").join(map(sql.Identifier, cols + ["geom"])))
        while rows := parts.fetchmany(2000):
            geoms = shapely.set_srid([union_parts(r[-1]) for r in rows], 25832)
            wkb = shapely.to_wkb(geoms, hex=True, include_srid=True)
            with conn.cursor().copy(copy_rows) as copy:
                for row, g in zip(rows, wkb, strict=True):
                    copy.write_row((*row[:-1], g))
            gemarkungen.update(r[land] + r[gem] for r in rows
                               if r[land] is not None and r[gem] is not None)
    return gemarkungen


def union_parts(parts):
    """The union of polygons (WKB) that should form a coverage, a piece's parcels, a Flur's
    pieces or a Gemarkung's Flur maps, as a MultiPolygon, or None if no part is a valid
    geometry (invalid parts are left out, as ST_Union in kataster.flur_stueck_quelle leaves out
    invalid parcels; geometry.invalid reports them). GEOS's coverage union only cancels the
    edges neighbours share (0.11 s for the pieces of 70 Fluren of 3,000 parcels, where
    PostGIS's ST_Union took 2.0 s); where the parts do not form a coverage (overlaps, or a
    shared boundary with a vertex on one side only) GEOS refuses or returns an invalid result,
    and GEOS's general union gives the map. Both give ST_Union's outline."""
    import shapely

    geoms = shapely.from_wkb(parts)
    geoms = geoms[shapely.is_valid(geoms) & ~shapely.is_empty(geoms)]
    if not len(geoms):
        return None
    try:
        union = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        union = None
    if union is None or not union.is_valid:
        union = shapely.union_all(geoms)
    polygons = shapely.get_parts(union)
    return shapely.multipolygons(polygons[shapely.get_dimensions(polygons) == 2])


def street_ids(rows):
    """The street-name ids (Flurkennzeichen:Straße, as ``kataster.strassen_ids`` gives them) of
    (Flurkennzeichen, ids) rows; None for a row without a Flurkennzeichen."""
    ids = set()
    for flur, names in rows:
        if flur is None:
            ids.add(None)
        else:
            ids.update(names or ())
    return ids


# What a house number is drawn from: the statement's part for each table's touched objects.
HOUSE_NUMBER_SOURCES = {"gebaeude": "kataster.ax_gebaeude",
                        "lagen": "kataster.ax_lagebezeichnung", "objekte": "kataster.ax_objekt"}


def touched_house_numbers(conn, run_id, touched):
    """The ids of the presentation objects and buildings whose house number run ``run_id`` may
    have changed; ``touched``: {table: (its staging table or None, the ids the run ended)} for
    the tables of :data:`HOUSE_NUMBER_SOURCES`."""
    parts, args = {}, {"run": run_id}
    for key, table in HOUSE_NUMBER_SOURCES.items():
        stage, ended = touched.get(table, (None, ()))
        parts[key] = _q("staged_ids", stage=sql.Identifier(stage)) if stage else _q("no_ids")
        args[f"{key}_ended"] = list(ended)
    return sorted(r[0] for r in conn.execute(_q("touched_house_numbers", **parts), args))


def touched_districts(conn, run_id, stage, ended, streets=()):
    """The :class:`Districts` of the parcels run ``run_id`` delivered (in its staging table
    ``stage``, or None) or ended (``ended``: gml_ids), before and after the run, with the
    street names ``streets`` (ids) a step changed; None if one of those parcels has no complete
    Flurkennzeichen (the Flur map's row without an id gathers those: it is refilled whole). A
    parcel re-sent with the same geometry and Flur (a new area, owner or address) leaves its
    piece of the Flur map as it is, and with the same address text too, its street names."""
    delivered = _q("staged_ids", stage=sql.Identifier(stage)) if stage else _q("no_ids")
    found = conn.execute(_q("touched_districts", delivered=delivered),
                         {"ended": list(ended), "run": run_id}).fetchall()
    ids = street_ids((flur, names) for flur, _, names in found) | set(streets)
    if None in ids:
        return None
    return Districts(pieces=sorted({(flur, cell) for flur, cell, _ in found if cell is not None}),
                     streets=sorted(ids))


def _q(statement, **parts):
    return sql.SQL(QUERIES[statement]).format(**parts)
