"""Our pygeoapi feature provider (registered through pygeoapi's plugin mechanism by dotted path).

pygeoapi 0.21's PostgreSQL provider pages with LIMIT/OFFSET but without a stable order, so
pages can overlap and miss features, and it turns a bbox into the storage CRS by transforming
two corners only. This provider orders by the id and intersects in the CRS the bbox was given
in (with an index-friendly prefilter in the storage CRS), so a bbox query returns exactly what
``ST_Intersects`` finds in PostGIS on the same box.
"""

from __future__ import annotations

import re

from geoalchemy2 import functions as gf
from pygeoapi.provider.sql import PostgreSQLProvider
from sqlalchemy import and_, false, func, or_

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


# Where data can be: Germany with a margin (geographic degrees, and EPSG:25832 metres). A
# bbox is clipped to it before it is transformed, so a box over the whole world costs no more
# than one over the city.
DATA_EXTENT = {4326: (5.0, 46.5, 16.0, 56.0), 4258: (5.0, 46.5, 16.0, 56.0),
               25832: (240_000.0, 5_190_000.0, 960_000.0, 6_150_000.0)}


def _invalid(message):
    from pygeoapi.provider.base import ProviderInvalidQueryError

    return ProviderInvalidQueryError(user_msg=message)


def _request_bbox():
    """(coordinates in x/y order, EPSG code) of the bbox the client sent, if any.

    Raises a 400 (ProviderInvalidQueryError) for a bbox that is not four finite numbers with
    min < max, or that leaves the range of longitude and latitude."""
    import math

    try:
        from flask import has_request_context, request
    except ImportError:
        return None
    if not has_request_context() or not request.args.get("bbox"):
        return None
    import pyproj

    try:
        coords = [float(v) for v in request.args["bbox"].split(",")]
    except ValueError:
        raise _invalid("bbox: four numbers minx,miny,maxx,maxy expected") from None
    if len(coords) != 4 or not all(math.isfinite(c) for c in coords):
        raise _invalid("bbox: four finite numbers minx,miny,maxx,maxy expected")
    uri = request.args.get("bbox-crs") or CRS84
    try:
        crs = pyproj.CRS.from_user_input(uri)
    except pyproj.exceptions.CRSError:
        raise _invalid(f"bbox-crs: unknown coordinate system {uri!r}") from None
    epsg = 4326 if uri == CRS84 else crs.to_epsg()
    if uri != CRS84 and crs.axis_info and crs.axis_info[0].direction in ("north", "south"):
        coords = [coords[1], coords[0], coords[3], coords[2]]   # lat/lon → x/y
    if coords[0] > coords[2] or coords[1] > coords[3]:
        raise _invalid("bbox: min must not exceed max")
    if crs.is_geographic and (min(coords[0], coords[2]) < -180 or max(coords) > 180 or
                              min(coords[1], coords[3]) < -90 or max(coords[1], coords[3]) > 90):
        raise _invalid("bbox: longitude must lie within ±180°, latitude within ±90°")
    return coords, epsg


# Query parameters of OGC API Features (and pygeoapi) besides the collection's properties.
STANDARD_PARAMETERS = {"f", "lang", "bbox", "bbox-crs", "limit", "offset", "datetime", "sortby",
                       "properties", "skipGeometry", "crs", "q", "filter", "filter-lang",
                       "filter-crs", "resulttype", "startindex"}
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def _check_parameters(fields, has_time=False):
    """400 for an unknown query parameter (it filtered nothing) or a malformed datetime."""
    try:
        from flask import has_request_context, request
    except ImportError:
        return
    if not has_request_context():
        return
    unknown = sorted(set(request.args) - STANDARD_PARAMETERS - set(fields))
    if unknown:
        raise _invalid(f"unknown parameter {', '.join(unknown)}; properties of this collection: "
                       f"{', '.join(sorted(fields))}")
    value = request.args.get("datetime")
    if value is not None:
        parts = value.split("/")
        if len(parts) > 2 or not all(p in ("..", "") or _INSTANT.match(p) for p in parts):
            raise _invalid("datetime: an RFC 3339 instant or interval expected "
                           "(2026-01-15, 2026-01-15T08:00:00Z, 2026-01-01/..)")
        if not has_time:
            raise _invalid("datetime: this collection has no time property (it shows the "
                           "current state)")


PARTIAL = {"lage"}
CASELESS = {"gemarkung"}


class KatasterPostgreSQLProvider(PostgreSQLProvider):
    def query(self, *args, sortby=None, **kwargs):
        # Malformed input is a 400 before any database work.
        _check_parameters(list(self.fields) + [self.id_field], bool(self.time_field))
        _request_bbox()
        if not sortby:
            sortby = [{"property": self.id_field, "order": "+"}]
        return super().query(*args, sortby=sortby, **kwargs)

    def _sqlalchemy_to_feature(self, item, crs_transform_out=None):
        """A feature whose properties come in the configured order (the style source's), the
        same in every answer (they followed the order SQLAlchemy loaded them in)."""
        feature = super()._sqlalchemy_to_feature(item, crs_transform_out)
        props = feature["properties"]
        order = list(self.properties or ()) + sorted(set(props) - set(self.properties or ()))
        feature["properties"] = {k: props[k] for k in order if k in props}
        return feature

    def _get_property_filters(self, properties):
        """What people type: an address (``lage``) matches in part and in any case, a
        Gemarkung name in any case, an empty Nenner means "no Nenner"; everything else
        matches exactly."""
        if not properties:
            return True
        group = []
        for name, value in properties:
            column = getattr(self.table_model, name)
            if name in PARTIAL:
                pattern = re.sub(r"([\\%_])", r"\\\1", str(value))
                group.append(column.ilike(f"%{pattern}%", escape="\\"))
            elif name in CASELESS:
                group.append(func.lower(column) == str(value).lower())
            elif name == "nenner" and value == "":
                group.append(or_(column.is_(None), column == ""))
            else:
                group.append(column == value)
        return and_(*group)

    def _get_bbox_filter(self, bbox):
        original = _request_bbox()
        if not bbox or original is None:
            return super()._get_bbox_filter(bbox)
        coords, epsg = original
        geom = getattr(self.table_model, self.geom)
        if epsg in DATA_EXTENT:
            ex = DATA_EXTENT[epsg]
            coords = [max(coords[0], ex[0]), max(coords[1], ex[1]),
                      min(coords[2], ex[2]), min(coords[3], ex[3])]
            if coords[0] > coords[2] or coords[1] > coords[3]:
                return false()                         # nowhere near the data
        envelope = gf.ST_MakeEnvelope(*coords, epsg)
        storage = self.storage_crs and int(str(self.storage_crs).rsplit("/", 1)[-1]) or 4326
        if epsg == storage:
            return gf.ST_Intersects(geom, envelope)
        # The prefilter (storage CRS in metres): the box's outline densified to 64 points an
        # edge, transformed, its envelope widened by one step, more than the curved image of
        # an edge strays from its chords (a degree is at most 111.7 km; a projected step
        # counts twice). A fixed step of 0.0005° made a box over Germany 80,000 points that
        # PostgreSQL transformed while planning each of the page's two statements: 90 ms each.
        step = max(coords[2] - coords[0], coords[3] - coords[1]) / 64 or 1e-6
        margin = step * 111_700 if epsg in (4326, 4258) else step * 2
        prefilter = geom.op("&&")(gf.ST_Expand(gf.ST_Envelope(gf.ST_Transform(
            gf.ST_Segmentize(envelope, step), storage)), margin))
        return and_(prefilter, gf.ST_Intersects(gf.ST_Transform(geom, epsg), envelope))
