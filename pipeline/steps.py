"""Named steps the core runs on a delivery, before its merge (on the staged rows) and after.

An importer only reads: it names the steps its source needs (``ImportSource.steps``) and hands
over what they work on as data (``ImportSource.operations``). The run executes the named steps
in the order declared here, checks their declared dependencies, times each one (``-v`` prints
the times) and collects their findings. The SQL of the steps lives in ``schemas/sql/steps/``.

=====================  ======  ===============================================================
step                   phase   what it does
=====================  ======  ===============================================================
check_operations       staged  every Delete/Replace/Update target exists (stored or delivered)
duplicate_keys         staged  parcels of a flat delivery sharing one Flurstückskennzeichen
apply_operations       merged  Delete/Update close (history) or remove the versions they name
lage_text              merged  address text of the parcels the run touched (after operations)
ownership              merged  resolved owners of every current parcel (after operations)
karte_cog              merged  scanned maps warped into Cloud-Optimized GeoTIFFs, checked
=====================  ======  ===============================================================
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pipeline.errors import PluginError, SourceError
from pipeline.validation.findings import Finding
from pipeline.validation.sql_rules import duplicates
from pipeline.views import street_ids
from schemas import queries, sql_text

if TYPE_CHECKING:
    from pipeline.loader import Loader

log = logging.getLogger(__name__)
QUERIES = queries("steps")

PHASES = ("staged", "merged")
# A run that changed this share or more of a table's rows (a first import) counts as having
# changed all of it: its statistics are renewed, what is derived from it is recomputed whole.
LARGE_SHARE = 0.1


@dataclass
class Context:
    """What a step works on: the run's loader (connection, run id and time, staged tables,
    history mode) and the delivery's update operations."""

    loader: Loader
    operations: list = field(default_factory=list)
    rasters: list = field(default_factory=list)
    config: Any = None
    # Files a step wrote beside their destination: (temporary, final). The run moves them into
    # place once it has committed, and removes them if it fails.
    files: list = field(default_factory=list)
    # Street names (their ids, Flurkennzeichen:Straße; None: a parcel without a complete
    # Flurkennzeichen) of parcels a step changed beyond what the delivery carried (their
    # address text, before and after): the street names follow.
    strassen: set = field(default_factory=set)
    # The merge's counts per table ({"inserted": n, "closed": n, ...}), once merged.
    merge: dict = field(default_factory=dict)

    @property
    def conn(self):
        """The run's connection (inside its transaction)."""
        return self.loader.conn

    def touched(self, tables):
        """{table: (its staging table or None, the ids the delivery's operations ended)} for
        each of ``tables``: the objects the run delivered or ended there."""
        return {table: (self.loader.staged[table].stage if table in self.loader.staged else None,
                        sorted({op.gml_id for op in self.operations if op.table == table
                                and op.kind in ("delete", "update")}))
                for table in tables}

    def large_change(self, table):
        """True if the run changed :data:`LARGE_SHARE` or more of ``table``'s estimated rows (a
        table never analysed counts as empty)."""
        m = self.merge.get(table, {})
        changed = m.get("inserted", 0) + m.get("closed", 0)
        if not changed:
            return False
        estimate = self.conn.execute(QUERIES["estimated_rows"], {"table": table}).fetchone()[0]
        return changed >= LARGE_SHARE * max(estimate, 0)

    def touched_ids(self, tables):
        """The gml_ids of the objects the run delivered or ended in ``tables``."""
        return ids_of(self.conn, self.touched(tables))


def ids_of(conn, touched):
    """The gml_ids in ``touched`` ({table: (staging table or None, ended ids)}, as
    :meth:`Context.touched` gives it): delivered and ended, sorted."""
    ids = set()
    for stage, ended in touched.values():
        ids.update(ended)
        if stage:
            ids.update(i for (i,) in conn.execute(
                sql.SQL(QUERIES["staged_ids"]).format(stage=sql.Identifier(stage))))
    return sorted(ids)


@dataclass(frozen=True)
class Step:
    """A registered step: its name, phase, the steps that must run before it, its function."""

    name: str
    phase: str
    run: Callable[[Context], list]
    after: tuple = ()


STEPS: dict[str, Step] = {}


def step(name, phase, after=()):
    """Register the decorated function as the step ``name`` of ``phase``; ``after`` names the
    steps that must have run before it when both are asked for."""
    assert phase in PHASES

    def register(fn):
        STEPS[name] = Step(name, phase, fn, tuple(after))
        return fn
    return register


def check(names):
    """Refuse unknown step names and steps whose declared dependencies are not asked for."""
    unknown = sorted(set(names) - STEPS.keys())
    if unknown:
        raise PluginError(f"unknown import step(s) {', '.join(unknown)}; known: "
                          f"{', '.join(STEPS)}")
    for name in names:
        missing = [dep for dep in STEPS[name].after if dep not in names]
        if missing:
            raise PluginError(f"import step {name} needs {', '.join(missing)} to run before it")


def run(names, phase, ctx):
    """Run the steps of ``phase`` among ``names`` in declared order; returns their findings."""
    check(names)
    findings = []
    for s in STEPS.values():
        if s.name in names and s.phase == phase:
            started = time.monotonic()
            findings.extend(s.run(ctx))
            log.info("step %s: %.2f s", s.name, time.monotonic() - started)
    return findings


