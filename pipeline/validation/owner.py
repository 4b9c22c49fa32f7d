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
million parcels). The ``an`` references are kept as an edge table (``kataster_privat.buchung_an``,
:func:`keep_edges`) that the closure (which bookings reach a parcel), the cycle search, the
divided-property shares and the ownership walk share.
Shares are compared exactly: groups whose shares have one denominator are checked in SQL with
numeric sums (exact for decimals); only the groups that fail that test or mix denominators are
summed again in Python with :class:`fractions.Fraction`, which also writes the message.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext
from fractions import Fraction

import shapely
from psycopg import sql

from pipeline.db import scoped_memory
from pipeline.validation.findings import Finding
from schemas import queries

DIVIDED = (1101, 1102, 2201)    # divided properties: owned through the bookings pointing at them
FICTIVE = 5000                  # fictive sheet (blattart)
DIVIDING = (1301, 1302, 1303)   # bookings whose shares divide a property

QUERIES = queries("owner_rules")
# The rules answered by one statement each, in this order (``owner.chain`` also by the cycle
# search, ``owner.shares`` by the exact sums below).
STATEMENTS = ("owner.unbooked", "owner.no_parcel", "owner.sheet_without_owner", "owner.orphan",
              "owner.chain")


def _total(zs, ns):
    """Exact sum of the shares given (None where a share is missing), or None if a
    denominator is 0."""
    shares = [(z, n) for z, n in zip(zs, ns, strict=True) if z is not None and n is not None]
    if any(n == 0 for _, n in shares):
        return None
    return sum((Fraction(z) / Fraction(n) for z, n in shares), Fraction(0))


def _shares(conn, scoped=False):
    findings = []
    for blatt, parent, ids, zs, ns in conn.execute(_statement("share_candidates", scoped)):
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
    for target, ids, zs, ns in conn.execute(_statement("divided_candidates", scoped),
                                            {"dividing": list(DIVIDING)}):
        total = _total(zs, ns)
        if total == 1:
            continue
        findings.append(Finding(
            "owner.shares", target, f"the bookings dividing {target} "
            + ("have a share with the denominator 0" if total is None else f"add up to {total}"),
            related=list(ids)))
    return findings


def _cycles(conn, scoped=False):
    """One owner.chain finding per cycle of ``an`` references (a strongly connected set of
    bookings), named after its smallest gml_id (with ``scoped``, the cycles among the bookings
    in scope: a cycle through one of them lies wholly inside it)."""
    conn.execute(QUERIES["drop_cycle_edges"])
    conn.execute(_statement("cycle_edges", scoped))
    while conn.execute(QUERIES["trim"]).rowcount:
        pass
    edges = defaultdict(list)
    for src, dst in conn.execute(QUERIES["cycle_residue"]):
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


def keep_edges(conn, ids=None):
    """Keep the edge table of the ``an`` references (``kataster_privat.buchung_an``: booking ->
    the booking it points at, 0026) current after a run's merge: the edges of the bookings
    ``ids`` (gml_ids the run delivered or ended) replaced by those of their current versions,
    or every edge refilled when ``ids`` is None."""
    if ids is None:
        for name in ("edges_clear", "edges_fill_all", "analyze_edges"):
            conn.execute(QUERIES[name])
    elif ids:
        for name in ("edges_drop", "edges_fill"):
            conn.execute(QUERIES[name], {"ids": list(ids)})


# The placeholders of the rule statements that limit them to the scope, and their columns.
SCOPE_COLUMNS = {"scope_f": "f.gml_id", "scope_b": "b.gml_id", "scope_s": "s.gml_id",
                 "scope_n": "n.gml_id", "scope_p": "p.gml_id", "scope_a": "a.gml_id",
                 "scope_src": "src", "scope_dst": "dst", "scope_edst": "e.dst",
                 "scope_blatt": "n.ist_bestandteil_von"}


def _statement(name, scoped):
    """A rule statement, limited to the objects in ``owner_scope`` if ``scoped``."""
    return sql.SQL(QUERIES[name]).format(**{
        key: sql.SQL(QUERIES["in_scope"]).format(column=sql.SQL(column)) if scoped
        else sql.SQL("") for key, column in SCOPE_COLUMNS.items()
        if "{" + key + "}" in QUERIES[name]})


def owner_findings(conn, rules, touched=None):
    """Findings of the requested owner rules (all private), in a transaction of their own (a
    savepoint inside an import's transaction).

    With ``touched`` (gml_ids a run delivered or ended), only the findings those objects can
    change: see :func:`owner_findings_in_scope`."""
    return owner_findings_in_scope(conn, rules, touched)[0]


def owner_findings_in_scope(conn, rules, touched):
    """The findings of the owner rules ``rules`` that the objects ``touched`` can change, and
    the ids of the owner objects they looked at (a finding about another object cannot have
    changed). The rules run on the objects of the temporary table ``owner_scope`` (query
    ``scope``: the parcels, booking chains, sheets, Namensnummern, Persons and Anschriften
    reached from them, old references included). ``touched`` None: every object, and no ids."""
    findings = []
    params = {"divided": list(DIVIDED), "fictive": FICTIVE}
    scoped = touched is not None
    with conn.transaction(), scoped_memory(conn) if scoped else nullcontext():
        if scoped:
            conn.execute(QUERIES["drop_scope"])
            conn.execute(QUERIES["scope"], {"ids": list(touched)})
            conn.execute(QUERIES["analyze_scope"])
        if {"owner.no_parcel", "owner.chain"} & set(rules):
            conn.execute(QUERIES["drop_reached"])
            conn.execute(QUERIES["reached_in_scope" if scoped else "reached"])
            conn.execute(QUERIES["analyze_reached"])
        for rule in STATEMENTS:
            if rule in rules:
                statement = _statement(rule.removeprefix("owner."), scoped)
                rows = conn.execute(statement, params if "%(" in QUERIES[
                    rule.removeprefix("owner.")] else None).fetchall()
                places = shapely.from_wkb([bytes(w) if w is not None else None
                                           for _, _, _, w in rows]) if rows else []
                findings += [Finding(rule, gid, message, geom=place, related=related or [])
                             for (gid, message, related, _), place in zip(rows, places, strict=True)]
        if "owner.chain" in rules:
            findings += _cycles(conn, scoped)
        if "owner.shares" in rules:
            findings += _shares(conn, scoped)
        ids = {i for (i,) in conn.execute(QUERIES["scope_ids"])} if scoped else None
    return findings, ids
