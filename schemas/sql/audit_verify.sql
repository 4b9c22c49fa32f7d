-- `kataster audit verify`: every way the owner look-up audit can have been changed, one row each.
-- A record changed (its hash no longer fits its content), the chain broken (a record's
-- prev_hash is not the hash of the record before it: one removed or inserted in between),
-- records missing (ids are issued without gaps), the newest records removed (the sequence has
-- issued more ids than there are records).
WITH l AS (
    SELECT id, hash, prev_hash, lag(hash) OVER (ORDER BY id) AS before,
           lag(id) OVER (ORDER BY id) AS id_before,
           encode(sha256(convert_to(kataster_privat.audit_text(
               prev_hash, id, at, db_user, flurstueckskennzeichen, aktenzeichen, os_user,
               bearbeiter), 'UTF8')), 'hex') AS recomputed
    FROM kataster_privat.audit_log
)
SELECT id, 'record ' || id || ' was changed after it was written' FROM l
WHERE hash IS DISTINCT FROM recomputed
UNION ALL
SELECT id, 'record ' || id || ' does not follow the record before it (chain broken)' FROM l
WHERE prev_hash IS DISTINCT FROM before
UNION ALL
SELECT id, 'records ' || coalesce(id_before + 1, 1) || '–' || (id - 1) || ' are missing' FROM l
WHERE id <> coalesce(id_before, 0) + 1
UNION ALL
SELECT s.last_value, 'records after ' || coalesce(m.top, 0) || ' up to ' || s.last_value
                     || ' are missing (the newest were removed)'
FROM kataster_privat.audit_log_id_seq s, (SELECT max(id) AS top FROM kataster_privat.audit_log) m
WHERE s.is_called AND s.last_value > coalesce(m.top, 0)
ORDER BY 1;
