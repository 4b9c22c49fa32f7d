-- The owner rules (pipeline/validation/owner.py): set-based SQL over the current versions.
-- Temporary tables are dropped at the end of the transaction owner_findings opens (or, called
-- inside an import's transaction, at its commit). The an references are the kept edge table
-- kataster_privat.buchung_an (0026).
-- Each rule's statement returns (object id, message, related ids or NULL, WKB location or
-- NULL). Anti-joins, not NOT IN: PostgreSQL cannot hash a NOT IN over a subquery that large;
-- NOT IN also finds nothing once a NULL is in the list.

-- name: edges_drop
DELETE FROM kataster_privat.buchung_an WHERE src = ANY(%(ids)s);

-- name: edges_fill
INSERT INTO kataster_privat.buchung_an
SELECT gml_id, unnest(an) FROM kataster_privat.ax_buchungsstelle
WHERE endet IS NULL AND an IS NOT NULL AND gml_id = ANY(%(ids)s);

-- name: edges_clear
DELETE FROM kataster_privat.buchung_an;

-- name: edges_fill_all
INSERT INTO kataster_privat.buchung_an SELECT * FROM kataster_privat.buchung_an_quelle;

-- name: analyze_edges
ANALYZE kataster_privat.buchung_an;

-- name: reached
-- Bookings that reach a current parcel: booked by one, or pointing (an) at one that does.
CREATE TEMPORARY TABLE owner_reached ON COMMIT DROP AS
WITH RECURSIVE reached(id) AS (
    SELECT unnest(ist_gebucht) FROM kataster.ax_flurstueck WHERE endet IS NULL
    UNION
    SELECT e.src FROM kataster_privat.buchung_an e JOIN reached r ON r.id = e.dst)
SELECT id FROM reached;

-- name: scope
-- The owner objects whose findings the objects %(ids)s (what a run delivered or ended, every
-- stored version of them with its references) can change (pipeline/validation/owner.py):
--   parcels: the touched ones and those booked on a touched booking (owner.unbooked);
--   bookings: every booking whose an chain leads to a booking that is touched, booked by a
--     touched parcel, named by a touched booking's an, or on a touched sheet (reachability,
--     dead ends, cycles, the shares dividing a property);
--   sheets: the touched ones and those of touched Namensnummern (sheet_without_owner, shares);
--   Namensnummern, Persons, Anschriften: the touched ones, the Namensnummern of touched sheets,
--     the Persons touched Namensnummern name, the Anschriften of touched Persons (orphan).
CREATE TEMPORARY TABLE owner_scope ON COMMIT DROP AS
WITH RECURSIVE t(id) AS (SELECT DISTINCT unnest(%(ids)s::text[])),
seed(id) AS (
    SELECT b.gml_id FROM kataster_privat.ax_buchungsstelle b JOIN t ON t.id = b.gml_id
    UNION SELECT unnest(f.ist_gebucht) FROM kataster.ax_flurstueck f JOIN t ON t.id = f.gml_id
    UNION SELECT unnest(b.an) FROM kataster_privat.ax_buchungsstelle b JOIN t ON t.id = b.gml_id
    UNION SELECT b.gml_id FROM kataster_privat.ax_buchungsstelle b
          WHERE b.endet IS NULL AND b.ist_bestandteil_von = ANY(%(ids)s::text[])),
bookings(id) AS (
    SELECT id FROM seed
    -- LATERAL with OFFSET 0 (which keeps the planner from turning it into a join): one index
    -- look-up per booking; a join was planned as a merge over every edge (0.25 s at 1,000,000).
    UNION SELECT e.src FROM bookings r CROSS JOIN LATERAL (
        SELECT src FROM kataster_privat.buchung_an e WHERE e.dst = r.id OFFSET 0) e)
SELECT id FROM bookings
UNION SELECT id FROM t
UNION SELECT f.gml_id FROM t CROSS JOIN LATERAL (   -- one GIN look-up per id
      SELECT gml_id FROM kataster.ax_flurstueck f
      WHERE f.endet IS NULL AND f.ist_gebucht @> ARRAY[t.id]) f
UNION SELECT n.ist_bestandteil_von FROM kataster_privat.ax_namensnummer n JOIN t ON t.id = n.gml_id
UNION SELECT n.benennt FROM kataster_privat.ax_namensnummer n JOIN t ON t.id = n.gml_id
UNION SELECT n.gml_id FROM kataster_privat.ax_namensnummer n
      WHERE n.endet IS NULL AND n.ist_bestandteil_von = ANY(%(ids)s::text[])
UNION SELECT unnest(p.hat) FROM kataster_privat.ax_person p JOIN t ON t.id = p.gml_id;

-- name: drop_scope
DROP TABLE IF EXISTS owner_scope;

-- name: scope_ids
SELECT id FROM owner_scope WHERE id IS NOT NULL;

-- name: drop_reached
DROP TABLE IF EXISTS owner_reached;

