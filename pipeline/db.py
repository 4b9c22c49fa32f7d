"""Database lifecycle: which server, preparing it (PostGIS, migrations), connections.

With ``database.url`` (``KATASTER_DATABASE_URL``) set, that server is used and never started.
Without it, the embedded cluster in the state directory is started on demand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa

from pipeline.config import Config, mask_url
from pipeline.embedded import EmbeddedCluster
from pipeline.errors import ConfigError, DatabaseError

log = logging.getLogger(__name__)


def libpq_url(url):
    """A libpq URI from a SQLAlchemy-style URL (drops the ``+driver`` part)."""
    scheme, sep, rest = url.partition("://")
    return scheme.split("+")[0].replace("postgis", "postgresql") + sep + rest


def sqlalchemy_url(url):
    """A SQLAlchemy URL using psycopg 3 for a libpq URI."""
    scheme, sep, rest = libpq_url(url).partition("://")
    return "postgresql+psycopg" + sep + rest


@dataclass
class Database:
    """One PostGIS database the pipeline works on.

    Use :func:`open_database` to get one from the configuration.
    """

    url: str
    embedded: EmbeddedCluster | None = None

    def connect(self, **kwargs):
        """A new psycopg connection (the caller closes it)."""
        scheme, sep, rest = self.url.partition("://")
        if sep and rest.split("/", 1)[0].count("@") > 1:
            # libpq would take the rest of the password for the host name and print it.
            raise ConfigError(f"{mask_url(self.url)}: the password holds '@'; write it "
                              "percent-encoded (%40) in the URL")
        try:
            return psycopg.connect(self.url, **kwargs)
        except psycopg.OperationalError as err:
            raise DatabaseError(f"cannot connect to {mask_url(self.url)}: {err}".strip()) from err

    def engine(self, **kwargs):
        """A SQLAlchemy engine (psycopg 3 driver) for the same database."""
        return sa.create_engine(sqlalchemy_url(self.url), **kwargs)

    def prepare(self):
        """Enable PostGIS and bring the schema to the newest migration.

        A database already at the newest revision is left alone (no DDL at all), so the
        department roles, which may not create anything, can use every reading command."""
        from schemas.migrate import current, head, upgrade

        try:
            at_head = current(self.url) == head()
        except psycopg.Error:
            at_head = False         # not readable for this role, or not migrated: try below
        if at_head:
            self._repoint_audit()
            return

        with self.connect(autocommit=True) as conn:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except psycopg.Error as err:
                raise DatabaseError(
                    f"cannot enable PostGIS in {mask_url(self.url)}: {err} "
                    "(the extension must be installed on the server, and the user must own the "
                    "database or be allowed to create extensions)"
                ) from err
        upgrade(self.url)
        self._repoint_audit()

    def _repoint_audit(self):
        """A database copied from another (CREATE DATABASE … TEMPLATE) still reaches the
        original's audit: point it at itself (only its owner may, and needs to)."""
        with self.connect(autocommit=True) as conn:
            try:
                conn.execute(
                    "SELECT kataster_privat.audit_repoint() FROM pg_foreign_server s,"
                    " pg_options_to_table(s.srvoptions) o"
                    " WHERE s.srvname = 'kataster_audit_server'"
                    " AND pg_has_role(s.srvowner, 'USAGE') AND o.option_name = 'dbname'"
                    " AND o.option_value <> current_database()")
            except psycopg.Error:
                pass                # a department role: not its business

    def masked_url(self):
        return mask_url(self.url)


def open_database(config: Config, start=True, prepare=True):
    """The database the configuration names, started and prepared if needed.

    Parameters
    ----------
    config : Config
    start : bool
        Start the embedded cluster if it is not running (ignored for an external URL).
    prepare : bool
        Enable PostGIS and apply migrations (cheap when already at the newest revision).
    """
    url = config["database.url"]
    if url:
        db = Database(libpq_url(url))
    else:
        cluster = EmbeddedCluster(config.state_dir, port=config["database.port"])
        if not cluster.exists() and not start:
            raise DatabaseError("the embedded database does not exist yet (run 'kataster db up')")
        if start:
            cluster.up()
            cluster.ensure_database()
        db = Database(cluster.url(), embedded=cluster)
    if prepare:
        db.prepare()
    return db


def server_versions(db: Database):
    """PostgreSQL, PostGIS and PostGIS's GEOS/PROJ versions of a database."""
    with db.connect() as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        try:
            full = conn.execute("SELECT postgis_full_version()").fetchone()[0]
        except psycopg.Error:
            full = ""
    out = {"PostgreSQL": pg}
    import re

    for label, key in (("PostGIS", "POSTGIS"), ("PostGIS GEOS", "GEOS"), ("PostGIS PROJ", "PROJ")):
        m = re.search(rf'{key}="([^"]+)"', full)
        out[label] = m.group(1).split()[0] if m else "not installed"
    return out
