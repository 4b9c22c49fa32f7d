"""Validation rules on the ownership records (private: findings go to kataster_privat).

owner.unbooked        parcel without a booking, or its booking not stored
owner.no_parcel       booking that reaches no parcel (directly or through ``an``)
owner.sheet_without_owner  sheet (not fictive) without any Namensnummer
owner.orphan          Namensnummer whose sheet is missing, Person named by no Namensnummer,
                      Anschrift of no Person
owner.shares          the shares on a sheet, in a community, or of the bookings dividing a
                      property do not add up to 1 (exact fractions, communities resolved)
owner.chain           cycles or dead ends in ``an`` chains
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

from pipeline import ownership
from pipeline.rules import Finding

RULE_IDS = ("owner.unbooked", "owner.no_parcel", "owner.sheet_without_owner", "owner.orphan",
            "owner.shares", "owner.chain")

# Anti-joins, not NOT IN: PostgreSQL cannot hash a NOT IN over a CTE and compared every booking
# with every reached id (100,000 parcels: minutes); NOT IN also finds nothing once a NULL is in
# the list.
SQL = {
    "owner.no_parcel": """
        WITH RECURSIVE reached(id) AS (
            SELECT DISTINCT unnest(ist_gebucht) FROM kataster.ax_flurstueck WHERE endet IS NULL
            UNION
            SELECT a.gml_id FROM (SELECT gml_id, unnest(an) AS target
                                  FROM kataster_privat.ax_buchungsstelle WHERE endet IS NULL) a
            JOIN reached r ON r.id = a.target)
        SELECT b.gml_id, 'booking ' || b.gml_id || ' (buchungsart ' || coalesce(b.buchungsart::text, '?')
               || ') reaches no current parcel'
        FROM kataster_privat.ax_buchungsstelle b
        LEFT JOIN (SELECT DISTINCT id FROM reached) r ON r.id = b.gml_id
        WHERE b.endet IS NULL AND r.id IS NULL""",
    "owner.sheet_without_owner": """
        SELECT s.gml_id, 'sheet ' || coalesce(s.buchungsblattkennzeichen, s.gml_id)
               || ' has no Namensnummer (no owner)'
        FROM kataster_privat.ax_buchungsblatt s
        WHERE s.endet IS NULL AND coalesce(s.blattart, 0) <> 5000
          AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_namensnummer n
                          WHERE n.endet IS NULL AND n.ist_bestandteil_von = s.gml_id)""",
    "owner.orphan": """
        SELECT n.gml_id, 'Namensnummer ' || n.gml_id || ': its sheet '
               || coalesce(n.ist_bestandteil_von, '(none)') || ' is not stored'
        FROM kataster_privat.ax_namensnummer n
        WHERE n.endet IS NULL AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_buchungsblatt s
              WHERE s.endet IS NULL AND s.gml_id = n.ist_bestandteil_von)
        UNION ALL
        SELECT p.gml_id, 'Person ' || p.gml_id || ' is named by no Namensnummer'
        FROM kataster_privat.ax_person p
        WHERE p.endet IS NULL AND NOT EXISTS (SELECT 1 FROM kataster_privat.ax_namensnummer n
              WHERE n.endet IS NULL AND n.benennt = p.gml_id)
        UNION ALL
        SELECT a.gml_id, 'Anschrift ' || a.gml_id || ' belongs to no Person'
        FROM kataster_privat.ax_anschrift a
        LEFT JOIN (SELECT DISTINCT unnest(hat) AS id FROM kataster_privat.ax_person
                   WHERE endet IS NULL) h ON h.id = a.gml_id
        WHERE a.endet IS NULL AND h.id IS NULL""",
}


def _shares(conn):
    findings = []
    names = defaultdict(list)
    for gid, nr, z, n, blatt in conn.execute(
            "SELECT gml_id, laufende_nummer_din1421, anteil_zaehler, anteil_nenner,"
            " ist_bestandteil_von FROM kataster_privat.ax_namensnummer WHERE endet IS NULL"):
        names[blatt].append((ownership.din_path(nr), ownership.fraction(z, n), gid))
    for blatt, rows in names.items():
        groups = defaultdict(list)           # parent path → children with shares
        for path, share, gid in rows:
            groups[path[:-1]].append((share, gid))
        for parent, children in groups.items():
            shares = [s for s, _ in children if s is not None]
            if not shares:
                continue                      # no shares at this level (Gesamthand): nothing to add
            total = sum(shares, Fraction(0))
            if total != 1 or len(shares) != len(children):
                level = "sheet" if not parent else "community " + ".".join(map(str, parent))
                findings.append(Finding(
                    "owner.shares", blatt,
                    f"{level} of sheet {blatt}: shares add up to {total}"
                    + ("" if len(shares) == len(children) else
                       f" and {len(children) - len(shares)} of {len(children)} have none"),
                    related=sorted(g for _, g in children)))
    # The bookings dividing a property (1301/1302 an 1101/1102) must add up to 1.
    divided = defaultdict(list)
    for gid, z, n, an in conn.execute(
            "SELECT gml_id, anteil_zaehler, anteil_nenner, an FROM kataster_privat.ax_buchungsstelle"
            " WHERE endet IS NULL AND buchungsart IN (1301, 1302, 1303) AND an IS NOT NULL"):
        for target in an:
            divided[target].append((ownership.fraction(z, n), gid))
    for target, parts in divided.items():
        total = sum((s for s, _ in parts if s is not None), Fraction(0))
        if total != 1:
            findings.append(Finding("owner.shares", target,
                                    f"the bookings dividing {target} add up to {total}",
                                    related=sorted(g for _, g in parts)))
    return findings


def owner_findings(conn, rules):
    """Findings of the requested owner rules (all private)."""
    findings = []
    if {"owner.unbooked", "owner.chain"} & set(rules):
        found = ownership.resolve(conn, None, write=False)   # the walk reports these
        findings += [f for f in found if f.rule in rules]
    for rule, statement in SQL.items():
        if rule in rules:
            findings += [Finding(rule, gid, message) for gid, message in conn.execute(statement)]
    if "owner.shares" in rules:
        findings += _shares(conn)
    return findings
