"""Our pygeoapi feature provider (registered through pygeoapi's plugin mechanism by dotted path).

pygeoapi 0.21's PostgreSQL provider pages with LIMIT/OFFSET but without a stable order, so
pages can overlap and miss features, and it turns a bbox into the storage CRS by transforming
two corners only. This provider orders by the id and intersects in the CRS the bbox was given
in (with an index-friendly prefilter in the storage CRS), so a bbox query returns exactly what
``ST_Intersects`` finds in PostGIS on the same box.
"""

from __future__ import annotations

from geoalchemy2 import functions as gf
from pygeoapi.provider.sql import PostgreSQLProvider
from sqlalchemy import and_

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def _request_bbox():
    """(coordinates in x/y order, EPSG code) of the bbox the client sent, if any."""
    try:
        from flask import has_request_context, request
    except ImportError:
        return None
    if not has_request_context() or not request.args.get("bbox"):
        return None
    import pyproj

    coords = [float(v) for v in request.args["bbox"].split(",")]
    if len(coords) != 4:
        return None
    uri = request.args.get("bbox-crs") or CRS84
    crs = pyproj.CRS.from_user_input(uri)
    epsg = 4326 if uri == CRS84 else crs.to_epsg()
    if uri != CRS84 and crs.axis_info and crs.axis_info[0].direction in ("north", "south"):
        coords = [coords[1], coords[0], coords[3], coords[2]]   # lat/lon → x/y
    return coords, epsg


class KatasterPostgreSQLProvider(PostgreSQLProvider):
    def query(self, *args, sortby=None, **kwargs):
        if not sortby:
            sortby = [{"property": self.id_field, "order": "+"}]
        return super().query(*args, sortby=sortby, **kwargs)

    def _get_bbox_filter(self, bbox):
        original = _request_bbox()
        if not bbox or original is None:
            return super()._get_bbox_filter(bbox)
        coords, epsg = original
        geom = getattr(self.table_model, self.geom)
        envelope = gf.ST_MakeEnvelope(*coords, epsg)
        storage = self.storage_crs and int(str(self.storage_crs).rsplit("/", 1)[-1]) or 4326
        if epsg == storage:
            return gf.ST_Intersects(geom, envelope)
        step = 0.0005 if epsg in (4326, 4258) else 50.0
        prefilter = geom.op("&&")(gf.ST_Envelope(gf.ST_Transform(
            gf.ST_Segmentize(envelope, step), storage)))
        return and_(prefilter, gf.ST_Intersects(gf.ST_Transform(geom, epsg), envelope))
