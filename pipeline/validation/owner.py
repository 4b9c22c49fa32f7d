"""Validation rules on the ownership records (private: findings go to kataster_privat).

owner.unbooked        parcel without a booking, or its booking not stored
owner.no_parcel       booking that reaches no parcel (directly or through ``an``)
owner.sheet_without_owner  sheet (not fictive) without any Namensnummer
owner.orphan          Namensnummer whose sheet is missing, Person named by no Namensnummer,
                      Anschrift of no Person
owner.shares          the shares on a sheet, in a community, or of the bookings dividing a
                      property do not add up to 1 (exact fractions, communities resolved)
owner.chain           cycles in ``an`` chains, and divided bookings reached from a parcel that
                      no booking points at (dead ends)

Every rule is set-based SQL over the current versions (12 million objects for a city of a
million parcels). The ``an`` references are unnested once into a temporary edge table that the
closure (which bookings reach a parcel), the cycle search and the divided-property shares share.
Shares are compared exactly: groups whose shares have one denominator are checked in SQL with
numeric sums (exact for decimals); only the groups that fail that test or mix denominators are
summed again in Python with :class:`fractions.Fraction`, which also writes the message.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import shapely

from pipeline.validation.findings import Finding

DIVIDED = (1101, 1102, 2201)    # divided properties: owned through the bookings pointing at them
FICTIVE = 5000                  # fictive sheet (blattart)
DIVIDING = (1301, 1302, 1303)   # bookings whose shares divide a property

# Temporary tables, dropped at the end of the transaction owner_findings opens (or, called
# inside an import's transaction, at its commit: the ownership walk reuses owner_an).
EDGES = """
    CREATE TEMPORARY TABLE IF NOT EXISTS owner_an ON COMMIT DROP AS
    SELECT gml_id AS src, unnest(an) AS dst
    FROM kataster_privat.ax_buchungsstelle WHERE endet IS NULL AND an IS NOT NULL"""
# Bookings that reach a current parcel: booked by one, or pointing (an) at one that does.
REACHED = """
    CREATE TEMPORARY TABLE owner_reached ON COMMIT DROP AS
    WITH RECURSIVE reached(id) AS (
        SELECT unnest(ist_gebucht) FROM kataster.ax_flurstueck WHERE endet IS NULL
        UNION
        SELECT e.src FROM owner_an e JOIN reached r ON r.id = e.dst)
    SELECT id FROM reached"""

# rule -> statement returning (object id, message, related ids or NULL, WKB location or NULL).
# Anti-joins, not NOT IN: PostgreSQL cannot hash a NOT IN over a subquery that large; NOT IN
# also finds nothing once a NULL is in the list.
SQL = {
    "owner.unbooked": """
        SELECT f.gml_id, 'parcel ' || f.flurstueckskennzeichen || ' has no booking'
               || ' (istGebucht missing)', NULL::text[], ST_AsBinary(ST_PointOnSurface(f.geom))
        FROM kataster.ax_flurstueck f
        WHERE f.endet IS NULL AND f.source = 'nas' AND coalesce(cardinality(f.ist_gebucht), 0) = 0
        UNION ALL
        SELECT f.gml_id, 'parcel ' || f.flurstueckskennzeichen || ': its booking ' || b.id
               || ' is not stored', ARRAY[b.id], ST_AsBinary(ST_PointOnSurface(f.geom))
        FROM kataster.ax_flurstueck f CROSS JOIN LATERAL unnest(f.ist_gebucht) AS b(id)
        WHERE f.endet IS NULL AND f.source = 'nas'
          AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_buchungsstelle s
                          WHERE s.endet IS NULL AND s.gml_id = b.id)""",
    "owner.no_parcel": """
        SELECT b.gml_id, 'booking ' || b.gml_id || ' (buchungsart '
               || coalesce(b.buchungsart::text, '?') || ') reaches no current parcel',
               NULL::text[], NULL::bytea
        FROM kataster_privat.ax_buchungsstelle b
        WHERE b.endet IS NULL AND NOT EXISTS (SELECT 1 FROM owner_reached r WHERE r.id = b.gml_id)""",
    "owner.sheet_without_owner": """
        SELECT s.gml_id, 'sheet ' || coalesce(s.buchungsblattkennzeichen, s.gml_id)
               || ' has no Namensnummer (no owner)', NULL::text[], NULL::bytea
        FROM kataster_privat.ax_buchungsblatt s
        WHERE s.endet IS NULL AND coalesce(s.blattart, 0) <> 5000
          AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_namensnummer n
                          WHERE n.endet IS NULL AND n.ist_bestandteil_von = s.gml_id)""",
    "owner.orphan": """
        SELECT n.gml_id, 'Namensnummer ' || n.gml_id || ': its sheet '
               || coalesce(n.ist_bestandteil_von, '(none)') || ' is not stored',
               NULL::text[], NULL::bytea
        FROM kataster_privat.ax_namensnummer n
        WHERE n.endet IS NULL AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_buchungsblatt s
              WHERE s.endet IS NULL AND s.gml_id = n.ist_bestandteil_von)
        UNION ALL
        SELECT p.gml_id, 'Person ' || p.gml_id || ' is named by no Namensnummer',
               NULL::text[], NULL::bytea
        FROM kataster_privat.ax_person p
        WHERE p.endet IS NULL AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_namensnummer n
              WHERE n.endet IS NULL AND n.benennt = p.gml_id)
        UNION ALL
        SELECT a.gml_id, 'Anschrift ' || a.gml_id || ' belongs to no Person',
               NULL::text[], NULL::bytea
        FROM kataster_privat.ax_anschrift a
        WHERE a.endet IS NULL AND NOT EXISTS (
              SELECT 1 FROM (SELECT unnest(hat) AS id FROM kataster_privat.ax_person
                             WHERE endet IS NULL) h WHERE h.id = a.gml_id)""",
    # Dead ends: a divided booking (or one on a fictive sheet) reached from a parcel that no
    # booking points at, so nobody owns the parcel. Related: the parcels booked on it directly.
    "owner.chain": """
        WITH dead AS (
            SELECT s.gml_id, s.buchungsart, CASE WHEN bl.blattart = %(fictive)s THEN bl.gml_id END
                   AS fictive_sheet
            FROM kataster_privat.ax_buchungsstelle s
            JOIN owner_reached r ON r.id = s.gml_id
            LEFT JOIN kataster_privat.ax_buchungsblatt bl
                   ON bl.gml_id = s.ist_bestandteil_von AND bl.endet IS NULL
            WHERE s.endet IS NULL AND (s.buchungsart = ANY(%(divided)s) OR bl.blattart = %(fictive)s)
              AND NOT EXISTS (SELECT 1 FROM owner_an e WHERE e.dst = s.gml_id)),
        booked AS (
            SELECT b.id, array_agg(f.gml_id ORDER BY f.gml_id) AS parcels
            FROM kataster.ax_flurstueck f CROSS JOIN LATERAL unnest(f.ist_gebucht) AS b(id)
            WHERE f.endet IS NULL AND b.id IN (SELECT gml_id FROM dead) GROUP BY b.id)
        SELECT d.gml_id, 'divided booking ' || d.gml_id || ' (buchungsart '
               || coalesce(d.buchungsart::text, '?') || coalesce(', fictive sheet '
               || d.fictive_sheet, '') || '): no booking points at it (dead end)',
               booked.parcels, NULL::bytea
        FROM dead d LEFT JOIN booked ON booked.id = d.gml_id""",
}

# Edges that may lie on a cycle: drop, until nothing changes, every edge whose source nobody
# points at or whose target points nowhere. What remains are cycles and paths between them
# (real data: nothing after two rounds).
TRIM = """
    DELETE FROM owner_cycle e
    WHERE NOT EXISTS (SELECT 1 FROM owner_cycle x WHERE x.dst = e.src)
       OR NOT EXISTS (SELECT 1 FROM owner_cycle y WHERE y.src = e.dst)"""

# Share groups whose exact sum is not obviously 1: a Namensnummer's parent is its DIN 1421
# number without the last non-zero part ("0001.02.00.00.00" -> "1"; "0001.00.00.00.00" -> "").
# A group with one denominator is exact in numeric (decimals are exact); the rest go to Python.
SHARE_CANDIDATES = """
    WITH numbers AS MATERIALIZED (   -- few distinct numbers: normalise each once
        SELECT nr, regexp_replace(regexp_replace(regexp_replace(replace(nr, ' ', ''),
                   '(^|\\.)0+([0-9])', '\\1\\2', 'g'),     -- leading zeros of each part
                   '(^|\\.)0(\\.0)*$', ''),                -- trailing zero parts
                   '(^|\\.)[^.]*$', '') AS parent          -- without the last part
        FROM (SELECT DISTINCT coalesce(laufende_nummer_din1421, '') AS nr
              FROM kataster_privat.ax_namensnummer WHERE endet IS NULL) d),
    nn AS (
        SELECT n.gml_id, n.ist_bestandteil_von AS blatt, n.anteil_zaehler AS z,
               n.anteil_nenner AS n, numbers.parent
        FROM kataster_privat.ax_namensnummer n
        JOIN numbers ON numbers.nr = coalesce(n.laufende_nummer_din1421, '')
        WHERE n.endet IS NULL),
    g AS (
        SELECT blatt, parent FROM nn GROUP BY blatt, parent
        HAVING count(z + n) > 0 AND (count(z + n) <> count(*) OR min(n) <> max(n)
                                     OR min(n) <= 0 OR sum(z) <> min(n)))
    SELECT blatt, parent, array_agg(gml_id ORDER BY gml_id), array_agg(z ORDER BY gml_id),
           array_agg(n ORDER BY gml_id)
    FROM nn JOIN g USING (blatt, parent) GROUP BY blatt, parent"""
DIVIDED_CANDIDATES = """
    WITH parts AS (
        SELECT e.dst AS target, s.gml_id, s.anteil_zaehler AS z, s.anteil_nenner AS n
        FROM owner_an e JOIN kataster_privat.ax_buchungsstelle s
             ON s.gml_id = e.src AND s.endet IS NULL AND s.buchungsart = ANY(%(dividing)s)),
    g AS (
        SELECT target FROM parts GROUP BY target
        HAVING count(z + n) = 0 OR min(n) <> max(n) OR min(n) <= 0 OR sum(z) <> min(n))
    SELECT target, array_agg(gml_id ORDER BY gml_id), array_agg(z ORDER BY gml_id),
           array_agg(n ORDER BY gml_id)
    FROM parts JOIN g USING (target) GROUP BY target"""


def _total(zs, ns):
    """Exact sum of the shares given (None where a share is missing), or None if a
    denominator is 0."""
    shares = [(z, n) for z, n in zip(zs, ns, strict=True) if z is not None and n is not None]
    if any(n == 0 for _, n in shares):
        return None
    return sum((Fraction(z) / Fraction(n) for z, n in shares), Fraction(0))


def _shares(conn):
    findings = []
    for blatt, parent, ids, zs, ns in conn.execute(SHARE_CANDIDATES):
        total = _total(zs, ns)
        given = sum(z is not None and n is not None for z, n in zip(zs, ns, strict=True))
        if total == 1 and given == len(ids):
            continue
        level = "sheet" if not parent else "community " + parent
        findings.append(Finding(
            "owner.shares", blatt,
            f"{level} of sheet {blatt}: "
            + ("a share has the denominator 0" if total is None else f"shares add up to {total}")
            + ("" if given == len(ids) else f" and {len(ids) - given} of {len(ids)} have none"),
            related=list(ids)))
    # The bookings dividing a property (1301/1302/1303 an 1101/1102) must add up to 1.
    for target, ids, zs, ns in conn.execute(DIVIDED_CANDIDATES, {"dividing": list(DIVIDING)}):
        total = _total(zs, ns)
        if total == 1:
            continue
        findings.append(Finding(
            "owner.shares", target, f"the bookings dividing {target} "
            + ("have a share with the denominator 0" if total is None else f"add up to {total}"),
            related=list(ids)))
    return findings


def _cycles(conn):
    """One owner.chain finding per cycle of ``an`` references (a strongly connected set of
    bookings), named after its smallest gml_id."""
    conn.execute("CREATE TEMPORARY TABLE owner_cycle ON COMMIT DROP AS"
                 " SELECT DISTINCT src, dst FROM owner_an")
    while conn.execute(TRIM).rowcount:
        pass
    edges = defaultdict(list)
    for src, dst in conn.execute("SELECT src, dst FROM owner_cycle ORDER BY src, dst"):
        edges[src].append(dst)
    findings = []
    for component in _strongly_connected(edges):
        if len(component) == 1 and component[0] not in edges.get(component[0], []):
            continue                      # on a path between cycles, not on one
        first = min(component)
        findings.append(Finding(
            "owner.chain", first,
            f"booking {first}: its an chain returns to itself (cycle of "
            f"{' → '.join(sorted(component))} → {first})",
            related=sorted(c for c in component if c != first)))
    return findings


def _strongly_connected(edges):
    """Tarjan's algorithm, iterative; ``edges`` maps a node to the nodes it points at. Runs on
    the trimmed residue only (empty on sound data)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    nodes = sorted(set(edges) | {d for ds in edges.values() for d in ds})
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = edges.get(node, [])
            if i < len(targets):
                work.append((node, i + 1))
                nxt = targets[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(component)
    return out


def edges(conn):
    """The temporary edge table ``owner_an`` (booking -> the booking it points at with ``an``)
    of this transaction, made once: the owner rules and the ownership walk both follow it."""
    exists = conn.execute("SELECT to_regclass('pg_temp.owner_an') IS NOT NULL").fetchone()[0]
    if not exists:
        conn.execute(EDGES)
        conn.execute("ANALYZE owner_an")


def owner_findings(conn, rules):
    """Findings of the requested owner rules (all private), in a transaction of their own (a
    savepoint inside an import's transaction)."""
    findings = []
    params = {"divided": list(DIVIDED), "fictive": FICTIVE}
    with conn.transaction():
        if {"owner.no_parcel", "owner.chain", "owner.shares"} & set(rules):
            edges(conn)
        if {"owner.no_parcel", "owner.chain"} & set(rules):
            conn.execute(REACHED)
            conn.execute("ANALYZE owner_reached")
        for rule, statement in SQL.items():
            if rule in rules:
                rows = conn.execute(statement, params if "%(" in statement else None).fetchall()
                places = shapely.from_wkb([bytes(w) if w is not None else None
                                           for _, _, _, w in rows]) if rows else []
                findings += [Finding(rule, gid, message, geom=place, related=related or [])
                             for (gid, message, related, _), place in zip(rows, places, strict=True)]
        if "owner.chain" in rules:
            findings += _cycles(conn)
        if "owner.shares" in rules:
            findings += _shares(conn)
    return findings