def _table(name):
    return sql.Identifier(*name.split("."))


@step("check_operations", "staged")
def check_operations(ctx):
    """Every Replace/Delete/Update target must exist, stored or in this delivery; a missing one
    fails the run, unless the operation says safeToIgnore (then: a finding)."""
    ops = ctx.operations
    if not ops:
        return []
    conn = ctx.conn
    conn.execute(QUERIES["create_operations"])
    with conn.cursor() as cur:
        cur.executemany(QUERIES["add_operation"], [
            {"n": i, "table": op.table, "gml_id": op.gml_id, "beginnt": op.beginnt}
            for i, op in enumerate(ops)])
    missing: list[Any] = []
    for (tbl,) in conn.execute(QUERIES["operation_tables"]).fetchall():
        staged = ctx.loader.staged.get(tbl)
        in_stage = sql.SQL(sql_text("steps/check_operations_in_stage.sql")).format(
            stage=sql.Identifier(staged.stage)) if staged else sql.SQL("")
        rows = conn.execute(sql.SQL(sql_text("steps/check_operations.sql")).format(
            target=_table(tbl), in_stage=in_stage), (tbl,)).fetchall()
        missing.extend(ops[n] for (n,) in rows)
    findings, fatal = [], []
    for op in missing:
        if op.safe:
            findings.append(Finding("update.target_missing", op.gml_id,
                                    f"{op.src}: {op.kind} of {op.objektart} {op.target}: the "
                                    "target is not stored; ignored (safeToIgnore=true)"))
        else:
            fatal.append(op)
    if fatal:
        listed = ", ".join(f"{op.kind} {op.objektart} {op.target}" for op in fatal[:20])
        more = f" and {len(fatal) - 20} more" if len(fatal) > 20 else ""
        raise SourceError(fatal[0].src, f"{len(fatal)} update targets are not in the database: "
                                        f"{listed}{more}",
                          hint="import the earlier deliveries first; nothing was committed, so "
                               "the database stays in step with the authority")
    return findings


@step("duplicate_keys", "staged")
def duplicate_keys(ctx):
    """Parcels of this delivery that share one Flurstückskennzeichen (kept, reported)."""
    staged = ctx.loader.staged.get("kataster.ax_flurstueck")
    if staged is None:
        return []
    return duplicates(ctx.conn, sql.Identifier(staged.stage))


@step("apply_operations", "merged")
def apply_operations(ctx):
    """wfs:Delete closes the named version (history) or removes it; wfs:Update closes it at
    the ``endet`` it gives. (Replace needs nothing here: the merge closes what it replaces.)"""
    loader = ctx.loader
    statement = sql_text("steps/close_version.sql" if loader.history
                         else "steps/delete_version.sql")
    for op in ctx.operations:
        if op.kind not in ("delete", "update"):
            continue
        version = sql.SQL(QUERIES["named_version" if op.beginnt is not None
                                  else "open_version"])
        when = op.ends_at.isoformat() if op.ends_at is not None else loader.run_ts
        loader.conn.execute(sql.SQL(statement).format(target=_table(op.table), version=version),
                            {"g": op.gml_id, "b": op.beginnt, "t": when, "run": loader.run_id,
                             "anlass": op.anlass})
    return []


@step("lage_text", "merged", after=("apply_operations",))
def lage_text(ctx):
    """Address text (``lage``) of the parcels from their Lagebezeichnungen: of those the run
    touched and those naming a Lagebezeichnung it changed (one index look-up each), or, where
    it changed a large share of the Lagebezeichnungen (a first import), of every parcel in one
    pass."""
    if ctx.large_change("kataster.ax_lagebezeichnung"):
        ctx.conn.execute(sql_text("steps/lage_text_all.sql"), {"run": ctx.loader.run_id})
        ctx.strassen.add(None)          # any street name may have changed: refilled whole
        return []
    deleted = sorted({op.gml_id for op in ctx.operations if op.kind in ("delete", "update")
                      and op.table == "kataster.ax_lagebezeichnung"})
    changed = ctx.conn.execute(sql_text("steps/lage_text.sql"),
                               {"run": ctx.loader.run_id, "deleted": deleted}).fetchall()
    ctx.strassen.update(street_ids((flur, streets) for flur, current, streets in changed
                                   if current))
    return []


@step("ownership", "merged", after=("apply_operations",))
def ownership(ctx):
    """The resolved owners of the parcels the run may have changed, kept with the run where
    they did change (every current parcel on a database's first resolution)."""
    from pipeline import ownership as resolved

    # Without history the versions a run replaced are gone: resolve all.
    touched = ctx.touched(resolved.TABLES) if ctx.loader.history else None
    return resolved.resolve(ctx.conn, ctx.loader.run_id, touched)


@step("karte_cog", "merged")
def karte_cog(ctx):
    """Each scan of the delivery warped into its Cloud-Optimized GeoTIFF (written beside its
    place, moved there when the run commits); its findings (footprint outside the claimed
    district, accuracy below the warning level)."""
    from pipeline import rasters

    return rasters.write_all(ctx)
