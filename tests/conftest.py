"""Test harness: a real PostgreSQL/PostGIS cluster that the harness starts itself.

* Tests never see ``KATASTER_DATABASE_URL`` (or any other ``KATASTER_*`` setting of the
  developer): they are removed before anything runs, so ``make test`` cannot touch a real
  server. Tests use their own embedded cluster, or ``KATASTER_TEST_DATABASE_URL`` if given
  (a server where the test user may create databases).
* Each test that asks for ``db`` gets a fresh database cloned from a migrated template.
* A skipped test fails the run: a database test that silently does not run is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TEST_URL = os.environ.get("KATASTER_TEST_DATABASE_URL")
for _name in [n for n in os.environ if n.startswith("KATASTER_")]:
    del os.environ[_name]

from pipeline.config import load_config  # noqa: E402
from pipeline.db import Database, libpq_url  # noqa: E402
from pipeline.embedded import EmbeddedCluster  # noqa: E402

# One template per test session: an inner session (test_embedded) on the same server must not
# replace this session's template (its owner and roles differ).
TEMPLATE = f"kataster_test_template_{os.getpid()}"
ROLES = {}          # kind of work -> URL of the maintenance database (set by the roles fixture)


def with_database(url, name):
    """The same server URL, another database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(libpq_url(url))
    return urlunsplit(parts._replace(path="/" + name))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped tests are failures here: {report.longrepr}"


@pytest.fixture(scope="session")
def artefacts():
    """Where tests keep what people look at (renders, screenshots, legends):
    $KATASTER_TEST_ARTIFACTS, or tests/artefacts in the checkout (not versioned). Kept after
    the run; each run overwrites its files."""
    path = Path(os.environ.get("KATASTER_TEST_ARTIFACTS",
                               Path(__file__).resolve().parent / "artefacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def roles(tmp_path_factory):
    """The test server's role names and URLs (maintenance database) for each kind of work.

    On the harness's own cluster these are the embedded cluster's separate roles: tests work
    as the non-superuser owner, as the software does, and use the administrator only where
    the software does (creating databases, db up, SQL roles)."""
    kinds = ("admin", "owner", "reader", "service")
    if TEST_URL:
        ROLES.update({kind: with_database(TEST_URL, "postgres") for kind in kinds})
        yield ROLES
        return
    cluster = EmbeddedCluster(tmp_path_factory.mktemp("cluster") / "state")
    cluster.up()
    ROLES.update({kind: cluster.url("postgres", kind) for kind in kinds})
    try:
        yield ROLES
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def server(roles):
    """URL of the maintenance database of the test server as its administrator."""
    return roles["admin"]


def _user(url):
    from urllib.parse import urlsplit

    return urlsplit(url).username


@pytest.fixture(scope="session")
def template(roles):
    from pipeline.db import set_up_database

    with psycopg.connect(roles["admin"], autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(TEMPLATE)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(TEMPLATE), sql.Identifier(_user(roles["owner"]))))
    admin, owner = (Database(with_database(roles[k], TEMPLATE)) for k in ("admin", "owner"))
    if admin.url == owner.url:
        owner.prepare()
    else:
        set_up_database(admin, owner, reader=_user(roles["reader"]),
                        service=_user(roles["service"]))
    yield owner.url
    drop_database(roles["admin"], TEMPLATE)


def url_as(url, kind):
    """The same database as another role of the test server (admin, owner, reader, service)."""
    from urllib.parse import urlsplit

    return with_database(ROLES[kind], urlsplit(url).path.lstrip("/"))


def new_database(server, template=TEMPLATE):
    """A new database owned by the owner role; returns (name, the owner's URL)."""
    name = "t_" + uuid.uuid4().hex[:12]
    owner = _user(ROLES["owner"])
    with psycopg.connect(server, autocommit=True) as conn:
        if template:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(template), sql.Identifier(owner)))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)))
    url = with_database(ROLES["owner"], name)
    if template:       # a copy's owner-look-up audit must reach the copy, not the template
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT kataster_privat.audit_repoint()")
    return name, url


def drop_database(server, name):
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


@pytest.fixture
def db(server, template):
    """A fresh, migrated database for one test, as its owner (not a superuser)."""
    name, url = new_database(server)
    yield Database(url)
    drop_database(server, name)


@pytest.fixture
def admin_db(db):
    """The test's database as the server's administrator (creating roles, tampering)."""
    return Database(url_as(db.url, "admin"))


@pytest.fixture
def empty_db(server):
    """A fresh database without PostGIS or migrations."""
    name, url = new_database(server, template=None)
    yield Database(url)
    drop_database(server, name)


@pytest.fixture
def config(db, tmp_path):
    """Configuration pointing at the test database (as KATASTER_DATABASE_URL would)."""
    return load_config(environ={"KATASTER_DATABASE_URL": db.url,
                                "KATASTER_PATHS_STATE_DIR": str(tmp_path / "state"),
                                "KATASTER_PATHS_OUTPUT_DIR": str(tmp_path / "out")})


@pytest.fixture
def cli_env(db, tmp_path):
    """Environment for running the ``kataster`` command against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KATASTER_")}
    env.update(KATASTER_DATABASE_URL=db.url, KATASTER_PATHS_STATE_DIR=str(tmp_path / "state"),
               KATASTER_DATABASE_ADMIN_URL=url_as(db.url, "admin"),
               KATASTER_DATABASE_SERVICE_URL=url_as(db.url, "service"),
               KATASTER_PATHS_OUTPUT_DIR=str(tmp_path / "out"),
               # Import tests check the import alone; tests/validation/test_validation.py covers the
               # validation that follows an import by default.
               KATASTER_VALIDATION_AFTER_IMPORT="false")
    return env


def kataster(*args, env, check=False, timeout=600, cwd=None):
    """Run the real ``kataster`` command; returns the CompletedProcess."""
    exe = Path(sys.executable).with_name("kataster")
    proc = subprocess.run([str(exe), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"kataster {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def sample_gpkg(tmp_path_factory):
    """A generated 1,200-parcel Mülheim-like GeoPackage (shared by read-only tests)."""
    from pipeline.synthetic.city import generate

    path = tmp_path_factory.mktemp("sample") / "sample.gpkg"
    generate(1200, path, fmt="gpkg", seed=7)
    return path


def query(db, text, params=None):
    with db.connect() as conn:
        return conn.execute(text, params).fetchall()
