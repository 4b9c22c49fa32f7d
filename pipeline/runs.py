"""Import runs: the import lock, provenance records, one transaction per run.

:func:`run_import` is the single entry point that the CLI, the Python API and the tests use.
"""

from __future__ import annotations

import getpass
import json
import logging
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from pipeline import portions as nba_portions
from pipeline import rasters, registry, steps
from pipeline.errors import DatabaseError, KatasterError, LockTimeout, SourceError, UsageError
from pipeline.loader import Loader
from pipeline.parallel import pipelined
from pipeline.validation import findings
from pipeline.views import (
    HOUSE_NUMBER_SOURCES,
    refresh_derived,
    touched_districts,
    touched_house_numbers,
)
from schemas import queries

QUERIES = queries("runs")

log = logging.getLogger(__name__)

# One advisory lock serialises all imports into a database ("KATASTER" as a number).
IMPORT_LOCK = 0x4B41544153544552 & 0x7FFFFFFFFFFFFFFF


def _holder(conn):
    row = conn.execute(QUERIES["lock_holder"], {"lock": IMPORT_LOCK}).fetchone()
    if not row:
        return "another import"
    return f"another import (server pid {row[0]}, connected since {row[2]:%Y-%m-%d %H:%M:%S})"


def acquire_import_lock(conn, timeout, notify=None, poll=0.25, shared=False):
    """Take the import lock, waiting up to ``timeout`` seconds. Returns seconds waited.

    Imports and repairs take it exclusively; validations take it shared (several may run at
    once, but no import or repair changes the data under them)."""
    start = time.monotonic()
    told = False
    take = QUERIES["try_lock_shared" if shared else "try_lock"]
    while True:
        if conn.execute(take, {"lock": IMPORT_LOCK}).fetchone()[0]:
            waited = time.monotonic() - start
            if told and notify:
                notify(f"got the import lock after waiting {waited:.1f} s")
            return waited
        if not told and notify:
            notify(f"waiting for the import lock held by {_holder(conn)} "
                   f"(up to {timeout:g} s, database.lock_timeout)")
            told = True
        if time.monotonic() - start >= timeout:
            raise LockTimeout(
                f"gave up after {timeout:g} s waiting for the import lock held by "
                f"{_holder(conn)}; nothing was imported (try again later, or raise "
                "database.lock_timeout)"
            )
        time.sleep(poll)


WHAT = {"import": "the import process", "validate": "the validation process",
        "repair": "the repair process", "rebuild": "the rebuild"}


def mark_dead_runs(conn, kind):
    """Mark this kind's runs still marked running whose session is gone as aborted."""
    conn.execute(QUERIES["mark_dead_runs"], {
        "kind": kind,
        "error": f"{WHAT[kind]} ended without committing (killed, crashed or lost its "
                 "connection); nothing of it was kept"})


class Run:
    """The one lifecycle of a run of kind import, validate or repair, on an autocommit
    connection: the import lock (exclusive; shared for validations, which may run side by
    side), the runs of this kind left ``running`` by dead processes marked ``aborted``, the
    record with the server process, and its end: :meth:`finish` inside the work's transaction
    (so the status commits with the work), or ``failed`` with the error when the block raises
    (Ctrl-C included). A lost connection leaves the record to the next run of the kind, which
    marks it aborted.

    Used as ``with Run(conn, "validate", options, timeout) as run: ... run.finish(...)``.
    """

    def __init__(self, conn, kind, options, lock_timeout, importer=None, transformation=None,
                 notify=None):
        self.conn, self.kind, self.notify = conn, kind, notify
        self.timeout = lock_timeout
        self.importer = importer if kind == "import" else None
        self.options, self.transformation = options, transformation
        self.id = self.started = None
        self.waited = 0.0
        self.finished = False

    def __enter__(self):
        conn = self.conn
        conn.execute(QUERIES["name_session"], {"name": f"kataster {self.kind}"})
        try:  # let the server drop a dead client quickly (also for external servers)
            conn.execute(QUERIES["check_client"])
        except psycopg.Error:
            pass
        self.waited = acquire_import_lock(conn, self.timeout, self.notify,
                                          shared=self.kind == "validate")
        # Imports and repairs hold the lock exclusively, validations share it: any run of our
        # kind still marked running belongs to a dead process (never a live one of another).
        mark_dead_runs(conn, self.kind)
        self.id, self.started = conn.execute(QUERIES["record"], {
            "os_user": getpass.getuser(), "kind": self.kind, "importer": self.importer,
            "options": json.dumps(self.options, default=str),
            "transformation": self.transformation}).fetchone()
        return self

    def finish(self, status, counts=None, findings=None, error=None, transformation=None):
        """Record the run's end (committed, skipped or failed) with its counts."""
        self.conn.execute(QUERIES["finish"], {
            "status": status, "counts": None if counts is None else json.dumps(counts),
            "findings": None if findings is None else json.dumps(findings), "error": error,
            "transformation": transformation, "run": self.id})
        self.finished = True

    def __exit__(self, kind, err, tb):
        if err is not None and not self.finished and self.id is not None and \
                not (self.conn.broken or self.conn.closed):
            message = str(err) if isinstance(err, KatasterError | psycopg.Error) else repr(err)
            self.finish("failed", error=message)
        return False


