"""The ``kataster`` group with its common options, the context every command gets (settings,
databases by kind of work, messages) and the output helpers."""

from __future__ import annotations

import json
import logging
import sys

import click

from pipeline.config import load_config

log = logging.getLogger("pipeline")


def echo_json(data):
    """Print ``data`` as indented JSON (the ``--json`` outputs)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def error(msg):
    """Print an error message on stderr."""
    click.secho(f"error: {msg}", err=True, fg="red")


class Context:
    """What every command gets: the configuration (read when first asked for), the databases by
    kind of work, and ``say`` for messages on stderr (silent with ``-q``)."""

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


class Progress:
    """A progress counter on stderr when it is a terminal; silent otherwise."""

    def __init__(self, obj, label):
        self.enabled = sys.stderr.isatty() and not obj.quiet
        self.label = label
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich import progress as rich

        self.bar = rich.Progress(rich.SpinnerColumn(), rich.TextColumn("{task.description}"),
                                 rich.TextColumn("{task.completed:,} objects"),
                                 rich.TimeElapsedColumn(), transient=True)
        self.bar.start()
        task = self.bar.add_task(self.label, total=None)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()
        return False
