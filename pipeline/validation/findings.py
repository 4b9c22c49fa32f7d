"""Findings: the finding and its stable key, and everything done with stored findings.

Import, validation, repair and the command line use these functions and no other SQL on the
finding tables: upsert by key (:func:`store`), mark vanished ones fixed (:func:`mark_fixed`),
status changes by people (:func:`set_status`), who may see owner findings
(:func:`may_see_owners`, :func:`visible`) and the ``--json`` summary (:func:`summary_json`).
Owner-related findings live in ``kataster_privat.finding``, the others in ``kataster.finding``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import shapely
from psycopg import sql
from psycopg.rows import dict_row

from pipeline.validation.rules import SEVERITIES, rule
from schemas import queries

if TYPE_CHECKING:
    from psycopg import Connection

    from pipeline.validation.run import ValidationResult

SCHEMAS = ("kataster", "kataster_privat")     # public findings, owner findings
QUERIES = queries("findings")


@dataclass
class Finding:
    """One problem, located and attributed to an object.

    ``geom`` is a shapely geometry in EPSG:25832 (or None for findings without a place).
    """

    rule: str
    object_id: str | None
    message: str
    geom: object = None
    related: list = field(default_factory=list)
    severity: str = ""            # default: the rule's
    status: str = "open"          # as stored: open, accepted or fixed
    id: int | None = None         # database id once stored

    def __post_init__(self) -> None:
        self.severity = self.severity or rule(self.rule).severity

    @property
    def private(self) -> bool:
        """True for owner findings (stored in ``kataster_privat``)."""
        return rule(self.rule).private

    @property
    def key(self) -> str:
        """Stable key: rule + object + location, so re-runs recognise the same finding."""
        where = ""
        if self.geom is not None and not shapely.is_empty(self.geom):
            p = shapely.point_on_surface(self.geom) if shapely.is_valid(self.geom) else (
                shapely.centroid(self.geom))
            where = f"{round(shapely.get_x(p), 1)},{round(shapely.get_y(p), 1)}"
        raw = "|".join([self.rule, self.object_id or "", ",".join(sorted(self.related)), where])
        return self.rule + ":" + hashlib.sha1(raw.encode()).hexdigest()[:20]


def _q(statement: str, schema: str) -> sql.Composed:
    return sql.SQL(QUERIES[statement]).format(schema=sql.Identifier(schema))


def store(conn: Connection[Any], run_id: int, findings: Sequence[Finding]) -> None:
    """Insert or refresh findings by their stable key (accepted ones stay accepted, fixed ones
    found again are reopened)."""
    for schema in SCHEMAS:
        rows = [f for f in findings if f.private == (schema == "kataster_privat")]
        if not rows:
            continue
        wkb = [None if f.geom is None else shapely.to_wkb(f.geom, hex=True) for f in rows]
        with conn.cursor() as cur:
            cur.executemany(_q("upsert", schema), [
                {"key": f.key, "rule": f.rule, "severity": f.severity, "object_id": f.object_id,
                 "related": list(f.related), "message": f.message, "geom": g, "run": run_id}
                for f, g in zip(rows, wkb, strict=True)])


def mark_fixed(conn: Connection[Any], run_id: int, rules: Iterable[str],
               gemarkung: str | None = None) -> int:
    """Mark the findings of these rules that run ``run_id`` did not find again ``fixed``
    (only those of one Gemarkung's parcels if ``gemarkung``). Returns how many."""
    args = {"run": run_id, "rules": list(rules), "gemarkung": gemarkung or None}
    return sum(conn.execute(_q("mark_fixed", schema), args).rowcount for schema in SCHEMAS)


def mark_fixed_keys(conn: Connection[Any], run_id: int, keys: Sequence[str]) -> int:
    """Mark the findings of these keys that run ``run_id`` did not find again ``fixed`` (a
    scoped validation names them: :meth:`pipeline.validation.scope.Scope.stored_inside`).
    Returns how many."""
    args = {"run": run_id, "keys": list(keys)}
    return sum(conn.execute(_q("mark_fixed_keys", schema), args).rowcount for schema in SCHEMAS)


def with_ids(conn: Connection[Any], findings: list[Finding]) -> list[Finding]:
    """Give stored findings their database id and status (looked up by key)."""
    stored = {}
    for schema in SCHEMAS:
        stored.update({k: (i, st) for k, i, st in conn.execute(
            _q("ids_by_key", schema), {"keys": [f.key for f in findings]})})
    for f in findings:
        f.id, f.status = stored[f.key]
    return findings


def counts(findings: Iterable[Finding], private: bool = False) -> dict[str, dict[str, int]]:
    """Findings by rule and by severity (owner findings only with ``private``)."""
    out: dict[str, dict[str, int]] = {"by_rule": {}, "by_severity": dict.fromkeys(SEVERITIES, 0)}
    for f in findings:
        if f.private and not private:
            continue
        out["by_rule"][f.rule] = out["by_rule"].get(f.rule, 0) + 1
        out["by_severity"][f.severity] += 1
    return out


def _filter(ids: Iterable[int] | None, rule_id: str | None,
            status: Iterable[str] | None) -> dict[str, Any]:
    return {"ids": None if ids is None else list(ids), "rule": rule_id or None,
            "status": list(status) if status else None}


def listing(conn: Connection[Any], rule_id: str | None = None, status: str | None = None,
            limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """Public findings as dicts, oldest first, and how many match (``limit`` None: all)."""
    args = _filter(None, rule_id, [status] if status else None)
    [(total,)] = conn.execute(QUERIES["count"], args).fetchall()
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(QUERIES["list"], {**args, "limit": limit}).fetchall(), total


def unknown_ids(conn: Connection[Any], ids: Iterable[int]) -> list[int]:
    """The ids among ``ids`` that name no public finding."""
    known = {r[0] for r in conn.execute(QUERIES["known_ids"], {"ids": list(ids)})}
    return sorted(set(ids) - known)


def set_status(conn: Connection[Any], new: str, by: str, reason: str,
               ids: Iterable[int] | None = None, rule_id: str | None = None,
               old: Iterable[str] | None = None) -> int:
    """Set the status of public findings (by ids and/or rule; only those whose status is in
    ``old``, if given). Returns how many changed."""
    return conn.execute(QUERIES["set_status"], {
        "new": new, "by": by, "reason": reason, **_filter(ids, rule_id, old)}).rowcount


def may_see_owners(conn: Connection[Any]) -> bool:
    """True if the database user may read owner data (the owner of the database's owner
    schema, kataster_eigentum, kataster_admin, a superuser)."""
    [(may,)] = conn.execute(QUERIES["may_see_owners"]).fetchall()
    return bool(may)


def visible(result: ValidationResult, private: bool = False) -> list[Finding]:
    """The findings an output may show: owner-related ones only with ``private``."""
    return [f for f in result.findings if private or not f.private]



def summary_json(result: ValidationResult) -> dict[str, Any]:
    """The ``--json`` summary (schema: ``schemas/validate-summary.schema.json``)."""
    out = []
    for f in visible(result, result.private):
        loc = None
        if f.geom is not None and not shapely.is_empty(f.geom):
            p = shapely.point_on_surface(f.geom) if shapely.is_valid(f.geom) else \
                shapely.centroid(f.geom)
            loc = [round(p.x, 3), round(p.y, 3)]
        out.append({"id": f.id, "rule": f.rule, "severity": f.severity, "status": f.status,
                    "object": f.object_id, "related": list(f.related), "message": f.message,
                    "location": loc})
    return {"run_id": result.run_id, "findings": out, "counts": result.counts,
            "fixed": result.fixed, "seconds": result.seconds}