-- name: drop_cycle_edges
DROP TABLE IF EXISTS owner_cycle;

-- name: analyze_scope
ANALYZE owner_scope;

-- name: reached_in_scope
-- owner_reached for the bookings in scope: a booking's reachability depends only on the
-- bookings its an chain leads to (their forward closure), so the closure of the scope suffices.
CREATE TEMPORARY TABLE owner_reached ON COMMIT DROP AS
WITH RECURSIVE ahead(id) AS (
    SELECT id FROM owner_scope
    UNION SELECT e.dst FROM ahead a CROSS JOIN LATERAL (   -- index look-ups, as in scope
        SELECT dst FROM kataster_privat.buchung_an e WHERE e.src = a.id OFFSET 0) e),
reached(id) AS (
    SELECT a.id FROM ahead a
    WHERE EXISTS (SELECT 1 FROM kataster.ax_flurstueck f
                  WHERE f.endet IS NULL AND f.ist_gebucht @> ARRAY[a.id])
    UNION
    SELECT e.src FROM reached r CROSS JOIN LATERAL (
        SELECT src FROM kataster_privat.buchung_an e WHERE e.dst = r.id OFFSET 0) e
    WHERE e.src IN (SELECT id FROM ahead))
SELECT id FROM reached;

-- name: in_scope
AND {column} IN (SELECT id FROM owner_scope)

-- name: analyze_reached
ANALYZE owner_reached;

-- name: unbooked
SELECT f.gml_id, 'parcel ' || f.flurstueckskennzeichen || ' has no booking'
       || ' (istGebucht missing)', NULL::text[], ST_AsBinary(ST_PointOnSurface(f.geom))
FROM kataster.ax_flurstueck f
WHERE f.endet IS NULL AND f.source = 'nas' AND coalesce(cardinality(f.ist_gebucht), 0) = 0
  {scope_f}
UNION ALL
SELECT f.gml_id, 'parcel ' || f.flurstueckskennzeichen || ': its booking ' || b.id
       || ' is not stored', ARRAY[b.id], ST_AsBinary(ST_PointOnSurface(f.geom))
FROM kataster.ax_flurstueck f CROSS JOIN LATERAL unnest(f.ist_gebucht) AS b(id)
WHERE f.endet IS NULL AND f.source = 'nas' {scope_f}
  AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_buchungsstelle s
                  WHERE s.endet IS NULL AND s.gml_id = b.id);

-- name: no_parcel
SELECT b.gml_id, 'booking ' || b.gml_id || ' (buchungsart '
       || coalesce(b.buchungsart::text, '?') || ') reaches no current parcel',
       NULL::text[], NULL::bytea
FROM kataster_privat.ax_buchungsstelle b
WHERE b.endet IS NULL {scope_b}
  AND NOT EXISTS (SELECT 1 FROM owner_reached r WHERE r.id = b.gml_id);

-- name: sheet_without_owner
SELECT s.gml_id, 'sheet ' || coalesce(s.buchungsblattkennzeichen, s.gml_id)
       || ' has no Namensnummer (no owner)', NULL::text[], NULL::bytea
FROM kataster_privat.ax_buchungsblatt s
WHERE s.endet IS NULL AND coalesce(s.blattart, 0) <> 5000 {scope_s}
  AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_namensnummer n
                  WHERE n.endet IS NULL AND n.ist_bestandteil_von = s.gml_id);

-- name: orphan
SELECT n.gml_id, 'Namensnummer ' || n.gml_id || ': its sheet '
       || coalesce(n.ist_bestandteil_von, '(none)') || ' is not stored',
       NULL::text[], NULL::bytea
FROM kataster_privat.ax_namensnummer n
WHERE n.endet IS NULL {scope_n} AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_buchungsblatt s
      WHERE s.endet IS NULL AND s.gml_id = n.ist_bestandteil_von)
UNION ALL
SELECT p.gml_id, 'Person ' || p.gml_id || ' is named by no Namensnummer',
       NULL::text[], NULL::bytea
FROM kataster_privat.ax_person p
WHERE p.endet IS NULL {scope_p} AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_namensnummer n
      WHERE n.endet IS NULL AND n.benennt = p.gml_id)
UNION ALL
SELECT a.gml_id, 'Anschrift ' || a.gml_id || ' belongs to no Person',
       NULL::text[], NULL::bytea
FROM kataster_privat.ax_anschrift a
WHERE a.endet IS NULL {scope_a} AND NOT EXISTS (
      SELECT 1 FROM (SELECT unnest(hat) AS id FROM kataster_privat.ax_person
                     WHERE endet IS NULL) h WHERE h.id = a.gml_id);

