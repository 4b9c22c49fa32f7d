"""The ``kataster`` command: thin commands that resolve arguments and call one function.

Exit codes (README, "Exit codes"): 0 success (also "already imported"), 1 the operation failed
and nothing was committed, 2 usage error, 3 timed out waiting for the import lock,
4 validation found ``error`` findings under ``--strict``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import click

from pipeline import api
from pipeline.config import load_config, mask_url
from pipeline.errors import KatasterError, UsageError
from pipeline.views import LAYERS as VIEW_LAYERS

log = logging.getLogger("pipeline")


def _echo_json(data):
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _err(msg):
    click.secho(f"error: {msg}", err=True, fg="red")


class Context:
    def __init__(self, config_path, verbose, quiet):
        self.config_path = config_path
        self.verbose = verbose
        self.quiet = quiet
        self._config = None

    @property
    def config(self):
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def database(self, kind="owner", start=True):
        """The configured database for a kind of work (owner, reader, service, admin: which
        role the embedded cluster connects as; see pipeline.db.open_database)."""
        from pipeline.db import open_database

        return open_database(self.config, start=start, kind=kind)

    def say(self, msg):
        if not self.quiet:
            click.echo(msg, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Configuration file (default: $KATASTER_CONFIG or ./kataster.yaml).")
@click.option("-v", "--verbose", count=True, help="More output (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="kataster")
@click.pass_context
def cli(ctx, config_path, verbose, quiet):
    """Kataster: import ALKIS cadastre data into PostGIS, validate it, serve it."""
    level = logging.WARNING - 10 * verbose if not quiet else logging.ERROR
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config_path, verbose, quiet)


# -- db -----------------------------------------------------------------------------------------
@cli.group()
def db():
    """The database: embedded cluster lifecycle, or an external PostGIS."""


@db.command("up")
@click.pass_obj
def db_up(obj):
    """Create (once) and start the embedded PostGIS, or prepare the configured one: the only
    command that changes the schema (run by the administrator)."""
    from pipeline.db import set_up

    cfg = obj.config
    database, created, started = set_up(cfg)
    cluster = database.embedded
    if cluster is None:
        obj.say(f"prepared {database.masked_url()} (PostGIS enabled, migrations applied)")
        return
    if cluster.legacy:
        obj.say("note: this embedded cluster was made before Kataster separated its roles, so "
                "every command still connects as its superuser 'kataster'. To move to the "
                "separate roles: 'kataster db down', move the state directory aside, "
                "'kataster db up', and import again.")
    if not started:
        obj.say(f"the embedded database is already running on 127.0.0.1:{cluster.read_port()}")
    else:
        obj.say(("created and started" if created else "started")
                + f" the embedded database on 127.0.0.1:{cluster.read_port()} "
                  f"(data in {cluster.data_dir}, run by user {cluster.server_user})")


@db.command("down")
@click.pass_obj
def db_down(obj):
    """Stop the embedded PostGIS cleanly."""
    from pipeline.embedded import EmbeddedCluster

    cfg = obj.config
    if cfg["database.url"]:
        obj.say("a database URL is configured: nothing to stop (the server is not ours)")
        return
    cluster = EmbeddedCluster(cfg.state_dir)
    if cluster.exists() and cluster.stop():
        obj.say("stopped the embedded database")
    else:
        obj.say("the embedded database is not running")


@db.command("destroy")
@click.option("--yes", is_flag=True, help="Do not ask; needed when not run at a terminal.")
@click.pass_obj
def db_destroy(obj, yes):
    """Stop the embedded PostGIS and delete it with all its data (asks first)."""
    from pipeline.embedded import EmbeddedCluster

    cfg = obj.config
    if cfg["database.url"]:
        raise UsageError("a database URL is configured: that server is not ours to delete")
    cluster = EmbeddedCluster(cfg.state_dir)
    if not cluster.exists():
        raise UsageError(f"there is no embedded database in {cluster.state_dir}")
    where = f"{cluster.state_dir} (data in {cluster.data_dir})"
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"this deletes the embedded database in {where} with every "
                             "import; repeat with --yes to do it")
        click.confirm(f"Delete the embedded database in {where} with all its data?",
                      abort=True, err=True)
    cluster.destroy()
    obj.say(f"deleted the embedded database in {where}")


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def db_status(obj, as_json):
    """Say which database is used and whether it runs."""
    from pipeline.db import Database, libpq_url
    from pipeline.embedded import EmbeddedCluster
    from schemas.migrate import current

    cfg = obj.config
    if cfg["database.url"]:
        database = Database(libpq_url(cfg["database.url"]))
        try:
            revision, running = current(database.url), True
        except Exception:  # noqa: BLE001 - any connection failure means "not reachable"
            revision, running = None, False
        status = {"mode": "external", "running": running, "url": mask_url(database.url),
                  "port": None, "data_dir": None, "server_user": None, "revision": revision}
    else:
        cluster = EmbeddedCluster(cfg.state_dir)
        running = cluster.is_running()
        status = {"mode": "embedded", "running": running,
                  "url": cluster.url() if cluster.exists() else None,
                  "port": cluster.read_port() if cluster.exists() else None,
                  "data_dir": str(cluster.data_dir) if cluster.exists() else None,
                  "server_user": cluster.server_user,
                  "revision": current(cluster.url()) if running else None}
    if as_json:
        _echo_json(status)
    else:
        for k, v in status.items():
            click.echo(f"{k:12} {v}")
    if not status["running"]:
        sys.exit(1)


@db.command("url")
@click.option("--role", "kind", type=click.Choice(["owner", "reader", "service", "admin"]),
              default="owner", show_default=True,
              help="Which role's URI (on the embedded cluster: kataster, kataster_lesen, "
                   "kataster_dienst, kataster_su).")
@click.pass_obj
def db_url(obj, kind):
    """Print a libpq URI for psql (password via passfile, never printed)."""
    click.echo(obj.database(kind).url)


@db.command("service")
@click.option("--name", default="kataster", show_default=True, help="Name of the service.")
@click.option("--role", "kind", type=click.Choice(["reader", "owner", "service"]),
              default="reader", show_default=True,
              help="Whose connection (on the embedded cluster: kataster_lesen, kataster, "
                   "kataster_dienst; an external database: the configured URL).")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path),
              help="Service file (default: $PGSERVICEFILE or ~/.pg_service.conf).")
@click.pass_obj
def db_service(obj, name, kind, path):
    """Write a pg_service.conf entry for QGIS, GDAL and psql (no password in it) and print
    how to use it."""
    import os

    from pipeline.db import service_entry, write_service

    path = path or Path(os.environ.get("PGSERVICEFILE") or "~/.pg_service.conf")
    written = write_service(path, name, service_entry(obj.database(kind), name))
    click.echo(f"service={name}")
    obj.say(f"wrote the service {name!r} to {written}. QGIS: Layer > Add Layer > PostgreSQL > "
            f"New, Service: {name} (nothing else), Connect; GDAL: ogrinfo PG:service={name}; "
            f"psql service={name}"
            + ("" if str(written) == os.path.expanduser("~/.pg_service.conf") else
               f". This is not the default file: set PGSERVICEFILE={written} for them"))


# -- config ---------------------------------------------------------------------------------------
@cli.group()
def config():
    """The configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def config_show(obj, as_json):
    """Print the effective configuration, secrets masked."""
    import yaml

    data = obj.config.masked()
    if as_json:
        _echo_json(data)
    else:
        source = obj.config.source or "(no file: defaults and KATASTER_* variables)"
        click.echo(f"# effective configuration from {source}")
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


