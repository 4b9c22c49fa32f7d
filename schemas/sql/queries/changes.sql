-- Change lists between the states after two runs (pipeline/changes.py); the owner changes are
-- schemas/sql/exports/eigentum_aenderungen.sql.

-- name: parcel_changes
-- A parcel version belongs to the state after run r if r or an earlier run wrote it and no run
-- up to r closed it. Only parcels with a version that a run after a and up to b wrote or closed
-- can differ (found through the run indexes, 0023; a < b).
WITH candidates AS (
    SELECT gml_id FROM kataster.ax_flurstueck WHERE run_id > %(a)s AND run_id <= %(b)s
    UNION
    SELECT gml_id FROM kataster.ax_flurstueck
    WHERE closed_run_id > %(a)s AND closed_run_id <= %(b)s),
a AS (
    SELECT gml_id, flurstueckskennzeichen, amtliche_flaeche, geom
    FROM kataster.ax_flurstueck
    WHERE gml_id IN (SELECT gml_id FROM candidates) AND run_id <= %(a)s
      AND ((closed_run_id IS NULL AND endet IS NULL) OR closed_run_id > %(a)s)),
b AS (
    SELECT gml_id, flurstueckskennzeichen, amtliche_flaeche, geom
    FROM kataster.ax_flurstueck
    WHERE gml_id IN (SELECT gml_id FROM candidates) AND run_id <= %(b)s
      AND ((closed_run_id IS NULL AND endet IS NULL) OR closed_run_id > %(b)s))
SELECT coalesce(b.gml_id, a.gml_id), coalesce(b.flurstueckskennzeichen, a.flurstueckskennzeichen),
       k.art, ST_AsBinary(coalesce(b.geom, a.geom)), a.amtliche_flaeche, b.amtliche_flaeche
FROM a FULL JOIN b ON a.gml_id = b.gml_id
CROSS JOIN LATERAL (VALUES
    (CASE WHEN a.gml_id IS NULL THEN 'hinzugefuegt' END),
    (CASE WHEN b.gml_id IS NULL THEN 'entfernt' END),
    (CASE WHEN a.gml_id IS NOT NULL AND b.gml_id IS NOT NULL
          AND NOT ST_OrderingEquals(a.geom, b.geom) THEN 'geometrie' END),
    (CASE WHEN a.gml_id IS NOT NULL AND b.gml_id IS NOT NULL
          AND a.amtliche_flaeche IS DISTINCT FROM b.amtliche_flaeche THEN 'flaeche' END)) k(art)
WHERE k.art IS NOT NULL
ORDER BY 3, 2;

-- name: known_runs
SELECT id FROM kataster.import_run WHERE id = ANY(%(runs)s);

-- name: previous_import
SELECT max(id) FROM kataster.import_run
WHERE id < %(run)s AND status = 'committed' AND kind = 'import';
