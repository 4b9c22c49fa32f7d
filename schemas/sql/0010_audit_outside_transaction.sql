-- Kataster data model, revision 0010: an owner look-up audit that no transaction can undo.
--
-- The audit record was written in the caller's transaction: BEGIN; SELECT … eigentum_auskunft
-- …; ROLLBACK; returned the owners and left no record. Now eigentum_auskunft writes it through a
-- second connection (dblink), as a role of its own that owns the audit log, and the record is
-- committed before any owner row is returned. Records form a hash chain (each holds the hash of
-- the one before), checked by `kataster audit verify`, and each hash also goes to the server
-- log. A per-Aktenzeichen limit of parcels per hour refuses bulk look-ups.
CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public;

ALTER TABLE kataster_privat.audit_log
    ADD COLUMN os_user text, ADD COLUMN bearbeiter text,
    ADD COLUMN prev_hash text, ADD COLUMN hash text;

-- The limit (NULL: none); changed by `kataster audit limit N`.
CREATE TABLE kataster_privat.audit_grenze (
    einzeln bool PRIMARY KEY DEFAULT true CHECK (einzeln),
    flurstuecke_pro_stunde int CHECK (flurstuecke_pro_stunde > 0)
);
INSERT INTO kataster_privat.audit_grenze VALUES (true, 500);

-- The text a record's hash is taken over (the verifier uses the same expression).
CREATE FUNCTION kataster_privat.audit_text(prev text, id bigint, at timestamptz, db_user text,
                                           fsk text, az text, os_user text, bearbeiter text)
RETURNS text LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$ SELECT concat_ws('|', coalesce(prev, ''), id::text,
                       to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), db_user,
                       fsk, az, coalesce(os_user, ''), coalesce(bearbeiter, '')) $$;

CREATE FUNCTION kataster_privat.audit_append(p_db_user text, p_fsk text, p_az text,
                                             p_os_user text, p_bearbeiter text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grenze int;
    n bigint;
    prev text;
    new_id bigint;
    t timestamptz := clock_timestamp();
    h text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('kataster_privat.audit_log'));
    SELECT flurstuecke_pro_stunde INTO grenze FROM kataster_privat.audit_grenze;
    IF grenze IS NOT NULL THEN
        SELECT count(*) INTO n FROM kataster_privat.audit_log
        WHERE aktenzeichen = p_az AND at > t - interval '1 hour';
        IF n >= grenze THEN
            RAISE EXCEPTION 'owner look-ups under Aktenzeichen % exceed % parcels per hour; refused', p_az, grenze
                USING ERRCODE = '54000';
        END IF;
    END IF;
    SELECT l.hash INTO prev FROM kataster_privat.audit_log l ORDER BY l.id DESC LIMIT 1;
    new_id := nextval('kataster_privat.audit_log_id_seq');
    h := encode(sha256(convert_to(kataster_privat.audit_text(prev, new_id, t, p_db_user, p_fsk,
                                                             p_az, p_os_user, p_bearbeiter),
                                  'UTF8')), 'hex');
    INSERT INTO kataster_privat.audit_log (id, at, db_user, flurstueckskennzeichen, aktenzeichen,
                                           os_user, bearbeiter, prev_hash, hash)
    VALUES (new_id, t, p_db_user, p_fsk, p_az, p_os_user, p_bearbeiter, prev, h);
    RAISE LOG 'kataster audit record % hash %', new_id, h;
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION kataster_privat.audit_append(text, text, text, text, text) FROM PUBLIC;

-- Records written before this revision join the chain (in id order).
ALTER TABLE kataster_privat.audit_log DISABLE TRIGGER USER;
DO $$
DECLARE
    r record;
    prev text;
BEGIN
    FOR r IN SELECT * FROM kataster_privat.audit_log ORDER BY id LOOP
        UPDATE kataster_privat.audit_log SET prev_hash = prev,
            hash = encode(sha256(convert_to(kataster_privat.audit_text(
                prev, r.id, r.at, r.db_user, r.flurstueckskennzeichen, r.aktenzeichen, NULL,
                NULL), 'UTF8')), 'hex')
        WHERE id = r.id RETURNING hash INTO prev;
    END LOOP;
END $$;
ALTER TABLE kataster_privat.audit_log ENABLE TRIGGER USER;