# -- import -----------------------------------------------------------------------------------------
@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="auto", show_default=True,
              help="Importer: auto, or one of the registered importers (see 'kataster versions').")
@click.option("--profile", default="auto", show_default=True,
              help="Mapping profile: auto, alkis-vereinfacht, or a YAML file.")
@click.option("--srs", help="Coordinate system of the data, e.g. EPSG:31466 (overrides the file's).")
@click.option("--encoding", help="Text encoding of the attributes, e.g. ISO-8859-1.")
@click.option("--force", is_flag=True, help="Import even if these files were imported before.")
@click.option("--no-history", is_flag=True, help="Replace changed objects instead of keeping versions.")
@click.option("--allow-older", is_flag=True,
              help="Apply an NBA delivery older than the newest applied one of its profile "
                   "(after a human decision).")
@click.option("--no-validate", is_flag=True,
              help="Skip the validation that runs after a committed import (validation.after_import).")
@click.option("--gcps", type=click.Path(dir_okay=False, path_type=Path),
              help="Scans: the ground control points (QGIS .points or CSV; default: beside the "
                   "scan).")
@click.option("--transformation", type=click.Choice(["polynomial1", "polynomial2", "polynomial3",
                                                     "tps"]),
              help="Scans: how the points map the scan (default: karten.transformation).")
