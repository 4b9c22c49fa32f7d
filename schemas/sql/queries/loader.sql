-- The loader: staging tables, the checks on a whole delivery and the merge (pipeline/loader.py).
-- {placeholders} are identifiers (tables, columns) that the loader fills in with
-- psycopg.sql.Identifier; values are bound parameters.

-- name: table_columns
SELECT column_name, udt_name FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = %(name)s
ORDER BY ordinal_position;

-- name: geometry_type
SELECT type FROM geometry_columns WHERE f_table_schema = %(schema)s AND f_table_name = %(name)s;

-- name: create_stage
CREATE TEMP TABLE {stage} (LIKE {target} INCLUDING DEFAULTS, src text) ON COMMIT DROP;

-- name: copy
COPY {stage} ({columns}) FROM STDIN (FORMAT {format});

-- name: duplicate_ids
-- Objects delivered more than once: the repeated keys with a cheap hash aggregate first,
-- details only for those.
SELECT s.gml_id, count(*), count(DISTINCT s.content_hash), min(s.src), max(s.src)
FROM {stage} s
JOIN (SELECT gml_id, beginnt FROM {stage} GROUP BY gml_id, beginnt HAVING count(*) > 1) d
  USING (gml_id, beginnt)
GROUP BY s.gml_id, s.beginnt
ORDER BY s.gml_id
LIMIT 20;

-- name: drop_exact_repeats
DELETE FROM {stage} a USING {stage} b
WHERE a.gml_id = b.gml_id AND a.beginnt = b.beginnt AND a.ctid > b.ctid;

-- name: analyze_stage
ANALYZE {stage} ({columns});

-- name: create_flat_scope
CREATE TEMP TABLE stage_scope (land text, gemarkungsnummer text) ON COMMIT DROP;

-- name: stage_districts
SELECT land, gemarkungsnummer FROM {stage};

-- name: fill_flat_scope
INSERT INTO stage_scope SELECT DISTINCT * FROM ({districts}) u WHERE gemarkungsnummer IS NOT NULL;

-- name: target_has_rows
SELECT EXISTS (SELECT 1 FROM {target});

-- name: truncate
TRUNCATE {target};

-- name: indexes
SELECT n.nspname, ic.relname, pg_get_indexdef(i.indexrelid), c.conname,
       pg_get_constraintdef(c.oid)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
WHERE i.indrelid = %(table)s::regclass;

-- name: drop_constraint
ALTER TABLE {target} DROP CONSTRAINT {name};

-- name: add_constraint
ALTER TABLE {target} ADD CONSTRAINT {name} {definition};

-- name: drop_index
DROP INDEX {index};

-- name: flat_in_scope
OR (t2.land, t2.gemarkungsnummer) IN (SELECT land, gemarkungsnummer FROM stage_scope)

-- name: flat_gone
-- Superseded (changed) and vanished objects of this source lose their open version, and so do
-- objects of another source (a NAS import) that the delivery re-delivers with other content:
-- it is compared like any re-delivery, never called unchanged. (A join, not NOT EXISTS under
-- OR: the latter makes PostgreSQL rescan the staging table for every stored row.)
SELECT t2.gml_id, t2.beginnt FROM {target} t2
LEFT JOIN {stage} s ON s.gml_id = t2.gml_id
WHERE t2.endet IS NULL
  AND ((t2.source = %(source)s AND (s.gml_id IS NOT NULL {in_scope}))
       OR (t2.source IS DISTINCT FROM %(source)s AND s.gml_id IS NOT NULL))
  AND s.content_hash IS DISTINCT FROM t2.content_hash

-- name: flat_close
UPDATE {target} t SET endet = %(ts)s, closed_run_id = %(run)s
FROM ({gone}) g
WHERE t.gml_id = g.gml_id AND t.beginnt = g.beginnt;

-- name: flat_delete
DELETE FROM {target} t USING ({gone}) g WHERE t.gml_id = g.gml_id AND t.beginnt = g.beginnt;

-- name: flat_insert
INSERT INTO {target} ({columns})
SELECT {columns} FROM {stage} s
WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE t.gml_id = s.gml_id AND t.endet IS NULL);

-- name: versioned_drop_stored
-- Versions already stored are kept once (exact re-sends, GID 7 repeats).
DELETE FROM {stage} s USING {target} t WHERE t.gml_id = s.gml_id AND t.beginnt = s.beginnt;

-- name: versioned_end_staged
-- A staged version ends where the next known version (stored or staged) begins.
UPDATE {stage} s SET endet = n.next
FROM (SELECT s2.gml_id, s2.beginnt,
             least((SELECT min(t.beginnt) FROM {target} t
                    WHERE t.gml_id = s2.gml_id AND t.beginnt > s2.beginnt),
                   lead(s2.beginnt) OVER (PARTITION BY s2.gml_id ORDER BY s2.beginnt)) AS next
      FROM {stage} s2) n
WHERE n.gml_id = s.gml_id AND n.beginnt = s.beginnt AND n.next IS NOT NULL
  AND s.endet IS NULL;

-- name: versioned_close
UPDATE {target} t SET endet = n.first, closed_run_id = %(run)s
FROM (SELECT gml_id, min(beginnt) AS first FROM {stage} GROUP BY gml_id) n
WHERE t.gml_id = n.gml_id AND t.endet IS NULL AND t.beginnt < n.first;

-- name: versioned_delete
DELETE FROM {target} t
USING (SELECT gml_id, min(beginnt) AS first FROM {stage} GROUP BY gml_id) n
WHERE t.gml_id = n.gml_id AND t.beginnt < n.first;

-- name: versioned_drop_ended
DELETE FROM {stage} WHERE endet IS NOT NULL;

-- name: versioned_insert
INSERT INTO {target} ({columns}) SELECT {columns} FROM {stage};
