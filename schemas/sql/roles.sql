-- Group roles for departments (run by `kataster sql roles`; idempotent).
--   kataster_leser     public views only
--   kataster_eigentum  + owner information, only through kataster_privat.eigentum_auskunft
--                        (audited); no direct access to owner tables or views
--   kataster_admin     everything, including the owner tables and the audit log (read only)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_leser') THEN
        CREATE ROLE kataster_leser NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_eigentum') THEN
        CREATE ROLE kataster_eigentum NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_admin') THEN
        CREATE ROLE kataster_admin NOLOGIN;
    END IF;
END $$;

GRANT kataster_leser TO kataster_eigentum;
GRANT kataster_leser TO kataster_admin;

REVOKE ALL ON ALL TABLES IN SCHEMA kataster FROM kataster_leser, kataster_eigentum;
REVOKE ALL ON ALL TABLES IN SCHEMA kataster_privat FROM kataster_leser, kataster_eigentum, kataster_admin;
GRANT USAGE ON SCHEMA kataster TO kataster_leser;
GRANT SELECT ON kataster.flurstueck, kataster.gebaeude, kataster.gemarkung, kataster.flur, kataster.nutzung,
                kataster.befund, kataster.gemarkung_name, kataster.gemeinde_name,
                kataster.flur_karte, kataster.gemarkung_karte, kataster.befund_punkt,
                kataster.befund_flaeche, kataster.hausnummer, kataster.strassenname,
                kataster.grenzpunkt, kataster.historische_karte
    TO kataster_leser;
GRANT EXECUTE ON FUNCTION kataster.flurstueck_am(timestamptz) TO kataster_leser;
-- The schema revision, so that the command line sees the database is current and runs no DDL.
GRANT SELECT ON kataster.alembic_version TO kataster_leser;
-- The bookkeeping the reading commands show (runs, findings list, NBA portions): no owner data.
GRANT SELECT ON kataster.import_run, kataster.import_file, kataster.finding, kataster.nba_portion
    TO kataster_leser;

GRANT USAGE ON SCHEMA kataster_privat TO kataster_eigentum, kataster_admin;
REVOKE ALL ON FUNCTION kataster_privat.eigentum_auskunft(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kataster_privat.eigentum_auskunft(text, text)
    TO kataster_eigentum, kataster_admin;

GRANT SELECT ON ALL TABLES IN SCHEMA kataster TO kataster_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA kataster_privat TO kataster_admin;
