-- Kataster data model, revision 0011: the server process of the session that owns a run.
-- A run still marked running whose session is gone was killed; each kind of run (import,
-- validate, repair) marks only its own dead runs, never a live run of another kind.
ALTER TABLE kataster.import_run ADD COLUMN server_pid int;