def choose_importer(paths, fmt="auto"):
    """The importer for these paths: named by ``fmt``, or the first whose ``detect`` agrees."""
    from importers.sources import refuse_non_data

    refuse_non_data(paths)
    if fmt != "auto":
        return registry.load("importer", fmt)()
    for name in registry.names("importer"):
        importer = registry.load("importer", name)()
        if all(importer.detect(Path(p)) for p in paths):
            return importer
    raise SourceError(paths[0], "no importer recognises this input",
                      hint=f"name one with --format ({', '.join(registry.names('importer'))})")


def _already_imported(conn, sha256s):
    rows = conn.execute(QUERIES["already_imported"], {"sha256s": list(sha256s)}).fetchall()
    return dict(rows)


def run_import(db, config, paths, fmt="auto", options=None, force=False, history=None,
               notify=None, progress=None):
    """Import source files into the database as one run (all or nothing).

    Parameters
    ----------
    db : pipeline.db.Database
    config : pipeline.config.Config
    paths : list of str or Path
        Files (or directories, for importers that take them).
    fmt : str
        Importer name, or ``"auto"`` to detect it.
    options : dict, optional
        Importer options (``profile``, ``srs``, ...).
    force : bool
        Import even if every file was imported before (same sha256).
    history : bool, optional
        Keep old versions (default: configuration ``history``).
    notify : callable, optional
        Called with one-line progress messages (lock waits).
    progress : callable, optional
        Called with the number of objects after each batch.

    Returns
    -------
    dict
        The summary described by ``schemas/import-summary.schema.json``.
    """
    started = time.monotonic()
    options = dict(options or {})
    history = config["history"] if history is None else history
    if not paths:
        raise UsageError("no input files given")
    importer = choose_importer(paths, fmt)
    source = importer.open([Path(p) for p in paths], options, config)
    try:
        steps.check(source.steps)       # a plug-in naming an unknown step fails before any work
    except BaseException:
        source.close()
        raise
    summary = {"run_id": None, "status": None, "importer": importer.name,
               "profile": source.options.get("profile"),
               "ignored_layers": source.options.get("ignored_layers", []),
               "transformation": source.transformation,
               "files": [{"path": str(f.path), "sha256": f.sha256, "status": None}
                         for f in source.files],
               "objects": {}, "findings": {"error": 0, "warning": 0, "info": 0},
               "merge": {}, "waited_for_lock": 0.0, "seconds": None}

    try:
        return _run(db, config, importer, source, summary, options, fmt, history, force, started,
                    notify, progress)
    except KatasterError as err:
        err.summary = summary
        raise
    finally:
        source.close()


