-- The current sheets meeting an area, earliest year first.
SELECT id, pfad, jahr FROM kataster.historische_karte
WHERE ST_Intersects(geom, ST_GeomFromWKB(%(area)s, 25832))
  AND (%(jahr)s::int IS NULL OR jahr = %(jahr)s::int)
ORDER BY jahr NULLS FIRST, id
