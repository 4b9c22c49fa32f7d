-- Ownership history that grows with the change (daily updates). Until now every NAS run wrote
-- the resolved owners of the whole city into kataster_privat.eigentum_aufgeloest and the view
-- read the newest run. Now a run writes only the parcels whose owners changed, and a marker
-- row (entfallen) for a parcel whose owners are gone; a parcel's current owners are the rows of
-- its newest run, unless they are a marker.
ALTER TABLE kataster_privat.eigentum_aufgeloest
    ADD COLUMN entfallen boolean NOT NULL DEFAULT false;

-- Convert the full copies of earlier runs without losing history: a run keeps a parcel's
-- rows where they differ from the run before it, and gains a marker for each parcel that the
-- run before it had and it has not.
CREATE TEMPORARY TABLE eigentum_je_lauf ON COMMIT DROP AS
SELECT run_id, flurstueck_gml_id AS g, min(flurstueckskennzeichen) AS fsk,
       array_agg(r ORDER BY r) AS s
FROM (SELECT run_id, flurstueck_gml_id, flurstueckskennzeichen,
             row(flurstueckskennzeichen, buchungsblatt, buchungsart, person_gml_id,
                 anteil_zaehler, anteil_nenner, rechtsgemeinschaft)::text AS r
      FROM kataster_privat.eigentum_aufgeloest) x
GROUP BY 1, 2;
CREATE INDEX ON eigentum_je_lauf (run_id, g);
CREATE TEMPORARY TABLE eigentum_laeufe ON COMMIT DROP AS
SELECT run_id, lag(run_id) OVER (ORDER BY run_id) AS vorher
FROM (SELECT DISTINCT run_id FROM eigentum_je_lauf) r;
ANALYZE eigentum_je_lauf;
ANALYZE eigentum_laeufe;

DELETE FROM kataster_privat.eigentum_aufgeloest e
USING eigentum_laeufe l, eigentum_je_lauf jetzt, eigentum_je_lauf vorher
WHERE l.run_id = e.run_id
  AND jetzt.run_id = e.run_id AND jetzt.g = e.flurstueck_gml_id
  AND vorher.run_id = l.vorher AND vorher.g = jetzt.g AND vorher.s = jetzt.s;

INSERT INTO kataster_privat.eigentum_aufgeloest (flurstueck_gml_id, flurstueckskennzeichen,
    run_id, entfallen)
SELECT vorher.g, vorher.fsk, l.run_id, true
FROM eigentum_laeufe l JOIN eigentum_je_lauf vorher ON vorher.run_id = l.vorher
WHERE NOT EXISTS (SELECT 1 FROM eigentum_je_lauf jetzt
                  WHERE jetzt.run_id = l.run_id AND jetzt.g = vorher.g);

-- A parcel's newest rows, found through this index for one parcel and by an anti-join for all.
CREATE INDEX eigentum_aufgeloest_parcel_run_idx
    ON kataster_privat.eigentum_aufgeloest (flurstueck_gml_id, run_id);

-- The current resolution: per parcel the rows of its newest run, unless they mark its owners
-- as gone. The owner look-up, the owner rules and the change lists read the same owners as
-- before.
CREATE VIEW kataster_privat.eigentum_aktuell AS
SELECT e.flurstueck_gml_id, e.flurstueckskennzeichen, e.buchungsblatt, e.buchungsart,
       e.person_gml_id, e.anteil_zaehler, e.anteil_nenner, e.rechtsgemeinschaft, e.run_id
FROM kataster_privat.eigentum_aufgeloest e
WHERE NOT e.entfallen
  AND NOT EXISTS (SELECT 1 FROM kataster_privat.eigentum_aufgeloest n
                  WHERE n.flurstueck_gml_id = e.flurstueck_gml_id AND n.run_id > e.run_id);

CREATE OR REPLACE VIEW kataster_privat.eigentum AS
SELECT e.flurstueckskennzeichen, e.buchungsblatt, e.buchungsart, e.person_gml_id,
       p.nachname_oder_firma AS name, p.vorname,
       CASE WHEN e.anteil_nenner IS NULL THEN NULL
            ELSE e.anteil_zaehler / gcd(e.anteil_zaehler, e.anteil_nenner) END AS anteil_zaehler,
       CASE WHEN e.anteil_nenner IS NULL THEN NULL
            ELSE e.anteil_nenner / gcd(e.anteil_zaehler, e.anteil_nenner) END AS anteil_nenner,
       e.rechtsgemeinschaft
FROM kataster_privat.eigentum_aktuell e
JOIN kataster.ax_flurstueck f ON f.gml_id = e.flurstueck_gml_id AND f.endet IS NULL
LEFT JOIN kataster_privat.ax_person p ON p.gml_id = e.person_gml_id AND p.endet IS NULL;
