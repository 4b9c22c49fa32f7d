"""``validate``: run the registry's rules and store their findings, as a run of kind validate.

The vectorised stages run per partition in Dask workers (:mod:`pipeline.validation.partitions`)
while the SQL and owner rules run in the database on a connection of their own; the findings
are stored in one transaction (:mod:`pipeline.validation.findings`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError
from pipeline.runs import Run
from pipeline.validation import findings as stored
from pipeline.validation.owner import owner_findings_in_scope
from pipeline.validation.partitions import local_workers, run_partitions, validate_scope
from pipeline.validation.partitions import partitions as partitions_of
from pipeline.validation.rules import RULES, of_kind
from pipeline.validation.scope import UNSCOPED, Scope
from pipeline.validation.sql_rules import sql_findings
from pipeline.validation.stages import PARTITION_STAGES, dedupe

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.db import Database
    from pipeline.validation.findings import Finding

log = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    """What one validation found: its run, the findings (with their stored id and status),
    counts, how many earlier findings it marked fixed, its time, whether owner findings are
    shown."""

    run_id: int
    findings: list[Finding]
    counts: dict[str, dict[str, int]]
    fixed: int
    seconds: float
    private: bool = False


def params(config: Config) -> dict[str, Any]:
    """The parameters of all rules, from the ``validation`` section of the configuration."""
    keys = sorted({k for r in RULES.values() for k in r.params})
    return {k: config[f"validation.{k}"] for k in keys}


def validate(db: Database, config: Config, rules: Sequence[str] | None = None,
             gemarkung: str | None = None, scheduler: str | None = None,
             private: bool = False, touched: Sequence[str] | None = None) -> ValidationResult:
    """Run validation rules and store their findings.

    Parameters
    ----------
    db : pipeline.db.Database
    config : pipeline.config.Config
    rules : list of str, optional
        Rule ids (default: all validation rules).
    gemarkung : str, optional
        Only parcels of this Gemarkungsnummer (with their borders to the neighbours).
    scheduler : str, optional
        Dask scheduler (see :func:`pipeline.validation.partitions.run_partitions`).
    private : bool
        Count and show owner findings (needs the owner-data role).
    touched : list of str, optional
        Validate only what these objects can change (the gml_ids an import run delivered or
        ended: :mod:`pipeline.validation.scope`); findings elsewhere keep their status.

    Returns
    -------
    ValidationResult
    """
    started = time.monotonic()
    available = of_kind("stage", "sql", "owner")
    rules = list(rules or sorted(available))
    unknown = [r for r in rules if r not in available]
    if unknown:
        raise UsageError(f"unknown or non-validation rules {', '.join(unknown)}; choose from "
                         f"{', '.join(sorted(available))}")
    if gemarkung:
        from pipeline.views import resolve_district

        with db.connect() as conn:
            gemarkung = resolve_district(conn, gemarkung)
    else:
        gemarkung = None
    values = params(config)
    if private:
        with db.connect() as conn:
            if not stored.may_see_owners(conn):
                raise UsageError("--private shows owner data: it needs the role "
                                 "kataster_eigentum or kataster_admin")
    if touched is not None:
        if gemarkung:
            raise UsageError("a validation is scoped to a Gemarkung or to a run's objects, "
                             "not both")
        return _validate_touched(db, rules, values, private, touched, started,
                                 config["database.lock_timeout"])
    stage_names = _stage_names(rules)
    # The workers first: forked before this process opens a connection (local_workers).
    with local_workers(scheduler if stage_names else "synchronous") as workers, \
            db.connect(autocommit=True) as conn, \
            Run(conn, "validate", {"rules": rules, "gemarkung": gemarkung, "params": values},
                config["database.lock_timeout"]) as run:
        partitions, tiled = partitions_of(conn, gemarkung)
        # The set-based rules run in the database while the partitions run in the workers.
        with ThreadPoolExecutor(1) as pool:
            in_database = pool.submit(_database_rules, db, rules, values, gemarkung)
            t = time.monotonic()
            found = run_partitions(db.url, partitions, stage_names, values, scheduler, tiled,
                                   workers)
            log.info("%d partitions in %.1f s", len(partitions), time.monotonic() - t)
            found += in_database.result()[0]
        if {"coverage.gap", "coverage.overlap"} & set(rules):
            rules = sorted(set(rules) | {"coverage.precision"})
        found = [f for f in dedupe(found) if f.rule in rules]
        with conn.transaction():
            stored.store(conn, run.id, found)
            fixed = stored.mark_fixed(conn, run.id, rules, gemarkung)
            stored.with_ids(conn, found)
            counts = stored.counts(found, private)
            run.finish("committed", counts=counts, findings=counts["by_severity"])
    return ValidationResult(run.id, found, counts, fixed, round(time.monotonic() - started, 3),
                            private)


def _validate_touched(db: Database, rules: list[str], values: dict[str, Any], private: bool,
                      touched: Sequence[str], started: float, lock_timeout: float
                      ) -> ValidationResult:
    """The validation of what the objects ``touched`` can change (:mod:`.scope`): the stages
    on the parcels around them in this process, the SQL rules on them, the owner rules on the
    owner objects they reach."""
    rules = [r for r in rules if r not in UNSCOPED]
    stage_names = _stage_names(rules)
    with db.connect(autocommit=True) as conn, \
            Run(conn, "validate", {"rules": rules, "touched": len(touched), "params": values},
                lock_timeout) as run:
        scope = Scope.load(conn, touched)
        with ThreadPoolExecutor(1) as pool:
            in_database = pool.submit(_database_rules, db, rules, values, None, scope.ids)
            t = time.monotonic()
            found = validate_scope(conn, scope, stage_names, values)
            log.info("stages on %d parcels near %d touched in %.2f s", len(scope.near),
                     len(scope.parcels), time.monotonic() - t)
            more, scope.owner = in_database.result()
            found += more
        found = [f for f in dedupe(found) if f.rule in rules]
        with conn.transaction():
            stored.store(conn, run.id, found)
            fixed = stored.mark_fixed_keys(conn, run.id, scope.stored_inside(conn, rules))
            stored.with_ids(conn, found)
            counts = stored.counts(found, private)
            run.finish("committed", counts=counts, findings=counts["by_severity"])
    return ValidationResult(run.id, found, counts, fixed, round(time.monotonic() - started, 3),
                            private)


def _stage_names(rules: Sequence[str]) -> list[str]:
    """The partition stages that check ``rules``, in order; only the stages asked for run
    (``--rules geometry.invalid,coverage.overlap`` neither unions parcels nor looks for gaps).
    coverage.precision counts the dust of both coverage stages."""
    wanted = {RULES[r].source for r in rules if RULES[r].kind == "stage"}
    if "coverage.precision" in rules:
        wanted |= {"overlap", "gap"}
    return [s.name for s in PARTITION_STAGES if s.name in wanted]


def _database_rules(db: Database, rules: Sequence[str], values: dict[str, Any],
                    gemarkung: str | None, touched: Sequence[str] | None = None
                    ) -> tuple[list[Finding], set[str] | None]:
    """Findings of the SQL rules and of the owner rules, on a connection of their own, and
    (with ``touched``) the owner objects the owner rules looked at."""
    with db.connect(autocommit=True) as conn:
        t = time.monotonic()
        found = sql_findings(conn, [r for r in rules if RULES[r].kind == "sql"], values,
                             gemarkung, touched)
        log.info("SQL rules in %.1f s", time.monotonic() - t)
        t = time.monotonic()
        owner, ids = owner_findings_in_scope(
            conn, [r for r in rules if RULES[r].kind == "owner"], touched)
        log.info("owner rules in %.1f s", time.monotonic() - t)
    return found + owner, ids
