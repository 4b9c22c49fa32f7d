"""Database lifecycle: which server, preparing it (PostGIS, migrations), connections.

With ``database.url`` (``KATASTER_DATABASE_URL``) set, that server is used and never started.
Without it, the embedded cluster in the state directory is started on demand.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pipeline.config import Config, mask_url
from pipeline.embedded import EmbeddedCluster
from pipeline.errors import ConfigError, DatabaseError
from schemas import queries

log = logging.getLogger(__name__)
QUERIES = queries("database")


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
        if "options=" not in self.url:
            # No JIT: our statements are planned with high costs (CTEs, runtime arrays) but
            # read few rows, and compiling them took a second each (the address-text step of
            # a 100-parcel update: 1.07 s of JIT for 0.04 s of work).
            kwargs.setdefault("options", "-c jit=off")
        try:
            return psycopg.connect(self.url, **kwargs)
        except psycopg.OperationalError as err:
            raise DatabaseError(f"cannot connect to {mask_url(self.url)}: {err}".strip()) from err

    def engine(self, **kwargs):
        """A SQLAlchemy engine (psycopg 3 driver) for the same database."""
        import sqlalchemy as sa

        return sa.create_engine(sqlalchemy_url(self.url), **kwargs)

    def revision(self):
        """The schema revision of the database (None: not migrated, or not readable)."""
        from schemas.migrate import current

        with self.connect() as conn:       # masks the password in every error
            try:
                return current(conn)
            except psycopg.Error:
                return None              # not readable for this role

    def check_current(self):
        """Refuse to work on a database whose schema is not the one this software needs.

        Schema changes happen only through ``kataster db up`` (run by the administrator), so
        no everyday command needs rights to create anything."""
        from schemas.migrate import head

        at = self.revision()
        if at != head():
            state = "is not set up" if at is None else f"is at schema revision {at}"
            raise DatabaseError(f"the database {self.masked_url()} {state}; this version of "
                                f"Kataster needs revision {head()}: run 'kataster db up'")
        self._repoint_audit()

    def prepare(self):
        """Enable PostGIS and bring the schema to the newest migration as this role.

        Used where one role is owner and administrator (an external database configured with
        a single URL, a test server given by KATASTER_TEST_DATABASE_URL); :func:`set_up`
        separates the two."""
        from schemas.migrate import head, upgrade

        if self.revision() == head():
            self._repoint_audit()
            return
        with self.connect(autocommit=True) as conn:
            for ext in ("postgis", "dblink"):
                _create_extension(conn, ext, self.url)
        upgrade(self.url)
        self._repoint_audit()

    def _repoint_audit(self):
        """A database copied from another (CREATE DATABASE … TEMPLATE) still reaches the
        original's audit: point it at itself (only its owner may, and needs to)."""
        with self.connect(autocommit=True) as conn:
            if not conn.execute(QUERIES["may_use_owner_schema"]).fetchone()[0]:
                return              # a reading role: not its business
            try:
                conn.execute(QUERIES["repoint_audit"])
            except psycopg.Error:
                pass                # a department role: not its business

    def masked_url(self):
        return mask_url(self.url)


# The memory a statement's hash tables may take while a run works on what it changed. A
# recursive query's row estimate multiplies per level (a run's few hundred bookings were
# estimated at 600,000), and PostgreSQL sizes a hash table for the estimate up to work_mem:
# with the 64 MB of the embedded cluster, allocating it took 0.1 s per statement.
SCOPED_WORK_MEM = "4MB"


@contextmanager
def scoped_memory(conn):
    """Statements inside run with :data:`SCOPED_WORK_MEM` (for the small sets of a scoped
    run), then the transaction's setting is back."""
    before = conn.execute(QUERIES["work_mem"]).fetchone()[0]
    conn.execute(QUERIES["set_work_mem"], {"value": SCOPED_WORK_MEM})
    try:
        yield
    finally:
        if not conn.broken and conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            conn.execute(QUERIES["set_work_mem"], {"value": before})


