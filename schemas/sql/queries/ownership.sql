-- The ownership resolution (pipeline/ownership.py): three set-based statements over the
-- current versions, into temporary tables dropped at commit. The walk follows the kept edge
-- table of the an references, kataster_privat.buchung_an (0026).
-- Scoped to a run's change, the walk starts only from the parcels in ownership_scope and the
-- sheets' owners are resolved only for the sheets it reaches: {in_scope} and {bookings} are
-- those filters, or nothing for a full resolution (literal braces are doubled there).

-- name: first_resolution
SELECT NOT EXISTS (SELECT 1 FROM kataster_privat.eigentum_aufgeloest);

-- name: create_touched
-- The owner-relevant objects this run delivered or ended: (table, gml_id).
CREATE TEMPORARY TABLE ownership_touched (tbl text, gml_id text) ON COMMIT DROP;

-- name: touched_staged
INSERT INTO ownership_touched SELECT DISTINCT %(table)s, gml_id FROM {stage};

-- name: touched_operation
INSERT INTO ownership_touched VALUES (%(table)s, %(gml_id)s);

-- name: scope
-- The parcels whose owners this run may have changed: those it delivered or ended, and those
-- booked on a booking that reaches (through an, towards the divided property) a booking it
-- delivered or ended, or a booking on a sheet whose sheet or Namensnummern it delivered or
-- ended. Old versions (closed by this run) count with their references, so that a booking
-- moved from one property to another changes the owners of both.
CREATE TEMPORARY TABLE ownership_scope ON COMMIT DROP AS
WITH RECURSIVE
sheets AS (
    SELECT t.gml_id AS blatt FROM ownership_touched t
    WHERE t.tbl = 'kataster_privat.ax_buchungsblatt'
    UNION
    SELECT n.ist_bestandteil_von FROM ownership_touched t
    JOIN kataster_privat.ax_namensnummer n ON n.gml_id = t.gml_id
    WHERE t.tbl = 'kataster_privat.ax_namensnummer'
      AND (n.endet IS NULL OR n.closed_run_id = %(run)s)),
up(id) AS (
    SELECT t.gml_id FROM ownership_touched t WHERE t.tbl = 'kataster_privat.ax_buchungsstelle'
    UNION
    SELECT s.gml_id FROM sheets
    JOIN kataster_privat.ax_buchungsstelle s ON s.ist_bestandteil_von = sheets.blatt
    WHERE s.endet IS NULL
    UNION
    SELECT x.dst FROM up
    CROSS JOIN LATERAL (SELECT unnest(s.an) AS dst FROM kataster_privat.ax_buchungsstelle s
                        WHERE s.gml_id = up.id
                          AND (s.endet IS NULL OR s.closed_run_id = %(run)s)) x)
SELECT t.gml_id FROM ownership_touched t WHERE t.tbl = 'kataster.ax_flurstueck'
UNION
SELECT f.gml_id FROM kataster.ax_flurstueck f
WHERE f.endet IS NULL AND f.ist_gebucht && ARRAY(SELECT id FROM up);

-- name: scope_bookings
-- The bookings the walk from the parcels in scope can reach (against an, from the property to
-- the bookings pointing at it).
CREATE TEMPORARY TABLE ownership_bookings ON COMMIT DROP AS
WITH RECURSIVE down(id) AS (
    SELECT b.id FROM ownership_scope sc
    JOIN kataster.ax_flurstueck f ON f.gml_id = sc.gml_id AND f.endet IS NULL
    CROSS JOIN LATERAL unnest(f.ist_gebucht) AS b(id)
    UNION
    -- LATERAL with OFFSET 0 (which keeps the planner from turning it into a join): one index
    -- look-up per booking; a join was planned as a merge over every edge (0.25 s at 1,000,000).
    SELECT e.src FROM down CROSS JOIN LATERAL (
        SELECT src FROM kataster_privat.buchung_an e WHERE e.dst = down.id OFFSET 0) e)
SELECT id FROM down;

-- name: analyze_scope
-- Before the bookings are collected from it: estimated unseen, the scope's parcels were
-- joined by reading every current parcel.
ANALYZE ownership_scope;

