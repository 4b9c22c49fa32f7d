"""Commands for the database and its roles: ``db``, ``config``, ``sql``, ``audit``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.cli.root import cli, echo_json
from pipeline.config import mask_url
from pipeline.errors import KatasterError, UsageError


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
        echo_json(status)
    else:
        for k, v in status.items():
            click.echo(f"{k:12} {v}")
    if not status["running"]:
        sys.exit(1)


@db.command("rebuild")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def db_rebuild(obj, as_json):
    """Recompute the ownership resolution (with the an references) and the derived maps
    whole (imports update them only where their change reaches)."""
    from pipeline import api

    summary = api.rebuild(obj.config, obj.database())
    if as_json:
        echo_json(summary)
        return
    obj.say(f"run {summary['run_id']} rebuilt the ownership resolution and the district maps "
            f"in {summary['seconds']:.1f} s; owners corrected for "
            f"{summary['counts']['eigentum_parcels']} parcels")


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
        echo_json(data)
    else:
        source = obj.config.source or "(no file: defaults and KATASTER_* variables)"
        click.echo(f"# effective configuration from {source}")
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


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