def _run(db, config, importer, source, summary, options, fmt, history, force, started, notify,
         progress):
    run_options = {**options, "format": fmt, "history": history, "force": force}
    with db.connect(autocommit=True) as conn, \
            Run(conn, "import", run_options, config["database.lock_timeout"], importer.name,
                source.transformation, notify) as run:
        summary["waited_for_lock"] = round(run.waited, 3)
        run_id, run_ts = run.id, run.started
        summary["run_id"] = run_id
        done = _already_imported(conn, [f.sha256 for f in source.files])
        if not force and len(done) == len(source.files):
            for f in summary["files"]:
                f["status"] = "skipped"
            _finish(run, "skipped", summary, source.files, None)
            summary["status"] = "skipped"
            summary["already_imported_in_run"] = max(done.values())
            summary["seconds"] = round(time.monotonic() - started, 3)
            return summary
        ctx = None
        try:
            with conn.transaction():
                conn.execute(QUERIES["durable_commit"])
                loader = Loader(conn, run_id, run_ts.isoformat(), source.source,
                                source.versioned, history)
                loader.prepare(source.tables)
                # Reading and encoding run in a thread (or, for sources that cut their files
                # into pieces, in worker processes) while this one COPYs: the server parses
                # one batch while the next ones are being read.
                encoder = loader.encoder()
                stream = source.encoded(encoder) if source.encoded else \
                    pipelined(source.batches(), encoder.encode)
                for encoded in stream:
                    loader.copy(encoded)
                    if progress and encoded is not None:
                        progress(encoded.rows)
                log.info("staged %s objects in %.2f s", sum(loader.objects.values()),
                         time.monotonic() - started)
                portions = source.options.get("portions") or []
                if portions:
                    source.findings.extend(nba_portions.check(conn, portions,
                                                              options.get("allow_older")))
                ctx = steps.Context(loader, source.operations, source.rasters, config)
                source.findings.extend(steps.run(source.steps, "staged", ctx))
                log.info("checks done at %.2f s", time.monotonic() - started)
                summary["merge"] = ctx.merge = {k: v for k, v in loader.merge().items()}
                # Statistics first (they commit with the run), so that what follows (the
                # importer's steps after the merge, such as the ownership walk, the district
                # maps, the validation after the import and a user's first query) is planned
                # on the new data: without them the maps took 3 s for any size of delivery
                # and the ownership walk of 95 MB 11.7 s instead of 1.1 s.
                log.info("merged into the targets at %.2f s", time.monotonic() - started)
                _analyze(ctx)
                log.info("changed tables analysed at %.2f s", time.monotonic() - started)
                source.findings.extend(steps.run(source.steps, "merged", ctx))
                if portions:
                    nba_portions.record(conn, run_id, portions)
                if source.describe_transformation:
                    summary["transformation"] = source.describe_transformation()
                log.info("merged at %.2f s", time.monotonic() - started)
                summary["objects"] = dict(sorted(loader.objects.items()))
                for f in source.findings:
                    summary["findings"][f.severity] += 1
                findings.store(conn, run_id, source.findings)
                for f in summary["files"]:
                    f["status"] = "imported"
                # The materialised name lists and district maps follow the data.
                districts = _districts(conn, ctx)
                refresh_derived(conn, districts, _house_numbers(conn, ctx))
                log.info("derived maps refreshed at %.2f s", time.monotonic() - started)
                summary["touched"] = _touched(ctx, summary["merge"], districts)
                _finish(run, "committed", summary, source.files, None)
        except (KatasterError, psycopg.Error) as err:
            rasters.discard(ctx)
            for f in summary["files"]:
                f["status"] = "failed"
            if conn.broken or conn.closed:
                # The server stopped or dropped us: nothing of the run was committed, and the
                # run's record can only be marked by the next import (as aborted).
                _acknowledge(None, config, run_id, source, summary, False,
                             "Verbindung zur Datenbank verloren")
                raise DatabaseError(
                    f"the connection to the database was lost during the import "
                    f"({getattr(err, 'sqlstate', None) or type(err).__name__}: "
                    f"{str(err).strip().splitlines()[0] if str(err).strip() else 'closed'}); "
                    "nothing of it was kept, and the next import marks run "
                    f"{run_id} aborted") from None
            _finish(run, "failed", summary, source.files, str(err))
            _acknowledge(conn, config, run_id, source, summary, False, str(err))
            raise
        except BaseException as err:
            # KeyboardInterrupt and unexpected bugs: record and re-raise unchanged.
            rasters.discard(ctx)
            for f in summary["files"]:
                f["status"] = "failed"
            _finish(run, "failed", summary, source.files, repr(err))
            raise
        # Committed: the files the steps wrote beside their places move there.
        rasters.publish(ctx)
        _acknowledge(conn, config, run_id, source, summary, True,
                     "Lieferung ohne Fehlermeldung übernommen")
    log.info("committed at %.2f s", time.monotonic() - started)
    summary["status"] = "committed"
    summary["seconds"] = round(time.monotonic() - started, 3)
    return summary


def _acknowledge(conn, config, run_id, source, summary, ok, message):
    """The acknowledgement (AX_NBAQuittierung) of each NBA delivery in this run, written after
    the commit or the failure, and the parts of its deliveries still missing."""
    portions = source.options.get("portions") or []
    if not portions:
        return
    directory = config["import.acknowledgement_dir"] or \
        str(Path(config["paths.output_dir"]) / "quittierungen")
    missing = nba_portions.missing_parts(conn) if conn is not None else {}
    summary["acknowledgements"] = [str(p) for p in nba_portions.acknowledge(
        directory, run_id, portions, ok, message, missing)]
    profiles = {nba_portions.portion_key(p)[0] for _, p in portions}
    summary["missing_parts"] = [{"profilkennung": prof, "datum": datum, "parts": parts}
                                for (prof, datum), parts in missing.items() if prof in profiles]