@click.option("--sheet", "sheet", multiple=True, metavar="KEY=VALUE",
              help="Scans: the sheet's data: blatt (id), titel, kartenart, massstab, jahr, "
                   "gemarkung (6 digits), flur, quelle. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary.")
@click.pass_obj
def import_(obj, paths, fmt, profile, srs, encoding, force, no_history, allow_older, no_validate,
            gcps, transformation, sheet, as_json):
    """Import source files into the database as one run (all or nothing)."""
    from importers.scan import SHEET_OPTIONS

    options = {"profile": profile}
    if gcps:
        options["gcps"] = str(gcps)
    if transformation:
        options["transformation"] = transformation
    for item in sheet:
        key, sep, value = item.partition("=")
        if not sep or key not in SHEET_OPTIONS:
            raise UsageError(f"--sheet {item!r}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(SHEET_OPTIONS)}")
        options[key] = value
    if allow_older:
        options["allow_older"] = True
    if srs:
        from importers.crs import parse_crs
        from pipeline.errors import CRSError

        try:
            parse_crs(srs, "--srs")
        except CRSError as err:          # a mistyped option: a usage error (exit 2)
            raise UsageError(err.message) from None
        options["srs"] = srs
    if encoding:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UsageError(f"--encoding {encoding!r} is not a known text encoding (e.g. "
                             "UTF-8, ISO-8859-1, CP1252)") from None
        options["encoding"] = encoding
    started = time.monotonic()
    with _progress(obj, "importing") as advance:
        try:
            summary = api.import_files(
                list(paths), fmt=fmt, options=options, force=force,
                history=False if no_history else None,
                validate_after=False if no_validate else None, config=obj.config,
                database=obj.database(), notify=obj.say, progress=advance)
        except KatasterError as err:
            if as_json:
                summary = getattr(err, "summary", None) or {
                    "run_id": None, "files": [{"path": str(p), "sha256": None, "status": "failed"}
                                              for p in paths],
                    "objects": {}, "findings": {"error": 0, "warning": 0, "info": 0}}
                summary.update(status="failed", error=str(err),
                               seconds=round(time.monotonic() - started, 3))
                _echo_json(summary)
            raise
    if as_json:
        _echo_json(summary)
        return
    if summary["status"] == "skipped":
        obj.say(f"already imported (run {summary['already_imported_in_run']}); nothing changed. "
                "Use --force to import again.")
        return
    objects = ", ".join(f"{n} {k}" for k, n in summary["objects"].items())
    f = summary["findings"]
    obj.say(f"run {summary['run_id']} committed in {summary['seconds']:.1f} s: {objects}; "
            f"findings: {f['error']} error, {f['warning']} warning, {f['info']} info")
    for table, m in summary["merge"].items():
        obj.say(f"  {table}: {m['inserted']} new or changed, {m['unchanged']} unchanged, "
                f"{m['closed']} closed")
    if "changes" in summary:
        c = {k: v for k, v in summary["changes"].items() if k != "since_run"}
        obj.say(f"changes since run {summary['changes']['since_run']}: "
                + ", ".join(f"{n} {k}" for k, n in c.items()))
    for m in summary.get("missing_parts", []):
        obj.say(f"NBA delivery {m['profilkennung']} of {m['datum']}: parts "
                f"{', '.join(map(str, m['parts']))} not yet delivered")
    for path in summary.get("acknowledgements", []):
        obj.say(f"acknowledgement for the Katasterbehörde: {path}")
    if "validation" in summary:
        v = summary["validation"]
        obj.say(f"validation run {v['run_id']}: {v['error']} error, {v['warning']} warning, "
                f"{v['info']} info findings ('kataster findings list' shows them)")


class _progress:
    """A progress counter on stderr when it is a terminal; silent otherwise."""

    def __init__(self, obj, label):
        self.enabled = sys.stderr.isatty() and not obj.quiet
        self.label = label
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                            TextColumn("{task.completed:,} objects"), TimeElapsedColumn(),
                            transient=True)
        self.bar.start()
        task = self.bar.add_task(self.label, total=None)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()
        return False