-- name: chain
-- Dead ends: a divided booking (or one on a fictive sheet) reached from a parcel that no
-- booking points at, so nobody owns the parcel. Related: the parcels booked on it directly.
WITH dead AS (
    SELECT s.gml_id, s.buchungsart, CASE WHEN bl.blattart = %(fictive)s THEN bl.gml_id END
           AS fictive_sheet
    FROM kataster_privat.ax_buchungsstelle s
    JOIN owner_reached r ON r.id = s.gml_id
    LEFT JOIN kataster_privat.ax_buchungsblatt bl
           ON bl.gml_id = s.ist_bestandteil_von AND bl.endet IS NULL
    WHERE s.endet IS NULL AND (s.buchungsart = ANY(%(divided)s) OR bl.blattart = %(fictive)s)
      {scope_s}
      AND NOT EXISTS (SELECT 1 FROM kataster_privat.buchung_an e WHERE e.dst = s.gml_id)),
booked AS (
    SELECT b.id, array_agg(f.gml_id ORDER BY f.gml_id) AS parcels
    FROM kataster.ax_flurstueck f CROSS JOIN LATERAL unnest(f.ist_gebucht) AS b(id)
    WHERE f.endet IS NULL AND b.id IN (SELECT gml_id FROM dead) GROUP BY b.id)
SELECT d.gml_id, 'divided booking ' || d.gml_id || ' (buchungsart '
       || coalesce(d.buchungsart::text, '?') || coalesce(', fictive sheet '
       || d.fictive_sheet, '') || '): no booking points at it (dead end)',
       booked.parcels, NULL::bytea
FROM dead d LEFT JOIN booked ON booked.id = d.gml_id;

-- name: cycle_edges
CREATE TEMPORARY TABLE owner_cycle ON COMMIT DROP AS
SELECT DISTINCT src, dst FROM kataster_privat.buchung_an WHERE TRUE {scope_src} {scope_dst};

-- name: trim
-- Edges that may lie on a cycle: drop, until nothing changes, every edge whose source nobody
-- points at or whose target points nowhere. What remains are cycles and paths between them
-- (real data: nothing after two rounds).
DELETE FROM owner_cycle e
WHERE NOT EXISTS (SELECT 1 FROM owner_cycle x WHERE x.dst = e.src)
   OR NOT EXISTS (SELECT 1 FROM owner_cycle y WHERE y.src = e.dst);

-- name: cycle_residue
SELECT src, dst FROM owner_cycle ORDER BY src, dst;

-- name: share_candidates
-- Share groups whose exact sum is not obviously 1: a Namensnummer's parent is its DIN 1421
-- number without the last non-zero part ("0001.02.00.00.00" -> "1"; "0001.00.00.00.00" -> "").
-- A group with one denominator is exact in numeric (decimals are exact); the rest go to Python.
WITH numbers AS MATERIALIZED (   -- few distinct numbers: normalise each once
    SELECT nr, regexp_replace(regexp_replace(regexp_replace(replace(nr, ' ', ''),
               '(^|\.)0+([0-9])', '\1\2', 'g'),     -- leading zeros of each part
               '(^|\.)0(\.0)*$', ''),                -- trailing zero parts
               '(^|\.)[^.]*$', '') AS parent          -- without the last part
    FROM (SELECT DISTINCT coalesce(laufende_nummer_din1421, '') AS nr
          FROM kataster_privat.ax_namensnummer n WHERE endet IS NULL {scope_blatt}) d),
nn AS (
    SELECT n.gml_id, n.ist_bestandteil_von AS blatt, n.anteil_zaehler AS z,
           n.anteil_nenner AS n, numbers.parent
    FROM kataster_privat.ax_namensnummer n
    JOIN numbers ON numbers.nr = coalesce(n.laufende_nummer_din1421, '')
    WHERE n.endet IS NULL {scope_blatt}),
g AS (
    SELECT blatt, parent FROM nn GROUP BY blatt, parent
    HAVING count(z + n) > 0 AND (count(z + n) <> count(*) OR min(n) <> max(n)
                                 OR min(n) <= 0 OR sum(z) <> min(n)))
SELECT blatt, parent, array_agg(gml_id ORDER BY gml_id), array_agg(z ORDER BY gml_id),
       array_agg(n ORDER BY gml_id)
FROM nn JOIN g USING (blatt, parent) GROUP BY blatt, parent;

-- name: divided_candidates
-- The bookings dividing a property (1301/1302/1303 an 1101/1102) whose shares may not add up to 1.
WITH parts AS (
    SELECT e.dst AS target, s.gml_id, s.anteil_zaehler AS z, s.anteil_nenner AS n
    FROM kataster_privat.buchung_an e JOIN kataster_privat.ax_buchungsstelle s
         ON s.gml_id = e.src AND s.endet IS NULL AND s.buchungsart = ANY(%(dividing)s)
            {scope_edst}),
g AS (
    SELECT target FROM parts GROUP BY target
    HAVING count(z + n) = 0 OR min(n) <> max(n) OR min(n) <= 0 OR sum(z) <> min(n))
SELECT target, array_agg(gml_id ORDER BY gml_id), array_agg(z ORDER BY gml_id),
       array_agg(n ORDER BY gml_id)
FROM parts JOIN g USING (target) GROUP BY target;
