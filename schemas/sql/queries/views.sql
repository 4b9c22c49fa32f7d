-- Reading the public views (pipeline/views.py). {source} is a view or kataster.flurstueck_am,
-- {filters} the fragments below joined with AND, {order} the layer's key columns.

-- name: read
SELECT *, ST_AsBinary(geom) AS _wkb FROM {source} AS v
WHERE {filters}
ORDER BY {order};

-- name: filter_gemarkung
gemarkungsnummer = %(gemarkung)s

-- name: filter_flur
flurnummer = %(flur)s

-- name: filter_bbox
ST_Intersects(geom, ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 25832))

-- name: parcels_at
kataster.flurstueck_am(%(at)s)

-- name: gemarkungen
SELECT gemarkungsnummer, gemarkung FROM kataster.gemarkung ORDER BY 1;

-- name: fluren
SELECT DISTINCT flurnummer FROM kataster.flur WHERE gemarkungsnummer = %(gemarkung)s ORDER BY 1;

-- name: refresh
REFRESH MATERIALIZED VIEW {view};