# -- runs -----------------------------------------------------------------------------------------
@cli.command("runs")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def runs(obj, limit, as_json):
    """List import runs with status and counts."""
    from pipeline.runs import list_runs

    rows = list_runs(obj.database("reader"), limit)
    if as_json:
        _echo_json([{**r, "started": r["started"].isoformat(),
                     "finished": r["finished"].isoformat() if r["finished"] else None}
                    for r in rows])
        return
    for r in rows:
        objects = ", ".join(f"{n} {k}" for k, n in r["counts"].get("objects", {}).items())
        click.echo(f"{r['id']:>5}  {r['started']:%Y-%m-%d %H:%M:%S}  {r['status']:9}  "
                   f"{r['importer']:5}  {objects or '-'}")
        for path in r["files"]:
            click.echo(f"       {path}")
        if r["error"]:
            click.echo(f"       error: {r['error']}")
    from pipeline.runs import missing_nba_parts

    for (profil, datum), parts in missing_nba_parts(obj.database("reader")).items():
        click.echo(f"NBA delivery {profil} of {datum}: parts {', '.join(map(str, parts))} "
                   "not yet delivered")


# -- export -----------------------------------------------------------------------------------------
def _bbox(ctx, param, value):
    if value is None:
        return None
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter("expected minx,miny,maxx,maxy in EPSG:25832") from None
    if len(parts) != 4 or parts[0] >= parts[2] or parts[1] >= parts[3]:
        raise click.BadParameter("expected minx,miny,maxx,maxy with min < max")
    return tuple(parts)


def _exporter_names():
    from pipeline import registry

    return registry.names("exporter")


@cli.command("export")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(_exporter_names()))
@click.option("--layer", type=click.Choice(list(VIEW_LAYERS)),
              help="The public view to export (every format but qgis, which takes all).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--gemarkung", help="Gemarkungsnummer (4 digits).")
@click.option("--flur", type=int, help="Flurnummer.")
@click.option("--bbox", callback=_bbox, help="minx,miny,maxx,maxy in EPSG:25832.")
@click.option("--service", help="qgis: read the layers through this pg_service entry (see "
                                "'kataster db service') instead of a GeoPackage beside.")
