-- Kataster data model, revision 0004: audited owner look-ups and an append-only audit log.

-- Owner information for kataster_eigentum only through this function: it refuses an empty
-- Aktenzeichen, writes the audit record, then returns the owners of one parcel.
CREATE FUNCTION kataster_privat.eigentum_auskunft(flurstueckskennzeichen text, aktenzeichen text)
RETURNS SETOF kataster_privat.eigentum
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF aktenzeichen IS NULL OR btrim(aktenzeichen) = '' THEN
        RAISE EXCEPTION 'an Aktenzeichen (file reference) is required for every owner look-up'
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO kataster_privat.audit_log (db_user, flurstueckskennzeichen, aktenzeichen)
    VALUES (session_user, eigentum_auskunft.flurstueckskennzeichen, btrim(eigentum_auskunft.aktenzeichen));
    RETURN QUERY SELECT * FROM kataster_privat.eigentum e
                 WHERE e.flurstueckskennzeichen = eigentum_auskunft.flurstueckskennzeichen;
END
$$;
REVOKE ALL ON FUNCTION kataster_privat.eigentum_auskunft(text, text) FROM PUBLIC;

-- The audit log is append-only for everyone: no update, delete or truncate.
CREATE FUNCTION kataster_privat.audit_log_unveraenderlich() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is not allowed', TG_OP
        USING ERRCODE = '42501';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON kataster_privat.audit_log
    FOR EACH ROW EXECUTE FUNCTION kataster_privat.audit_log_unveraenderlich();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON kataster_privat.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION kataster_privat.audit_log_unveraenderlich();
REVOKE ALL ON SCHEMA kataster_privat FROM PUBLIC;

-- Parcels at a point in time are public data: the function reads the tables with its owner's
-- rights, so kataster_leser needs no access to the tables themselves.
ALTER FUNCTION kataster.flurstueck_am(timestamptz) SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp;
