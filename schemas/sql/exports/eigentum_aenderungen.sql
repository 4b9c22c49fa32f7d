-- Parcels whose owners differ between the state after run %(a)s and after run %(b)s. Only
-- parcels with rows recorded in between can differ (a run records changed parcels only); each
-- one's owners at a state are the rows of its newest run up to it, none where those mark them
-- as gone. Owners compare as the sorted list of "person:buchungsart:share"; parcels without
-- owners on one side are added or removed parcels, listed as such.
WITH kandidat AS (
    SELECT DISTINCT flurstueck_gml_id AS g FROM kataster_privat.eigentum_aufgeloest
    WHERE run_id > %(a)s AND run_id <= %(b)s),
e AS (
    SELECT e.run_id, e.flurstueck_gml_id AS g, e.entfallen,
           coalesce(e.person_gml_id, '') || ':' || coalesce(e.buchungsart::text, '') || ':'
           || coalesce(e.anteil_zaehler::text, '') || '/' || coalesce(e.anteil_nenner::text, '')
           AS owner
    FROM kataster_privat.eigentum_aufgeloest e JOIN kandidat k ON k.g = e.flurstueck_gml_id
    WHERE e.run_id <= %(b)s),
stand AS (
    SELECT g, max(run_id) FILTER (WHERE run_id <= %(a)s) AS ra, max(run_id) AS rb
    FROM e GROUP BY g),
ea AS (SELECT e.g, array_agg(e.owner ORDER BY e.owner) AS o
       FROM e JOIN stand s ON s.g = e.g AND e.run_id = s.ra WHERE NOT e.entfallen GROUP BY e.g),
eb AS (SELECT e.g, array_agg(e.owner ORDER BY e.owner) AS o
       FROM e JOIN stand s ON s.g = e.g AND e.run_id = s.rb WHERE NOT e.entfallen GROUP BY e.g)
SELECT f.gml_id, f.flurstueckskennzeichen, 'eigentum', ST_AsBinary(f.geom), NULL::float8,
       NULL::float8
FROM ea JOIN eb USING (g) JOIN kataster.ax_flurstueck f ON f.gml_id = ea.g AND f.endet IS NULL
WHERE ea.o IS DISTINCT FROM eb.o
