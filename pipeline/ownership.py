"""Who owns each current parcel: the ownership chain resolved into eigentum_aufgeloest.

Flurstück ─istGebucht→ Buchungsstelle ─istBestandteilVon→ Buchungsblatt ←istBestandteilVon─
Namensnummer ─benennt→ Person. A booking on a fictive sheet (blattart 5000) or a divided
property (buchungsart 1101, 1102, 2201) is owned through the bookings that point at it with
``an`` (e.g. Wohnungseigentum 1301, Miteigentum 1302), recursively, multiplying their shares.
Rights on a parcel (Erbbaurecht 2101, …) pointing at an ordinary booking are listed too, with
their own buchungsart, so they stay distinguishable from ownership. Shares are exact fractions.
Communities: a Namensnummer without ``benennt`` heads the members numbered below it (DIN 1421).

All of it is set-based SQL in the import's transaction (three statements over the current
versions; the server spills to disk rather than growing, whatever the size of the delivery):

1. ``ownership_sheet_owners``: the owners of every sheet with their shares, each member's share
   multiplied by the shares of the community heads above it (a recursive walk up the DIN 1421
   number, one level a step);
2. ``ownership_walk``: from every booking of a current parcel along the ``an`` references that
   point at it (recursive; a step into a booking already on the path marks a cycle and ends);
3. the rows: each booking reached that is owned directly (not divided, not on a fictive sheet)
   times its sheet's owners.

Shares stay exact: a fraction is a pair of ``numeric`` (decimals such as ``7.000000000000``
are exact in it), multiplied pairwise and reduced by their greatest common divisor when written.
Dangling references become findings (of the owner rules), never crashes.
"""

from __future__ import annotations

from pipeline.validation.owner import DIVIDED, FICTIVE, edges, owner_findings
from schemas import sql_text

# A share is a pair (z, n); NULL where it is missing or its denominator is 0 (owner.shares
# reports that, the walk goes on).
SHEET_OWNERS = """
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
        FROM kataster_privat.ax_namensnummer WHERE endet IS NULL),
    -- "0001.02.00.00.00" -> {1,2}: the numeric parts, without the trailing zeros (few
    -- distinct numbers: each is taken apart once).
    parts AS (
        SELECT d.nr, coalesce(array_agg(p.v::numeric ORDER BY p.o), '{}') AS parts
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
    SELECT blatt, person, z, n, community FROM up WHERE k <= 0"""

# (parcel, booking reached, its sheet and kind, the product of the shares on the way, the
# bookings on the way, whether this step closed a cycle).
WALK = """
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
        WHERE s.endet IS NULL),
    walk AS (
        SELECT f.gml_id AS parcel, f.flurstueckskennzeichen AS fsk, st.gml_id AS sid, st.buchungsart, st.blatt, st.kz,
               st.divided, 1::numeric AS z, 1::numeric AS n, ARRAY[st.gml_id] AS path,
               false AS cycle
        FROM kataster.ax_flurstueck f CROSS JOIN LATERAL unnest(f.ist_gebucht) AS b(id)
        JOIN st ON st.gml_id = b.id
        WHERE f.endet IS NULL AND f.source = 'nas'
        UNION ALL
        -- Into a divided property's bookings with their shares; from an ordinary booking into
        -- the rights on it, which are their own (share 1).
        SELECT w.parcel, w.fsk, r.gml_id, r.buchungsart, r.blatt, r.kz, r.divided,
               CASE WHEN w.divided THEN w.z * r.z ELSE 1 END,
               CASE WHEN w.divided THEN w.n * r.n ELSE 1 END,
               w.path || r.gml_id, r.gml_id = ANY(w.path)
        FROM walk w JOIN owner_an e ON e.dst = w.sid JOIN st r ON r.gml_id = e.src
        WHERE NOT w.cycle)
    SELECT * FROM walk"""

# Sheet share times the factor of the way there; without a sheet share the factor alone, and
# nothing where that is 1. Reduced, as integers (scaled past the decimals first).
RESOLVED = """
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
                WHERE NOT w.divided AND NOT w.cycle) shares) integral"""

def resolve(conn, run_id):
    """Resolve the owners of every current parcel and record, for the import run ``run_id``,
    those of the parcels whose owners changed (``schemas/sql/steps/eigentum_schreiben.sql``:
    the history in ``kataster_privat.eigentum_aufgeloest`` grows with the change, not with the
    city; ``kataster_privat.eigentum_aktuell`` is the current resolution); returns the findings
    recorded with the run.

    The walk meets the problems that the owner rules ``owner.unbooked`` and ``owner.chain``
    name (a parcel without its booking, a cycle, a dead end); they are reported by those rules
    (:mod:`pipeline.validation.owner`), so that an import and a later validation record one finding
    for one problem. The walk follows the edge table of :func:`pipeline.validation.owner.edges`.
    """
    findings = owner_findings(conn, ["owner.unbooked", "owner.chain"])
    resolved(conn)
    conn.execute(sql_text("steps/eigentum_schreiben.sql"), {"run": run_id})
    return findings


def resolved(conn):
    """Resolve the owners of every current parcel into the temporary table
    ``ownership_resolved`` (dropped at commit), the columns of ``eigentum_aufgeloest`` without
    the run; a test compares it with the recorded history's current state."""
    edges(conn)
    conn.execute("CREATE INDEX ON owner_an (dst)")
    conn.execute("ANALYZE owner_an")
    conn.execute(SHEET_OWNERS)
    conn.execute(WALK, {"fictive": FICTIVE, "divided": list(DIVIDED)})
    conn.execute("ANALYZE ownership_sheet_owners")
    conn.execute("ANALYZE ownership_walk")
    conn.execute(RESOLVED)
