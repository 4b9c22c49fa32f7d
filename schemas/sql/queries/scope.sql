-- The scope of a validation after an import (pipeline/validation/scope.py).

-- name: parcel_extents
-- The extents of every stored version of the parcels among %(ids)s (a version without a
-- geometry gives NULLs).
SELECT gml_id, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)
FROM kataster.ax_flurstueck
WHERE gml_id = ANY(%(ids)s);

-- name: candidates
-- Stored findings of %(rules)s, not fixed, that may lie inside the scope: a generous first cut
-- (boxes grown by a metre) of what Scope.contains decides exactly.
SELECT key, rule, object_id, related, ST_AsBinary(geom)
FROM {schema}.finding
WHERE rule = ANY(%(rules)s) AND status <> 'fixed'
  AND (object_id = ANY(%(ids)s) OR related && %(ids)s::text[]
       OR (rule = ANY(%(per_parcel)s) AND object_id = ANY(%(near)s))
       OR (rule = ANY(%(owner_rules)s) AND object_id = ANY(%(owner)s))
       OR (rule = ANY(%(spatial)s) AND geom && ANY(ARRAY(
              SELECT ST_MakeEnvelope(x0 - 1, y0 - 1, x1 + 1, y1 + 1, 25832)
              FROM unnest(%(x0)s::float8[], %(y0)s::float8[], %(x1)s::float8[],
                          %(y1)s::float8[]) AS b(x0, y0, x1, y1)))));

-- name: gaps_near
-- Extents of the open gap findings meeting the boxes: a scoped run reads the parcels around
-- them, so that a hole wider than its margin is still seen closed.
SELECT DISTINCT ST_XMin(f.geom), ST_YMin(f.geom), ST_XMax(f.geom), ST_YMax(f.geom)
FROM unnest(%(x0)s::float8[], %(y0)s::float8[], %(x1)s::float8[], %(y1)s::float8[])
     AS b(x0, y0, x1, y1)
JOIN kataster.finding f ON f.geom && ST_MakeEnvelope(b.x0, b.y0, b.x1, b.y1, 25832)
WHERE f.rule = 'coverage.gap' AND f.status <> 'fixed';
