-- A run's kind in its own column. Validations and repairs were recorded with their kind in the
-- importer column, so that every reader of import runs had to filter them out by name; now the
-- kind says what a run was (import, validate, repair, or rebuild: the derived data recomputed
-- whole) and the importer is set for imports only.
ALTER TABLE kataster.import_run
    ADD COLUMN kind text NOT NULL DEFAULT 'import'
        CHECK (kind IN ('import', 'validate', 'repair', 'rebuild'));
UPDATE kataster.import_run SET kind = importer WHERE importer IN ('validate', 'repair');
ALTER TABLE kataster.import_run ALTER COLUMN importer DROP NOT NULL;
UPDATE kataster.import_run SET importer = NULL WHERE kind <> 'import';
ALTER TABLE kataster.import_run
    ADD CONSTRAINT import_run_importer_of_imports CHECK ((kind = 'import') = (importer IS NOT NULL));
-- The lifecycle looks up the running runs of one kind.
CREATE INDEX import_run_running_idx ON kataster.import_run (kind) WHERE status = 'running';
