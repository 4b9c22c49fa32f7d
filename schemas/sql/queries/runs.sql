-- The run lifecycle and the import's records (pipeline/runs.py).

-- name: lock_holder
SELECT a.pid, a.client_addr::text, a.backend_start, a.application_name
FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND l.granted
  AND ((l.classid::bigint << 32) | l.objid::bigint) = %(lock)s;

-- name: try_lock
SELECT pg_try_advisory_lock(%(lock)s);

-- name: try_lock_shared
SELECT pg_try_advisory_lock_shared(%(lock)s);

-- name: name_session
SELECT set_config('application_name', %(name)s, false);

-- name: check_client
SET client_connection_check_interval = '2s';

-- name: durable_commit
SET LOCAL synchronous_commit = on;

-- name: mark_dead_runs
UPDATE kataster.import_run r
SET status = 'aborted', finished = now(), error = %(error)s
WHERE status = 'running' AND kind = %(kind)s
  AND (r.server_pid IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                      WHERE a.pid = r.server_pid AND a.pid <> pg_backend_pid()));

-- name: record
INSERT INTO kataster.import_run (os_user, kind, importer, options, transformation, server_pid)
VALUES (%(os_user)s, %(kind)s, %(importer)s, %(options)s, %(transformation)s, pg_backend_pid())
RETURNING id, started;

-- name: finish
UPDATE kataster.import_run
SET status = %(status)s, finished = clock_timestamp(),
    counts = coalesce(%(counts)s, counts), findings = coalesce(%(findings)s, findings),
    error = %(error)s, transformation = coalesce(%(transformation)s, transformation)
WHERE id = %(run)s;

-- name: already_imported
SELECT f.sha256, max(r.id)
FROM kataster.import_file f JOIN kataster.import_run r ON r.id = f.run_id
WHERE r.status = 'committed' AND r.kind = 'import' AND f.status = 'imported'
  AND f.sha256 = ANY(%(sha256s)s)
GROUP BY f.sha256;

-- name: record_file
INSERT INTO kataster.import_file (run_id, path, size, sha256, status)
VALUES (%(run)s, %(path)s, %(size)s, %(sha256)s, %(status)s);

-- name: analyze
ANALYZE {table};

-- name: owner_rows_of_run
SELECT count(DISTINCT flurstueck_gml_id) FROM kataster_privat.eigentum_aufgeloest
WHERE run_id = %(run)s;

-- name: list
SELECT r.id, r.started, r.finished, r.status, r.kind, r.importer, r.os_user, r.counts,
       r.findings, r.error, r.transformation,
       coalesce((SELECT array_agg(f.path ORDER BY f.path) FROM kataster.import_file f
                 WHERE f.run_id = r.id), '{}') AS files
FROM kataster.import_run r
ORDER BY r.id DESC
LIMIT %(limit)s;