@click.option("--jahr", type=int, help="karte: only the scanned maps of this year.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def export(obj, fmt, layer, out, gemarkung, flur, bbox, service, jahr, as_json):
    """Export a public view to a file, every layer as a QGIS project (FORMAT qgis), or the
    scanned maps of an area as one GeoTIFF (FORMAT karte)."""
    summary = api.export(fmt, out, layer=layer, gemarkung=gemarkung, flur=flur, bbox=bbox,
                         service=service, jahr=jahr, config=obj.config,
                         database=obj.database("reader"))
    if as_json:
        _echo_json(summary)
    else:
        where = summary["out"] if isinstance(summary["out"], str) else \
            " and ".join(summary["out"])
        what = (f"scanned maps ({', '.join(summary['sheets'])})" if "sheets" in summary else
                f"{layer} features" if layer else "features of all layers")
        obj.say(f"wrote {summary['features']} {what} to {where}")


# -- generate ---------------------------------------------------------------------------------------
@cli.command("generate")
@click.option("--parcels", type=click.IntRange(1), required=True, help="Number of parcels.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--format", "fmt", default="gpkg", show_default=True,
              type=click.Choice(["gpkg", "shp", "geojson", "fgb", "gml", "nas6", "nas7", "nba"]),
              help="ALKIS vereinfacht as a vector file, a NAS Bestandsdatenauszug (GID 6.0 or "
                   "7.1, with owners), or an NBA update for the extract of the same size and seed.")
@click.option("--srs", type=click.Choice(["utm", "gk"]), default="utm", show_default=True,
              help="NAS only: ETRS89/UTM32, or the legacy Gauß-Krüger variant (DHDN 3GK2).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output file (NAS: .xml or .xml.gz).")
@click.option("--city", type=click.Choice(["Mülheim", "Oberhausen"]), default="Mülheim",
              show_default=True, help="Where the sample lies (each city and seed has its own "
                                      "object ids).")
@click.option("--lean", is_flag=True,
              help="NAS only: parcels, buildings, addresses and owners only (very large "
                   "cities); without it the extract carries a real extract's type mix.")
@click.option("--nas-version", type=click.Choice(["6.0", "7.1"]), default="7.1",
              show_default=True, help="NBA only: the GeoInfoDok version of the update.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def generate(obj, parcels, seed, fmt, srs, out, city, lean, nas_version, as_json):
    """Write a deterministic synthetic Mülheim-like cadastre."""
    if fmt in ("nas6", "nas7"):
        from pipeline.synthetic.nas import write

        started = time.monotonic()
        res = write(parcels, out, version="6.0" if fmt == "nas6" else "7.1", seed=seed, srs=srs,
                    city=city, lean=lean)
        summary = {"out": str(out), "format": fmt, "parcels": parcels,
                   "buildings": None, "gemarkungen": 14, "fluren": None, "seed": seed,
                   "objects": res["objects"], "seconds": round(time.monotonic() - started, 3)}
    elif fmt == "nba":
        from pipeline.synthetic.nas import write_nba

        started = time.monotonic()
        res = write_nba(parcels, out, version=nas_version, seed=seed, city=city, lean=lean)
        summary = {"out": str(out), "format": fmt, "parcels": len(res["replaced"]),
                   "buildings": None, "gemarkungen": None, "fluren": None, "seed": seed,
                   "objects": len(res["replaced"]) + res["deleted"],
                   "seconds": round(time.monotonic() - started, 3)}
    else:
        from pipeline.synthetic.city import generate as run

        summary = run(parcels, out, fmt=fmt, seed=seed, city=city)
    if as_json:
        _echo_json(summary)
    elif "objects" in summary:
        obj.say(f"wrote {summary['objects']} NAS objects ({summary['parcels']} parcels) to "
                f"{summary['out']} ({summary['seconds']:.1f} s)")
    else:
        obj.say(f"wrote {summary['parcels']} parcels, {summary['buildings']} buildings in "
                f"{summary['gemarkungen']} Gemarkungen / {summary['fluren']} Fluren to "
                f"{summary['out']} ({summary['seconds']:.1f} s)")


# -- validate and findings ------------------------------------------------------------------------
@cli.command("validate")
@click.option("--rules", help="Comma-separated rule ids (default: all validation rules).")
@click.option("--gemarkung", help="Only this Gemarkungsnummer (its borders included).")
@click.option("--strict", is_flag=True, help="Exit with code 4 if any open error finding remains.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an HTML report (one file, German labels).")
@click.option("--findings", "findings_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the findings to a GeoPackage.")
@click.option("--scheduler", help="Dask scheduler: tcp://HOST:PORT, 'processes' (default) or "
                                  "'synchronous'.")
@click.option("--private", is_flag=True,
              help="Include owner-related findings in the outputs (needs the owner-data role).")
@click.pass_obj
def validate_cmd(obj, rules, gemarkung, strict, as_json, report, findings_out, scheduler,
                 private):
    """Check the stored cadastre; store, report and locate the findings."""
    from pipeline.errors import ValidationFailed
    from pipeline.validation.findings import summary_json, visible

    database = obj.database()
    result = api.validate(rules=rules.split(",") if rules else None, gemarkung=gemarkung,
                          scheduler=scheduler, private=private, config=obj.config,
                          database=database)
    shown = visible(result, private)
    if report:
        from exporters.findings import write_report

        write_report(database, result, report, gemarkung, findings=shown)
        obj.say(f"report: {report}")
    if findings_out:
        from exporters.findings import write_gpkg

        layers = write_gpkg(shown, findings_out)
        obj.say(f"findings GeoPackage: {findings_out} ({', '.join(f'{k} {v}' for k, v in layers.items() if v)})")
    if as_json:
        _echo_json(summary_json(result))
    else:
        sev = result.counts["by_severity"]
        obj.say(f"validation run {result.run_id} in {result.seconds:.1f} s: {sev['error']} error, "
                f"{sev['warning']} warning, {sev['info']} info; {result.fixed} earlier findings "
                "fixed")
        for rule_id, n in sorted(result.counts["by_rule"].items()):
            obj.say(f"  {rule_id:24} {n}")
    open_errors = [f for f in result.findings if f.severity == "error" and f.status == "open"]
    if strict and open_errors:
        raise ValidationFailed(f"{len(open_errors)} open error findings (--strict)")


@cli.command("repair")
@click.argument("finding_ids", nargs=-1, type=int)
@click.option("--max-area-change", type=float,
              help="Largest relative area change a repair may make "
                   "(default: validation.repair_max_area_change).")
@click.option("--yes", is_flag=True, help="Apply the acceptable repairs (without: only show them).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def repair_cmd(obj, finding_ids, max_area_change, yes, as_json):
    """Propose (and with --yes apply) repairs of invalid parcel geometries."""
    from pipeline.repair import apply, propose

    database = obj.database()
    limit = max_area_change if max_area_change is not None else \
        obj.config["validation.repair_max_area_change"]
    proposals = propose(database, limit, finding_ids)
    run_id = apply(database, proposals, obj.config["database.lock_timeout"]) \
        if yes and any(p.ok for p in proposals) else None
    data = {"run_id": run_id, "applied": bool(run_id), "proposals": [
        {"finding": p.finding_id, "gml_id": p.gml_id, "flurstueckskennzeichen":
         p.flurstueckskennzeichen, "ok": p.ok, "reason": p.reason,
         "area_delivered": round(p.delivered.area, 3), "area_repaired": round(p.repaired.area, 3)}
        for p in proposals]}
    if as_json:
        _echo_json(data)
        return
    for p in data["proposals"]:
        mark = "repair " if p["ok"] else "refused"
        click.echo(f"{mark}  finding {p['finding']}  {p['flurstueckskennzeichen']}  {p['reason']}")
    if not proposals:
        obj.say("no open geometry.invalid findings of current parcels")
    elif run_id:
        obj.say(f"applied {sum(p.ok for p in proposals)} repairs in run {run_id}; the delivered "
                "geometries are kept in kataster.repair_log")
    elif any(p.ok for p in proposals):
        obj.say("nothing changed; run again with --yes to apply the repairs marked 'repair'")


@cli.command("changes")
@click.argument("run_a", type=int)
@click.argument("run_b", type=int)
@click.option("--private", is_flag=True, help="Include owner changes (needs the owner-data role).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the changes to a GeoPackage (layer aenderungen).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def changes_cmd(obj, run_a, run_b, private, out, as_json):
    """Parcels added, removed, changed in geometry or area (or owners) from RUN_A to RUN_B."""
    from pipeline.changes import as_json as to_json
    from pipeline.changes import changes

    result = changes(obj.database(), run_a, run_b, private=private)   # reads the versions
    if out:
        from exporters.files import write_gpkg_layer

        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.unlink()
        frame = result["changes"]
        write_gpkg_layer(frame, out, "aenderungen", geometry_type="MultiPolygon",
                         promote_to_multi=True)
        obj.say(f"changes GeoPackage: {out} ({len(frame)} rows)")
    if as_json:
        _echo_json(to_json(result))
    else:
        counts = ", ".join(f"{n} {k}" for k, n in result["counts"].items())
        obj.say(f"changes from run {run_a} to run {run_b}: {counts}")


@cli.group()
def findings():
    """Work with stored findings: list, accept, reopen."""


@findings.command("list")
@click.option("--rule")
@click.option("--status", type=click.Choice(["open", "accepted", "fixed"]))
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--all", "show_all", is_flag=True, help="All matching findings (no limit).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def findings_list(obj, rule, status, limit, show_all, as_json):
    """List public findings."""
    from pipeline.validation.rules import RULES

    if rule and rule not in RULES:
        import difflib

        close = difflib.get_close_matches(rule, list(RULES), n=3)
        raise UsageError(f"unknown rule {rule!r}"
                         + (f"; did you mean {', '.join(close)}?" if close else "")
                         + f" (rules: {', '.join(sorted(RULES))})")
    from pipeline.validation import findings as stored

    with obj.database("reader").connect() as conn:
        data, total = stored.listing(conn, rule, status, None if show_all else limit)
    if as_json:
        _echo_json(data)
        return
    for d in data:
        click.echo(f"{d['id']:>6}  {d['severity']:7}  {d['status']:8}  {d['rule']:20}  "
                   f"{d['object'] or '-':18}  {d['message']}")
    if len(data) < total:
        obj.say(f"showing {len(data)} of {total} findings (--limit N or --all shows more)")


def _set_status(obj, ids, rule, reason, new, old):
    import getpass

    from pipeline.validation import findings as stored

    if not ids and not rule:
        raise click.UsageError("name finding ids or --rule")
    with obj.database().connect() as conn:
        if ids:
            unknown = stored.unknown_ids(conn, ids)
            if unknown:
                raise UsageError(f"no public finding with id {', '.join(map(str, unknown))} "
                                 "('kataster findings list' shows them); nothing was changed")
        n = stored.set_status(conn, new, getpass.getuser(), reason, ids=ids or None,
                              rule_id=rule, old=old)
        conn.commit()
    obj.say(f"{n} findings {STATUS_WORD[new]}")


STATUS_WORD = {"accepted": "accepted", "open": "reopened"}


@findings.command("accept")
@click.argument("ids", nargs=-1, type=int)
@click.option("--rule", help="All open findings of this rule.")
@click.option("--reason", required=True, help="Why this is an accepted exception.")
@click.pass_obj
def findings_accept(obj, ids, rule, reason):
    """Accept findings as known exceptions (they stay accepted on re-runs)."""
    _set_status(obj, ids, rule, reason, "accepted", ["open"])


@findings.command("reopen")
@click.argument("ids", nargs=-1, type=int)
@click.option("--rule")
@click.option("--reason", default="reopened", show_default=True)
@click.pass_obj
def findings_reopen(obj, ids, rule, reason):
    """Reopen accepted or fixed findings."""
    _set_status(obj, ids, rule, reason, "open", ["accepted", "fixed"])


# -- serve ------------------------------------------------------------------------------------
@cli.command("serve")
@click.option("--host", help="Address to listen on (default: serve.host, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: serve.port).")
@click.option("--workers", type=int, default=2, show_default=True, help="MapServer FastCGI workers.")
@click.pass_obj
def serve(obj, host, port, workers):
    """Serve WMS/WFS (MapServer), OGC API Features (pygeoapi) and the map page on one port."""
    import signal as _signal

    from exporters.serving.server import Publisher, Server
    from pipeline.rasters import karten_dir

    cfg = obj.config
    server = Server(obj.database(), cfg.state_dir / "serve",
                    host or cfg["serve.host"], port or cfg["serve.port"], workers,
                    service=obj.database("service"), publisher=Publisher.from_config(cfg),
                    karten=karten_dir(cfg))
    # Handlers first: a TERM that arrives while the services start must still stop them all.
    stopping = []

    def handler(signum, frame):
        stopping.append(signum)

    _signal.signal(_signal.SIGTERM, handler)
    _signal.signal(_signal.SIGINT, handler)
    server.start()
    base = server.base_url
    click.echo(f"Karte:              {base}/\n"
               f"WMS 1.3.0 / WFS 2.0: {base}/wms?SERVICE=WMS&REQUEST=GetCapabilities\n"
               f"OGC API Features:   {base}/ogcapi\n"
               "Stop with Ctrl-C.")
    try:
        while not stopping and all(p.poll() is None for p in server.procs):
            time.sleep(0.5)
    finally:
        server.stop()
        obj.say("stopped all services")


# -- SQL access ---------------------------------------------------------------------------------
@cli.group("sql")
def sql_group():
    """SQL access for departments: group roles and grants."""


@sql_group.command("roles")
@click.pass_obj
def sql_roles(obj):
    """Create or update the group roles kataster_leser, kataster_eigentum, kataster_admin."""
    from exporters.sql_access import create_roles

    roles = create_roles(obj.database("admin"))
    obj.say(f"roles ready: {', '.join(roles)}")


@sql_group.command("grant")
@click.argument("login_role")
@click.option("--role", "role", required=True, type=click.Choice(["leser", "eigentum", "admin"]))
@click.pass_obj
def sql_grant(obj, login_role, role):
    """Give a database login role one of the group roles."""
    from exporters.sql_access import grant

    grant(obj.database("admin"), login_role, role)
    obj.say(f"{login_role} is now a member of kataster_{role}")


@cli.command("eigentum")
@click.argument("flurstueckskennzeichen")
@click.option("--aktenzeichen", required=True, help="File reference of the legal reason (logged).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--bearbeiter", help="Who asks, as recorded in the audit (besides the database "
                                       "user and the operating-system user).")
@click.pass_obj
def eigentum_cmd(obj, flurstueckskennzeichen, aktenzeichen, bearbeiter, as_json):
    """Owners of one parcel (audited: user, time, parcel and Aktenzeichen are logged)."""
    from exporters.sql_access import owner_lookup, owner_rows_for_people

    rows = owner_rows_for_people(
        owner_lookup(obj.database("reader"), flurstueckskennzeichen, aktenzeichen, bearbeiter))
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        obj.say(f"keine Eigentümer verzeichnet für {flurstueckskennzeichen}")
        return
    table = [("Buchungsblatt", "Buchungsart", "Anteil", "Eigentümer", "Gemeinschaft")] + [
        (r["buchungsblatt"] or "-", r["buchungsart_text"] or "-", r["anteil"] or "-",
         ", ".join(p for p in (r["name"], r["vorname"]) if p), r["rechtsgemeinschaft"] or "")
        for r in rows]
    widths = [max(len(str(row[k])) for row in table) for k in range(5)]
    for row in table:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


# -- audit ------------------------------------------------------------------------------------------
@cli.group("audit")
def audit():
    """The owner look-up audit: check it, limit it."""


@audit.command("verify")
@click.pass_obj
def audit_verify_cmd(obj):
    """Check the audit's hash chain: exit 1 and list what was changed or removed."""
    from exporters.sql_access import audit_verify

    problems = audit_verify(obj.database())
    for _id, message in problems:
        click.echo(message)
    if problems:
        raise KatasterError(f"the owner look-up audit was changed: {len(problems)} findings")
    obj.say("the owner look-up audit is complete and unchanged")


@audit.command("limit")
@click.argument("parcels_per_hour", type=click.IntRange(min=1), required=False)
@click.option("--none", "no_limit", is_flag=True, help="No limit.")
@click.pass_obj
def audit_limit_cmd(obj, parcels_per_hour, no_limit):
    """Set how many parcels one Aktenzeichen may look up per hour (then refused)."""
    from exporters.sql_access import audit_limit

    if parcels_per_hour is None and not no_limit:
        raise UsageError("give a number of parcels per hour, or --none")
    audit_limit(obj.database(), None if no_limit else parcels_per_hour)
    obj.say(f"limit: {parcels_per_hour or 'none'} parcels per Aktenzeichen and hour")


# -- versions ---------------------------------------------------------------------------------------
@cli.command("versions")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def versions(obj, as_json):
    """Versions of Kataster, Python, GDAL, GEOS, PROJ, PostgreSQL and PostGIS."""
    from importlib.metadata import version

    import pyogrio
    import pyproj
    import shapely

    from pipeline import registry
    from pipeline.db import server_versions

    data = {"kataster": version("kataster"), "Python": sys.version.split()[0],
            "GDAL (pyogrio)": pyogrio.__gdal_version_string__,
            "GEOS (shapely)": shapely.geos_version_string,
            "PROJ (pyproj)": pyproj.proj_version_str}
    data.update(server_versions(obj.database("reader")))
    data["importers"] = ", ".join(registry.names("importer"))
    data["exporters"] = ", ".join(registry.names("exporter"))
    if as_json:
        _echo_json(data)
    else:
        for k, v in data.items():
            click.echo(f"{k:16} {v}")


# -- demo -----------------------------------------------------------------------------------------
@cli.command("demo")
@click.option("--parcels", default=3000, show_default=True)
@click.pass_obj
def demo(obj, parcels):
    """The main job end to end on the embedded default: generate, import, export."""
    from pipeline.demo import run_demo

    run_demo(obj.config, say=click.echo, notify=obj.say, parcels=parcels)


def main():
    import psycopg

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort as err:
        # click turns Ctrl-C into Abort; 130 is the shell's code for an interrupted command.
        if isinstance(err.__cause__, KeyboardInterrupt):
            _err("interrupted; an import in progress kept nothing of its run")
            sys.exit(130)
        _err("aborted")
        sys.exit(1)
    except click.ClickException as err:
        err.show()
        sys.exit(2)
    except KatasterError as err:
        _err(mask_url(str(err)))
        sys.exit(err.exit_code)
    except psycopg.errors.InsufficientPrivilege as err:
        _err(f"not allowed for this database role: {err.diag.message_primary} (reading "
             "commands need kataster_leser, owner look-ups kataster_eigentum, everything else "
             "the database's owner; see SECURITY.md)")
        sys.exit(1)
    sys.exit(0)