def _create_extension(conn, name, url):
    try:
        conn.execute(sql.SQL(QUERIES["create_extension"]).format(
            extension=sql.Identifier(name)))
    except psycopg.Error as err:
        raise DatabaseError(
            f"cannot enable the extension {name} in {mask_url(url)}: {err} (it must be "
            "installed on the server, and an administrator must create it: CREATE EXTENSION "
            f"{name} SCHEMA public, or give 'kataster db up' an administrator's "
            "KATASTER_DATABASE_ADMIN_URL)") from err


def open_database(config: Config, start=True, kind="owner"):
    """The database the configuration names, checked to be at the schema this software needs.

    Parameters
    ----------
    config : Config
    start : bool
        Start the embedded cluster if it is not running (ignored for an external URL). A
        cluster that does not exist yet is made only by ``kataster db up`` (:func:`set_up`).
    kind : str
        What the caller does, which decides the role on the embedded cluster: ``owner``
        (imports, validation, repairs), ``reader`` (reading commands), ``service``
        (MapServer, pygeoapi), ``admin`` (``db up`` and the SQL roles). An external database
        is used with the one URL configured, except ``database.admin_url`` for ``admin`` and
        ``database.service_url`` for ``service`` when they are set.
    """
    url = config["database.url"]
    if url:
        extra = {"admin": "database.admin_url", "service": "database.service_url"}.get(kind)
        db = Database(libpq_url((extra and config[extra]) or url))
    else:
        cluster = EmbeddedCluster(config.state_dir, port=config["database.port"])
        if not cluster.exists():
            raise DatabaseError(
                f"no embedded database in {cluster.state_dir} (the project folder is the one "
                "holding kataster.yaml or .kataster/, found from here upwards): run "
                "'kataster db up' in the project folder to create one, or set "
                "KATASTER_PATHS_STATE_DIR to an existing one")
        if start and not cluster.is_running():
            cluster.start()
            cluster.wait_ready()
        db = Database(cluster.url(kind=kind), embedded=cluster)
    if kind != "admin":
        db.check_current()
    return db


def set_up(config: Config):
    """``kataster db up``: the one place where the database is made and its schema changed.

    The embedded cluster is created and started. Then, as the administrator (the cluster's
    superuser, or ``database.admin_url``): PostGIS and dblink are enabled, and the owner role
    gets CREATEROLE for exactly as long as the pending migrations run as the owner (the owner
    must own the schema, and one migration creates the audit's own role); then the group roles
    and the grants of the login roles. Without an administrator URL on an external database,
    the configured role does all of it (as before this split).

    Returns ``(database, created, started)``: the owner's database, and whether the embedded
    cluster was created or started now.
    """
    created = started = False
    url = config["database.url"]
    if url:
        owner = Database(libpq_url(url))
        admin = Database(libpq_url(config["database.admin_url"] or url))
    else:
        cluster = EmbeddedCluster(config.state_dir, port=config["database.port"])
        created, started = cluster.up()
        cluster.ensure_database()
        owner = Database(cluster.url(kind="owner"), embedded=cluster)
        admin = Database(cluster.url(kind="admin"), embedded=cluster)
    if admin.url == owner.url:
        owner.prepare()
        return owner, created, started
    cluster = owner.embedded
    separate = cluster is not None and not cluster.legacy
    set_up_database(admin, owner, reader=cluster.role("reader") if separate else None,
                    service=cluster.role("service") if separate else None)
    return owner, created, started


def set_up_database(admin: Database, owner: Database, reader=None, service=None):
    """Schema, group roles and grants of one database (the administrator's part of db up):
    the reading role joins kataster_eigentum (owner look-ups through the audited function
    only), the services' role kataster_leser (public views only)."""
    from exporters.sql_access import create_roles

    migrate(admin, owner)
    create_roles(admin)
    with admin.connect(autocommit=True) as conn:
        for group, member in (("kataster_eigentum", reader), ("kataster_leser", service)):
            if member:
                conn.execute(sql.SQL(QUERIES["grant_role"]).format(
                    group=sql.Identifier(group), member=sql.Identifier(member)))