def _analyze(ctx):
    """Statistics for the tables the run changed materially (inside the run's transaction), so
    that what follows is planned on the new data rather than on none; autovacuum would get
    there only minutes after the commit. A table whose rows changed by less than a tenth keeps
    its statistics (ANALYZE of a large table with geometries takes seconds, whatever the
    size of the change; autovacuum analyses it once enough has changed)."""
    for table in ctx.merge:
        if ctx.large_change(table):
            ctx.conn.execute(sql.SQL(QUERIES["analyze"]).format(
                table=sql.Identifier(*table.split("."))))


# Deliveries of these change district boundaries or names that any Flur map may show.
DISTRICT_TABLES = ("kataster.bezirk", "kataster.ax_katalog")


def _districts(conn, ctx):
    """What this run changed of the Flur map and the street names (:class:`Districts`: the
    pieces and streets of the parcels it delivered or ended, before and after, and the streets
    of parcels whose address text its steps changed, ``ctx.strassen``); None where any Flur's
    may have changed: imported district boundaries or names, a flat delivery (which ends what
    it does not deliver), a run without history (whose replaced versions are gone), a parcel
    without a complete Flurkennzeichen."""
    loader = ctx.loader
    tables = {t for t, staged in loader.staged.items() if staged.rows} | \
        {op.table for op in ctx.operations}
    if not (loader.versioned and loader.history) or tables & set(DISTRICT_TABLES) \
            or None in ctx.strassen:
        return None
    stage, ended = ctx.touched(["kataster.ax_flurstueck"])["kataster.ax_flurstueck"]
    return touched_districts(conn, loader.run_id, stage, ended, ctx.strassen)


# Above this many changed versions a run is validated whole (reading the scope of every
# object would cost more than the full validation it replaces); so is a first import
# (pipeline.api.import_files).
SCOPE_MAX = 50_000


def _touched(ctx, merge, districts):
    """The ids of every object the run delivered or ended, for a validation of what it changed
    (:func:`pipeline.validation.run.validate`, ``touched``); None where a full validation is
    needed: wherever the Flur maps were refilled whole (``districts`` None: district boundaries,
    flat deliveries, runs without history) and where more than :data:`SCOPE_MAX` versions
    changed."""
    changed = sum(m.get("inserted", 0) + m.get("closed", 0) for m in merge.values())
    if districts is None or changed > SCOPE_MAX:
        return None
    return ctx.touched_ids(sorted(set(ctx.loader.staged) | {op.table for op in ctx.operations}))


def _house_numbers(conn, ctx):
    """The ids of the house numbers this run may have changed, or None where any may have (a
    flat delivery, a run without history) or where a tenth or more of a table they are drawn
    from changed (a first import: refilling them is cheaper than following each change)."""
    loader = ctx.loader
    tables = HOUSE_NUMBER_SOURCES.values()
    if not (loader.versioned and loader.history) or \
            any(ctx.large_change(t) for t in tables):
        return None
    return touched_house_numbers(conn, loader.run_id, ctx.touched(tables))


def _finish(run, status, summary, files, error):
    run.finish(status, {"objects": summary["objects"], "merge": summary["merge"]},
               summary["findings"], error, summary.get("transformation"))
    with run.conn.cursor() as cur:
        cur.executemany(QUERIES["record_file"], [
            {"run": run.id, "path": str(f.path.resolve()), "size": f.size, "sha256": f.sha256,
             "status": s["status"]} for f, s in zip(files, summary["files"], strict=True)])


def rebuild(db, lock_timeout=60.0):
    """Recompute what the runs keep scoped to their change, whole and in one run of kind
    ``rebuild``: the ownership resolution of every current parcel (recording the parcels whose
    owners differ from the recorded ones; the kept an references refilled first) and every
    derived map. Returns the run's summary."""
    from pipeline import ownership

    started = time.monotonic()
    with db.connect(autocommit=True) as conn, Run(conn, "rebuild", {}, lock_timeout) as run:
        with conn.transaction():
            found = ownership.resolve(conn, run.id)
            findings.store(conn, run.id, found)
            owners = conn.execute(QUERIES["owner_rows_of_run"], {"run": run.id}).fetchone()[0]
            refresh_derived(conn)
            counts = {"eigentum_parcels": owners}
            run.finish("committed", counts=counts, findings=findings.counts(found, True))
    return {"run_id": run.id, "status": "committed", "counts": counts,
            "seconds": round(time.monotonic() - started, 3)}


def list_runs(db, limit=20):
    """The newest runs as dicts (id, started, finished, status, kind, importer (imports only),
    os_user, counts, findings, error, transformation, files)."""
    with db.connect() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(QUERIES["list"], {"limit": limit}).fetchall()


def missing_nba_parts(db):
    """{(profilkennung, datum): [part numbers]} of NBA deliveries applied only in part."""
    with db.connect() as conn:
        return nba_portions.missing_parts(conn)
