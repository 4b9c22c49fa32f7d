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

-- name: flur_map_clear
DELETE FROM kataster.flur_karte;

-- name: flur_map_fill
INSERT INTO kataster.flur_karte SELECT * FROM kataster.flur;

-- name: flur_map_drop_fluren
DELETE FROM kataster.flur_karte WHERE id = ANY(%(fluren)s);

-- name: flur_map_fill_fluren
-- The condition on the id reaches the parcels through their Flurkennzeichen index (0020).
INSERT INTO kataster.flur_karte SELECT * FROM kataster.flur WHERE id = ANY(%(fluren)s);

-- name: street_names_clear
DELETE FROM kataster.strassenname;

-- name: street_names_fill
INSERT INTO kataster.strassenname SELECT * FROM kataster.strassenname_quelle;

-- name: street_names_drop_fluren
DELETE FROM kataster.strassenname
WHERE land || gemarkungsnummer || lpad(flurnummer::text, 3, '0') = ANY(%(fluren)s);

-- name: street_names_fill_fluren
-- The condition is on the view's grouping columns: PostgreSQL moves it into the view, to the
-- parcels, where it meets their Flurkennzeichen index (0020).
INSERT INTO kataster.strassenname SELECT * FROM kataster.strassenname_quelle
WHERE land || gemarkungsnummer || lpad(flurnummer::text, 3, '0') = ANY(%(fluren)s);

-- name: touched_fluren
-- The Fluren of the parcels a run delivered (their gml_ids from its staging table) or ended,
-- in their versions before and after the run.
SELECT DISTINCT f.land || f.gemarkungsnummer || lpad(f.flurnummer::text, 3, '0')
FROM kataster.ax_flurstueck f
WHERE f.gml_id = ANY(ARRAY({delivered}) || %(ended)s::text[])
  AND (f.endet IS NULL OR f.closed_run_id = %(run)s);

-- name: staged_ids
SELECT gml_id FROM {stage}

-- name: no_ids
SELECT NULL::text WHERE false
