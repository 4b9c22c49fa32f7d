"""The set-based rules: one SQL file per rule in ``schemas/sql/rules/`` (named by the
registry), run inside PostGIS.

Every file selects object id, related ids, message and location; ``{scope}`` limits it to one
Gemarkung. The history rules run once per object table. ``id.duplicate`` is the one rule that
is also an import step (:func:`pipeline.steps.duplicate_keys`, on the delivery's stage table):
both build their findings with :func:`duplicates`.
"""

from __future__ import annotations

import shapely
from psycopg import sql

from pipeline import kennzeichen
from pipeline.validation.findings import Finding
from pipeline.validation.rules import RULES
from schemas import queries, sql_text

HISTORY_TABLES = ["kataster.ax_flurstueck", "kataster.ax_gebaeude", "kataster.ax_lagebezeichnung",
                  "kataster.ax_katalog", "kataster.bezirk", "kataster.ax_nutzung",
                  "kataster.ax_objekt"]
QUERIES = queries("sql_rules")
CURRENT_PARCELS = sql.SQL(QUERIES["current_parcels"])


def rule_sql(rule_id):
    """The SQL of a set-based rule, composable with psycopg's ``sql.SQL.format``."""
    return sql.SQL(sql_text(f"rules/{RULES[rule_id].source}"))


def duplicates(conn, parcels, scope=None, args=None):
    """id.duplicate findings of the parcels in ``parcels`` (a composable table or subquery):
    one per parcel, naming the others that carry its Flurstückskennzeichen."""
    rows = conn.execute(rule_sql("id.duplicate").format(
        parcels=parcels, scope=scope or sql.SQL("TRUE")),
                        args).fetchall()
    found = []
    for fsk, ids, srcs, wkb in rows:
        where = shapely.from_wkb(wkb) if wkb else None
        for gml_id, src in zip(ids, srcs, strict=True):
            others = [i for i in ids if i != gml_id]
            found.append(Finding("id.duplicate", gml_id,
                                 f"{src + ': ' if src else ''}Flurstückskennzeichen {fsk} is "
                                 f"also carried by {', '.join(others)}; both kept",
                                 geom=where, related=others))
    return found


def sql_findings(conn, rule_ids, params, gemarkung=None, touched=None):
    """Findings of the set-based rules ``rule_ids``: all objects, one Gemarkung's parcels, or
    the objects ``touched`` (gml_ids; a scoped validation) and the parcels sharing a
    Flurstückskennzeichen with them."""
    scope = sql.SQL("TRUE")
    parcels = CURRENT_PARCELS
    args = {"fsk_re": kennzeichen.PATTERN, **params}
    if gemarkung:
        scope = sql.SQL(QUERIES["of_gemarkung"])
        args["gemarkung"] = gemarkung
    if touched is not None:
        scope = sql.SQL(QUERIES["of_touched"])
        parcels = sql.SQL(QUERIES["sharing_keys_with_touched"])
        args["touched"] = list(touched)
    found = []
    for rule_id in rule_ids:
        if rule_id == "id.duplicate":
            found += duplicates(conn, parcels, scope, args)
            continue
        tables = HISTORY_TABLES if rule_id.startswith("history.") else [None]
        for table in tables:
            if gemarkung and table not in (None, "kataster.ax_flurstueck"):
                continue
            statement = rule_sql(rule_id).format(
                scope=scope, table=sql.Identifier(*table.split(".")) if table else sql.SQL(""),
                label=sql.Literal(table.split(".")[1] if table else ""))
            for obj, related, message, wkb in conn.execute(
                    sql.SQL(QUERIES["rows"]).format(rule=statement), args):
                found.append(Finding(rule_id, obj, message, related=list(related or []),
                                     geom=shapely.from_wkb(bytes(wkb)) if wkb else None))
    return found