-- name: analyze_bookings
ANALYZE ownership_bookings;

-- name: parcels_in_scope
AND f.gml_id IN (SELECT gml_id FROM ownership_scope)

-- name: bookings_in_scope
AND s.gml_id IN (SELECT id FROM ownership_bookings)

-- name: sheets_in_scope
AND ist_bestandteil_von IN (SELECT DISTINCT blatt FROM ownership_walk)

-- name: owners_in_scope
WHERE flurstueck_gml_id IN (SELECT gml_id FROM ownership_scope)

-- name: sheet_owners
-- The owners of every sheet with their shares, each member's share multiplied by the shares of
-- the community heads above it (a recursive walk up the DIN 1421 number, one level a step).
-- A share is a pair (z, n); NULL where it is missing or its denominator is 0 (owner.shares
-- reports that, the walk goes on).
CREATE TEMPORARY TABLE ownership_sheet_owners ON COMMIT DROP AS
WITH RECURSIVE nn AS (
    SELECT gml_id, ist_bestandteil_von AS blatt, nullif(benennt, '') AS person,
           coalesce(laufende_nummer_din1421, '') AS nr,
           CASE WHEN anteil_nenner <> 0 THEN anteil_zaehler END AS z,
           CASE WHEN anteil_zaehler IS NOT NULL AND anteil_nenner <> 0
                THEN anteil_nenner END AS n,
           coalesce(CASE art_der_rechtsgemeinschaft WHEN 1000 THEN 'Erbengemeinschaft'
                        WHEN 2000 THEN 'Gütergemeinschaft' WHEN 3000 THEN 'BGB-Gesellschaft'
                        WHEN 9999 THEN 'Sonstiges' END,
                    nullif(attrs->>'beschriebDerRechtsgemeinschaft', ''),
                    'Rechtsgemeinschaft') AS community
    FROM kataster_privat.ax_namensnummer WHERE endet IS NULL {in_scope}),
-- "0001.02.00.00.00" -> (1, 2): the numeric parts, without the trailing zeros (few
-- distinct numbers: each is taken apart once).
parts AS (
    SELECT d.nr, coalesce(array_agg(p.v::numeric ORDER BY p.o), '{{}}') AS parts
    FROM (SELECT DISTINCT nr FROM nn) d
    LEFT JOIN LATERAL unnest(string_to_array(replace(d.nr, ' ', ''), '.'))
         WITH ORDINALITY AS p(v, o) ON p.v ~ '^[0-9]+$'
    GROUP BY d.nr),
numbers AS MATERIALIZED (
    SELECT nr, parts[1:coalesce((SELECT max(o) FROM unnest(parts) WITH ORDINALITY
                                 AS x(v, o) WHERE v <> 0), 0)] AS path
    FROM parts),
heads AS (
    SELECT DISTINCT ON (nn.blatt, numbers.path) nn.blatt, numbers.path, nn.z, nn.n,
           nn.community
    FROM nn JOIN numbers USING (nr) WHERE nn.person IS NULL
    ORDER BY nn.blatt, numbers.path, nn.gml_id),
-- From each member up its number: level k is the head numbered by the first k parts.
up AS (
    SELECT nn.blatt, nn.person, numbers.path, cardinality(numbers.path) - 1 AS k,
           nn.z, nn.n, NULL::text AS community
    FROM nn JOIN numbers USING (nr) WHERE nn.person IS NOT NULL
    UNION ALL
    SELECT u.blatt, u.person, u.path, u.k - 1,
           CASE WHEN h.z IS NULL THEN u.z ELSE u.z * h.z END,
           CASE WHEN h.z IS NULL THEN u.n ELSE u.n * h.n END,
           coalesce(u.community, h.community)
    FROM up u LEFT JOIN heads h ON h.blatt = u.blatt AND h.path = u.path[1:u.k]
    WHERE u.k >= 1)
SELECT blatt, person, z, n, community FROM up WHERE k <= 0;

