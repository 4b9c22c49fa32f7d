-- The ownership history grows with the change: the run records the resolved owners
-- (ownership_resolved, every current parcel) only of the parcels whose owners differ from
-- their current resolution, and a marker row (entfallen) for each parcel whose owners are
-- gone (the parcel ended, or it has no booking any more). A parcel's owners are compared as
-- the sorted list of its rows. Scoped to a run's change, only the parcels in ownership_scope
-- are compared (the resolution holds only those).
WITH neu AS (
    SELECT flurstueck_gml_id AS g, array_agg(r ORDER BY r) AS s
    FROM (SELECT flurstueck_gml_id,
                 row(flurstueckskennzeichen, buchungsblatt, buchungsart, person_gml_id,
                     anteil_zaehler, anteil_nenner, rechtsgemeinschaft)::text AS r
          FROM ownership_resolved) x
    GROUP BY 1),
alt AS (
    SELECT flurstueck_gml_id AS g, min(flurstueckskennzeichen) AS fsk, array_agg(r ORDER BY r) AS s
    FROM (SELECT flurstueck_gml_id, flurstueckskennzeichen,
                 row(flurstueckskennzeichen, buchungsblatt, buchungsart, person_gml_id,
                     anteil_zaehler, anteil_nenner, rechtsgemeinschaft)::text AS r
          FROM kataster_privat.eigentum_aktuell {in_scope}) x
    GROUP BY 1),
geaendert AS MATERIALIZED (
    SELECT coalesce(neu.g, alt.g) AS g, alt.fsk, neu.g IS NULL AS entfallen
    FROM neu FULL JOIN alt USING (g)
    WHERE neu.s IS DISTINCT FROM alt.s),
owners AS (
    INSERT INTO kataster_privat.eigentum_aufgeloest (flurstueck_gml_id, flurstueckskennzeichen,
        buchungsblatt, buchungsart, person_gml_id, anteil_zaehler, anteil_nenner,
        rechtsgemeinschaft, run_id)
    SELECT o.flurstueck_gml_id, o.flurstueckskennzeichen, o.buchungsblatt, o.buchungsart,
           o.person_gml_id, o.anteil_zaehler, o.anteil_nenner, o.rechtsgemeinschaft, %(run)s
    FROM ownership_resolved o JOIN geaendert c ON c.g = o.flurstueck_gml_id AND NOT c.entfallen)
INSERT INTO kataster_privat.eigentum_aufgeloest (flurstueck_gml_id, flurstueckskennzeichen,
    run_id, entfallen)
SELECT g, fsk, %(run)s, true FROM geaendert WHERE entfallen
