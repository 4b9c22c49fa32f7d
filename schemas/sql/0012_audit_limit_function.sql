-- Kataster data model, revision 0012: the look-up limit is set through a function of the
-- audit's own role.
--
-- `kataster audit limit` updated kataster_privat.audit_grenze directly, which only a superuser
-- could: the table belongs to the audit role, and the owner of the database is no longer a
-- superuser. The owner may set the limit, and nothing else of the audit's.
DO $$
DECLARE
    auditor text := (SELECT tableowner FROM pg_tables
                     WHERE schemaname = 'kataster_privat' AND tablename = 'audit_log');
BEGIN
    CREATE FUNCTION kataster_privat.audit_setze_grenze(flurstuecke_pro_stunde int)
    RETURNS void LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'UPDATE kataster_privat.audit_grenze SET flurstuecke_pro_stunde = $1';
    REVOKE ALL ON FUNCTION kataster_privat.audit_setze_grenze(int) FROM PUBLIC;
    IF auditor <> current_user THEN
        -- As in revision 0010: membership and CREATE only while ownership moves; the grant
        -- follows the move (a change of owner turns the old owner's grants into the new one's).
        EXECUTE format('GRANT %I TO CURRENT_USER', auditor);
        EXECUTE format('GRANT CREATE ON SCHEMA kataster_privat TO %I', auditor);
        EXECUTE format('ALTER FUNCTION kataster_privat.audit_setze_grenze(int) OWNER TO %I', auditor);
        EXECUTE format('REVOKE CREATE ON SCHEMA kataster_privat FROM %I', auditor);
        GRANT EXECUTE ON FUNCTION kataster_privat.audit_setze_grenze(int) TO CURRENT_USER;
        EXECUTE format('REVOKE %I FROM CURRENT_USER', auditor);
    ELSE
        GRANT EXECUTE ON FUNCTION kataster_privat.audit_setze_grenze(int) TO CURRENT_USER;
    END IF;
END $$;
