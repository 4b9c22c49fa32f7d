-- Geometry repairs proposed for open geometry.invalid findings (pipeline/repair.py).

-- name: candidates
SELECT fi.id, f.gml_id, f.beginnt, f.flurstueckskennzeichen, ST_AsBinary(f.geom)
FROM kataster.finding fi
JOIN kataster.ax_flurstueck f ON f.gml_id = fi.object_id AND f.endet IS NULL
WHERE fi.rule = 'geometry.invalid' AND fi.status = 'open'
  AND (%(ids)s::bigint[] IS NULL OR fi.id = ANY(%(ids)s))
ORDER BY fi.id;

-- name: parcel_count
SELECT count(*), count(DISTINCT flurstueckskennzeichen)
FROM kataster.ax_flurstueck WHERE endet IS NULL;

-- name: log
INSERT INTO kataster.repair_log
    (gml_id, beginnt, finding_id, delivered, repaired, area_delivered, area_repaired, run_id)
VALUES (%(gml_id)s, %(beginnt)s, %(finding)s, ST_GeomFromWKB(%(delivered)s, 25832),
        ST_GeomFromWKB(%(repaired)s, 25832), %(area_delivered)s, %(area_repaired)s, %(run)s)
RETURNING id;

-- name: replace_geometry
UPDATE kataster.ax_flurstueck SET geom = ST_GeomFromWKB(%(repaired)s, 25832)
WHERE gml_id = %(gml_id)s AND beginnt = %(beginnt)s;