-- A role of this database owns the log and writes it; the look-up reaches it through a user
-- mapping of the function's owner (its password is visible to nobody but superusers and the
-- mapped role).
DO $$
DECLARE
    auditor text := 'kataster_audit_' || substr(md5(current_database() || clock_timestamp()::text), 1, 10);
    pw text := replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '');
    host text := host(inet_server_addr());
BEGIN
    EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT PASSWORD %L', auditor, pw);
    -- Handing objects to a role needs membership in it: held only while this block runs
    -- (the owner runs migrations as a non-superuser; kataster db up lends it CREATEROLE).
    EXECUTE format('GRANT %I TO CURRENT_USER', auditor);
    EXECUTE format('GRANT USAGE ON SCHEMA kataster_privat TO %I', auditor);
    -- A new owner needs CREATE on the schema, for a non-superuser's ALTER … OWNER only.
    EXECUTE format('GRANT CREATE ON SCHEMA kataster_privat TO %I', auditor);
    EXECUTE format('ALTER TABLE kataster_privat.audit_log OWNER TO %I', auditor);
    EXECUTE format('ALTER TABLE kataster_privat.audit_grenze OWNER TO %I', auditor);
    EXECUTE format('ALTER FUNCTION kataster_privat.audit_append(text, text, text, text, text) OWNER TO %I', auditor);
    EXECUTE format('CREATE SERVER kataster_audit_server FOREIGN DATA WRAPPER dblink_fdw OPTIONS (%s port %L, dbname %L)',
                   CASE WHEN host IS NULL THEN '' ELSE format('host %L,', host) END,
                   current_setting('port'), current_database());
    EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER kataster_audit_server OPTIONS (user %L, password %L)', auditor, pw);
    EXECUTE format('REVOKE CREATE ON SCHEMA kataster_privat FROM %I', auditor);
    -- Granted as a member of the new owner (the only moment the owner of the database is one).
    GRANT SELECT ON kataster_privat.audit_log TO CURRENT_USER;
    GRANT SELECT ON kataster_privat.audit_grenze TO CURRENT_USER;
    GRANT SELECT ON SEQUENCE kataster_privat.audit_log_id_seq TO CURRENT_USER;
    EXECUTE format('REVOKE %I FROM CURRENT_USER', auditor);
END $$;

-- The server a copied database (CREATE DATABASE … TEMPLATE) reaches must be its own.
CREATE FUNCTION kataster_privat.audit_repoint() RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('ALTER SERVER kataster_audit_server OPTIONS (SET dbname %L)', current_database());
END
$$;

CREATE OR REPLACE FUNCTION kataster_privat.eigentum_auskunft(flurstueckskennzeichen text, aktenzeichen text)
RETURNS SETOF kataster_privat.eigentum
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ziel text;
BEGIN
    IF aktenzeichen IS NULL OR btrim(aktenzeichen) = '' THEN
        RAISE EXCEPTION 'an Aktenzeichen (file reference) is required for every owner look-up'
            USING ERRCODE = '22023';
    END IF;
    SELECT option_value INTO ziel FROM pg_options_to_table(
        (SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'kataster_audit_server'))
    WHERE option_name = 'dbname';
    IF ziel IS DISTINCT FROM current_database() THEN
        RAISE EXCEPTION 'the audit connection points at database %, not at this one; an administrator runs kataster db up', ziel
            USING ERRCODE = '55000';
    END IF;
    IF NOT ('kataster_audit' = ANY (coalesce(public.dblink_get_connections(), '{}'))) THEN
        PERFORM public.dblink_connect('kataster_audit', 'kataster_audit_server');
    END IF;
    -- Committed by the second connection before any owner row is returned (format %L quotes
    -- each value as a literal: dblink takes no parameters).
    PERFORM * FROM public.dblink('kataster_audit', format(
        'SELECT kataster_privat.audit_append(%L, %L, %L, %L, %L)', session_user,
        eigentum_auskunft.flurstueckskennzeichen, btrim(eigentum_auskunft.aktenzeichen),
        current_setting('kataster.os_user', true), current_setting('kataster.bearbeiter', true)))
        AS t(id bigint);
    RETURN QUERY SELECT * FROM kataster_privat.eigentum e
                 WHERE e.flurstueckskennzeichen = eigentum_auskunft.flurstueckskennzeichen;
END
$$;
REVOKE ALL ON FUNCTION kataster_privat.eigentum_auskunft(text, text) FROM PUBLIC;
