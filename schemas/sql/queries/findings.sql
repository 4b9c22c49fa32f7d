-- Findings: upsert by stable key, marked fixed, looked up, listed, status changes and the
-- owner-data permission (pipeline/validation/findings.py). {schema} is kataster (public
-- findings) or kataster_privat (owner findings); optional filters are NULL when not given.

-- name: upsert
INSERT INTO {schema}.finding
    (key, rule, severity, object_id, related, message, geom, first_run_id, run_id)
VALUES (%(key)s, %(rule)s, %(severity)s, %(object_id)s, %(related)s, %(message)s,
        ST_SetSRID(%(geom)s::geometry, 25832), %(run)s, %(run)s)
ON CONFLICT (key) DO UPDATE
SET run_id = EXCLUDED.run_id, message = EXCLUDED.message, severity = EXCLUDED.severity,
    status = CASE WHEN finding.status = 'fixed' THEN 'open' ELSE finding.status END;

-- name: mark_fixed
UPDATE {schema}.finding
SET status = 'fixed', status_by = 'kataster validate', status_at = now(),
    status_reason = 'not found again in run ' || %(run)s
WHERE rule = ANY(%(rules)s) AND status <> 'fixed' AND coalesce(run_id, -1) <> %(run)s
  AND (%(gemarkung)s::text IS NULL
       OR object_id IN (SELECT gml_id FROM kataster.ax_flurstueck
                        WHERE gemarkungsnummer = %(gemarkung)s));

-- name: mark_fixed_keys
-- The findings of these keys that run %(run)s did not find again (a scoped validation decides
-- which: pipeline/validation/scope.py).
UPDATE {schema}.finding
SET status = 'fixed', status_by = 'kataster validate', status_at = now(),
    status_reason = 'not found again in run ' || %(run)s
WHERE key = ANY(%(keys)s) AND status <> 'fixed' AND coalesce(run_id, -1) <> %(run)s;

-- name: ids_by_key
SELECT key, id, status FROM {schema}.finding WHERE key = ANY(%(keys)s);

-- name: count
SELECT count(*) FROM kataster.finding
WHERE (%(rule)s::text IS NULL OR rule = %(rule)s)
  AND (%(status)s::text[] IS NULL OR status = ANY(%(status)s));

-- name: list
SELECT id, rule, severity, status, object_id AS object, message, status_by,
       status_reason AS reason
FROM kataster.finding
WHERE (%(rule)s::text IS NULL OR rule = %(rule)s)
  AND (%(status)s::text[] IS NULL OR status = ANY(%(status)s))
ORDER BY id
LIMIT %(limit)s;

-- name: known_ids
SELECT id FROM kataster.finding WHERE id = ANY(%(ids)s);

-- name: set_status
UPDATE kataster.finding
SET status = %(new)s, status_by = %(by)s, status_at = now(), status_reason = %(reason)s
WHERE (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
  AND (%(rule)s::text IS NULL OR rule = %(rule)s)
  AND (%(status)s::text[] IS NULL OR status = ANY(%(status)s));

-- name: may_see_owners
SELECT rolsuper
       OR EXISTS (SELECT 1 FROM pg_roles g
                  WHERE g.rolname IN ('kataster_eigentum', 'kataster_admin')
                    AND pg_has_role(current_user, g.oid, 'MEMBER'))
       OR pg_has_role(current_user, (SELECT nspowner FROM pg_namespace
                                     WHERE nspname = 'kataster_privat'), 'MEMBER')
FROM pg_roles WHERE rolname = current_user;
