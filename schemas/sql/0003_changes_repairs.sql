-- Kataster data model, revision 0003: which run closed a version (for change lists between
-- runs), the repair log, and ownership resolutions kept per run.

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['kataster.ax_flurstueck', 'kataster.ax_gebaeude',
        'kataster.ax_lagebezeichnung', 'kataster.ax_katalog', 'kataster.bezirk',
        'kataster.ax_nutzung', 'kataster.ax_objekt', 'kataster_privat.ax_buchungsblatt',
        'kataster_privat.ax_buchungsstelle', 'kataster_privat.ax_namensnummer',
        'kataster_privat.ax_person', 'kataster_privat.ax_anschrift', 'kataster_privat.ax_objekt']
    LOOP
        EXECUTE 'ALTER TABLE ' || t || ' ADD COLUMN closed_run_id bigint';
    END LOOP;
END $$;

-- Explicit, confirmed repairs: the delivered geometry is kept here, the repaired one is current.
CREATE TABLE kataster.repair_log (
    id                 bigserial PRIMARY KEY,
    gml_id             text NOT NULL,
    beginnt            timestamptz NOT NULL,
    finding_id         bigint,
    delivered          geometry(MultiPolygon, 25832),
    repaired           geometry(MultiPolygon, 25832),
    area_delivered     double precision,
    area_repaired      double precision,
    repaired_by        text NOT NULL DEFAULT session_user,
    repaired_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    run_id             bigint REFERENCES kataster.import_run (id)
);
CREATE INDEX repair_log_object_idx ON kataster.repair_log (gml_id, beginnt);

-- Ownership resolutions are kept per run; the view shows the newest one.
CREATE INDEX eigentum_aufgeloest_run_idx ON kataster_privat.eigentum_aufgeloest (run_id);
CREATE OR REPLACE VIEW kataster_privat.eigentum AS
SELECT e.flurstueckskennzeichen, e.buchungsblatt, e.buchungsart, e.person_gml_id,
       p.nachname_oder_firma AS name, p.vorname,
       CASE WHEN e.anteil_nenner IS NULL THEN NULL
            ELSE e.anteil_zaehler / gcd(e.anteil_zaehler, e.anteil_nenner) END AS anteil_zaehler,
       CASE WHEN e.anteil_nenner IS NULL THEN NULL
            ELSE e.anteil_nenner / gcd(e.anteil_zaehler, e.anteil_nenner) END AS anteil_nenner,
       e.rechtsgemeinschaft
FROM kataster_privat.eigentum_aufgeloest e
JOIN kataster.ax_flurstueck f ON f.gml_id = e.flurstueck_gml_id AND f.endet IS NULL
LEFT JOIN kataster_privat.ax_person p ON p.gml_id = e.person_gml_id AND p.endet IS NULL
WHERE e.run_id = (SELECT max(run_id) FROM kataster_privat.eigentum_aufgeloest);