-- name: walk
-- From every booking of a current parcel along the an references that point at it: (parcel,
-- booking reached, its sheet and kind, the product of the shares on the way, the bookings on
-- the way, whether this step closed a cycle).
CREATE TEMPORARY TABLE ownership_walk ON COMMIT DROP AS
WITH RECURSIVE st AS (
    SELECT s.gml_id, s.buchungsart, s.ist_bestandteil_von AS blatt,
           b.buchungsblattkennzeichen AS kz,
           coalesce(b.blattart = %(fictive)s, false)
               OR coalesce(s.buchungsart = ANY(%(divided)s), false) AS divided,
           CASE WHEN s.anteil_zaehler IS NOT NULL AND s.anteil_nenner <> 0
                THEN s.anteil_zaehler ELSE 1 END AS z,
           CASE WHEN s.anteil_zaehler IS NOT NULL AND s.anteil_nenner <> 0
                THEN s.anteil_nenner ELSE 1 END AS n
    FROM kataster_privat.ax_buchungsstelle s
    LEFT JOIN kataster_privat.ax_buchungsblatt b
           ON b.gml_id = s.ist_bestandteil_von AND b.endet IS NULL
    WHERE s.endet IS NULL {bookings}),
walk AS (
    SELECT f.gml_id AS parcel, f.flurstueckskennzeichen AS fsk, st.gml_id AS sid, st.buchungsart, st.blatt, st.kz,
           st.divided, 1::numeric AS z, 1::numeric AS n, ARRAY[st.gml_id] AS path,
           false AS cycle
    FROM kataster.ax_flurstueck f CROSS JOIN LATERAL unnest(f.ist_gebucht) AS b(id)
    JOIN st ON st.gml_id = b.id
    WHERE f.endet IS NULL AND f.source = 'nas' {in_scope}
    UNION ALL
    -- Into a divided property's bookings with their shares; from an ordinary booking into
    -- the rights on it, which are their own (share 1).
    SELECT w.parcel, w.fsk, r.gml_id, r.buchungsart, r.blatt, r.kz, r.divided,
           CASE WHEN w.divided THEN w.z * r.z ELSE 1 END,
           CASE WHEN w.divided THEN w.n * r.n ELSE 1 END,
           w.path || r.gml_id, r.gml_id = ANY(w.path)
    FROM walk w JOIN kataster_privat.buchung_an e ON e.dst = w.sid JOIN st r ON r.gml_id = e.src
    WHERE NOT w.cycle)
SELECT * FROM walk;

-- name: analyze_walk
ANALYZE ownership_walk;

-- name: analyze_sheet_owners
ANALYZE ownership_sheet_owners;

-- name: resolved
-- Sheet share times the factor of the way there; without a sheet share the factor alone, and
-- nothing where that is 1. Reduced, as integers (scaled past the decimals first).
CREATE TEMPORARY TABLE ownership_resolved ON COMMIT DROP AS
SELECT parcel AS flurstueck_gml_id, fsk AS flurstueckskennzeichen, kz AS buchungsblatt,
       buchungsart, person AS person_gml_id, sign(n) * div(z, gcd(z, n)) AS anteil_zaehler,
       abs(div(n, gcd(z, n))) AS anteil_nenner, community AS rechtsgemeinschaft
FROM (SELECT parcel, fsk, kz, buchungsart, person, community,
             round(z * 10::numeric ^ greatest(scale(trim_scale(z)), scale(trim_scale(n)))) AS z,
             round(n * 10::numeric ^ greatest(scale(trim_scale(z)), scale(trim_scale(n)))) AS n
      FROM (SELECT w.parcel, w.fsk, w.kz, w.buchungsart, o.person, o.community,
                   CASE WHEN o.z IS NOT NULL THEN o.z * w.z
                        WHEN w.z <> w.n THEN w.z END AS z,
                   CASE WHEN o.z IS NOT NULL THEN o.n * w.n
                        WHEN w.z <> w.n THEN w.n END AS n
            FROM ownership_walk w JOIN ownership_sheet_owners o ON o.blatt = w.blatt
            WHERE NOT w.divided AND NOT w.cycle) shares) integral;
