-- Small statements of the named steps (pipeline/steps.py); each step's main statement is its
-- own file in schemas/sql/steps/.

-- name: create_operations
CREATE TEMP TABLE step_operations (n int, tbl text, gml_id text, beginnt timestamptz)
ON COMMIT DROP;

-- name: add_operation
INSERT INTO step_operations VALUES (%(n)s, %(table)s, %(gml_id)s, %(beginnt)s);

-- name: operation_tables
SELECT DISTINCT tbl FROM step_operations;

-- name: named_version
AND beginnt = %(b)s

-- name: open_version
AND endet IS NULL

-- name: staged_ids
-- The objects a delivery's staging table holds (what the run delivered).
SELECT DISTINCT gml_id FROM {stage};

-- name: estimated_rows
SELECT reltuples FROM pg_class WHERE oid = %(table)s::regclass;