def migrate(admin: Database, owner: Database, revision: str | None = None):
    """Bring the owner's schema to the newest revision (or to ``revision``: the migration
    tests), the administrator lending what it needs: PostGIS and dblink, the dblink wrapper,
    and CREATEROLE only while the migrations run."""
    from schemas.migrate import head, upgrade

    owner_role = _user_of(owner)
    with admin.connect(autocommit=True) as conn:
        for ext in ("postgis", "dblink"):
            _create_extension(conn, ext, admin.url)
        conn.execute(sql.SQL(QUERIES["grant_dblink"]).format(role=sql.Identifier(owner_role)))
        if owner.revision() != (revision or head()):
            lend = not conn.execute(QUERIES["may_create_roles"], {"role": owner_role}
                                    ).fetchone()[0]
            if lend:
                conn.execute(sql.SQL(QUERIES["lend_createrole"]).format(
                    role=sql.Identifier(owner_role)))
            try:
                upgrade(owner.url, revision or "head")
            finally:
                if lend:
                    conn.execute(sql.SQL(QUERIES["take_back_createrole"]).format(
                        role=sql.Identifier(owner_role)))
    if revision is None:
        owner.check_current()


def _user_of(db):
    with db.connect() as conn:
        return conn.execute(QUERIES["current_user"]).fetchone()[0]


def server_versions(db: Database):
    """PostgreSQL, PostGIS and PostGIS's GEOS/PROJ versions of a database."""
    with db.connect() as conn:
        pg = conn.execute(QUERIES["server_version"]).fetchone()[0]
        try:
            full = conn.execute(QUERIES["postgis_version"]).fetchone()[0]
        except psycopg.Error:
            full = ""
    out = {"PostgreSQL": pg}
    import re

    for label, key in (("PostGIS", "POSTGIS"), ("PostGIS GEOS", "GEOS"), ("PostGIS PROJ", "PROJ")):
        m = re.search(rf'{key}="([^"]+)"', full)
        out[label] = m.group(1).split()[0] if m else "not installed"
    return out


def service_entry(db: Database, name):
    """A ``pg_service.conf`` section for the database's URL (host, port, dbname, user and the
    passfile; never a password): QGIS, GDAL (``PG:service=…``) and psql take ``service=name``.

    Raises ConfigError for a URL that carries its password in clear (that password does not
    belong in a service file: put it in a ~/.pgpass and drop it from the URL)."""
    from urllib.parse import parse_qs, unquote, urlsplit

    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"service name {name!r}: use letters, digits, '_', '.' or '-'")
    parts = urlsplit(db.url)
    if parts.password:
        raise ConfigError(f"{mask_url(db.url)} carries its password: a service file should "
                          "not; put it in ~/.pgpass (host:port:database:user:password, mode "
                          "600) and remove it from the URL")
    keys = {"host": parts.hostname or "localhost", "port": str(parts.port or 5432),
            "dbname": unquote(parts.path.lstrip("/")), "user": unquote(parts.username or "")}
    for key, values in parse_qs(parts.query).items():
        if key in ("passfile", "sslmode", "sslrootcert", "connect_timeout"):
            keys[key] = values[0]
    return f"[{name}]\n" + "".join(f"{k}={v}\n" for k, v in keys.items() if v)


def write_service(path, name, entry):
    """Put ``entry`` into the service file at ``path``, replacing a section of the same name
    and keeping every other section; the file is created with mode 600."""
    import os
    from pathlib import Path

    path = Path(path).expanduser()
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    sections = re.split(r"(?m)^(?=\[)", text)
    kept = [sec for sec in sections if sec.strip() and not sec.startswith(f"[{name}]")]
    body = "".join(sec if sec.endswith("\n") else sec + "\n" for sec in kept) + entry
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    return path
