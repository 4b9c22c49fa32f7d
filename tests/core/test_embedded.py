"""The embedded cluster's lifecycle, driven through the real CLI, as the invoking user (root here)."""

import json
import os
import pwd
import stat
import subprocess

import jsonschema
import psycopg
import pytest
from conftest import kataster, url_as

from schemas import json_schema
from schemas.migrate import head


@pytest.fixture
def home700(tmp_path):
    """A checkout inside a home directory of mode 700 (like /root or /home/user)."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    os.chmod(home, 0o700)
    project = home / "kataster"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KATASTER_")}
    yield project, env
    kataster("db", "down", env=env, cwd=project)
    from pipeline.embedded import EmbeddedCluster

    EmbeddedCluster(project / ".kataster").destroy()


def test_lifecycle_in_mode_700_home(home700):
    project, env = home700
    up = kataster("db", "up", env=env, cwd=project, check=True)
    assert "started the embedded database on 127.0.0.1:" in up.stderr

    again = kataster("db", "up", env=env, cwd=project, check=True)
    assert "already running" in again.stderr

    status = kataster("db", "status", "--json", env=env, cwd=project, check=True)
    data = json.loads(status.stdout)
    jsonschema.validate(data, json_schema("db-status"))
    assert data["mode"] == "embedded" and data["running"] and data["revision"] == head()

    # The server never runs as root; its data directory is outside the mode-700 home.
    state = project / ".kataster"
    pidfile = os.path.join(data["data_dir"], "postmaster.pid")
    pid = int(open(pidfile).read().split()[0])
    owner = pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name
    if os.geteuid() == 0:
        assert owner == "postgres"
        assert not data["data_dir"].startswith(str(project))
    assert stat.S_IMODE(os.stat(state / "pgpass").st_mode) == 0o600

    # The URL works with psql, carries no password, and listens on loopback only.
    url = kataster("db", "url", env=env, cwd=project, check=True).stdout.strip()
    password = (state / "pgpass").read_text().strip().rsplit(":", 1)[1]
    assert password not in url and "passfile=" in url
    out = subprocess.run(["psql", url, "-Atc", "SELECT inet_server_addr(), postgis_version()"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("127.0.0.1|3.")

    # Password authentication: without the password the server refuses, never trusts.
    no_pw = url.split("?")[0]
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(no_pw, passfile="/dev/null", connect_timeout=5)
    hba = open(os.path.join(data["data_dir"], "pg_hba.conf")).read()
    assert "trust" not in hba.replace("never trust", "") and "scram-sha-256" in hba
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(no_pw.replace("kataster@", "kataster:wrong@"), passfile="/dev/null",
                        connect_timeout=5)

    # The port is chosen once and remembered across restarts.
    port = data["port"]
    down = kataster("db", "down", env=env, cwd=project, check=True)
    assert "stopped" in down.stderr
    stopped = kataster("db", "status", "--json", env=env, cwd=project)
    assert stopped.returncode == 1 and json.loads(stopped.stdout)["running"] is False
    # Any other command starts the database on demand, on the same port.
    runs = kataster("runs", "--json", env=env, cwd=project, check=True)
    assert json.loads(runs.stdout) == []
    assert json.loads(kataster("db", "status", "--json", env=env, cwd=project).stdout)[
        "port"] == port


def test_external_url_is_prepared_not_started(empty_db, tmp_path):
    """With KATASTER_DATABASE_URL, db up only enables PostGIS and migrates; no cluster starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KATASTER_")}
    env["KATASTER_DATABASE_URL"] = empty_db.url
    env["KATASTER_PATHS_STATE_DIR"] = str(tmp_path / "state")
    # Only db up changes the schema: every other command refuses a database not set up.
    runs = kataster("runs", env=env)
    assert runs.returncode == 1 and "is not set up" in runs.stderr
    assert "run 'kataster db up'" in runs.stderr
    # The owner alone may not create PostGIS: db up says who must.
    alone = kataster("db", "up", env=env)
    assert alone.returncode == 1 and "KATASTER_DATABASE_ADMIN_URL" in alone.stderr
    assert "Traceback" not in alone.stderr
    env["KATASTER_DATABASE_ADMIN_URL"] = url_as(empty_db.url, "admin")
    up = kataster("db", "up", env=env, check=True)
    assert "prepared" in up.stderr and "migrations applied" in up.stderr
    assert not (tmp_path / "state" / "cluster.json").exists()
    with empty_db.connect() as conn:
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname='postgis'").fetchone()
        assert conn.execute("SELECT version_num FROM kataster.alembic_version").fetchone()[0] == head()
        # The administrator lent CREATEROLE for the migrations and took it back; the owner of
        # the schema is the configured role, not the administrator.
        assert conn.execute("SELECT rolsuper, rolcreaterole FROM pg_roles"
                            " WHERE rolname = current_user").fetchone() == (False, False)
        assert conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'kataster'"
                            " AND tablename = 'ax_flurstueck'").fetchone()[0] == "kataster"
    # db down never stops a server that is not ours.
    down = kataster("db", "down", env=env, check=True)
    assert "nothing to stop" in down.stderr
    # An unreachable external server is an error naming it without the password.
    env["KATASTER_DATABASE_URL"] = "postgresql://someone:s3cret@127.0.0.1:1/nowhere"
    bad = kataster("runs", env=env)
    assert bad.returncode == 1
    assert "s3cret" not in bad.stderr and "127.0.0.1:1" in bad.stderr


def test_tests_never_see_the_users_database_url(server, tmp_path):
    """Run an inner test session with a poisoned KATASTER_DATABASE_URL: it must not be used."""
    import sys
    from pathlib import Path

    inner = tmp_path / "inner"
    inner.mkdir()
    root = Path(__file__).resolve().parents[1]
    (inner / "conftest.py").write_text((root / "conftest.py").read_text())
    (inner / "test_inner.py").write_text(
        "import os\n"
        "def test_isolated(db, config):\n"
        "    assert 'KATASTER_DATABASE_URL' not in os.environ\n"
        "    assert config['database.url'] == db.url\n"
        "    assert 'poison' not in db.url\n"
        "    with db.connect() as c:\n"
        "        assert c.execute('select 1').fetchone() == (1,)\n")
    env = dict(os.environ, KATASTER_DATABASE_URL="postgresql://poison:x@127.0.0.1:1/poison",
               KATASTER_TEST_DATABASE_URL=server)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(inner)], env=env, capture_output=True, text=True,
                          cwd=root.parent, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_a_lost_state_file_never_wipes_a_cluster(tmp_path):
    from pipeline.embedded import EmbeddedCluster
    from pipeline.errors import DatabaseError

    cluster = EmbeddedCluster(tmp_path / "state")
    cluster.init()
    try:
        data = cluster.data_dir
        cluster.state_file.unlink()
        with pytest.raises(DatabaseError, match="already exists"):
            EmbeddedCluster(tmp_path / "state").init()
        assert (data / "PG_VERSION").exists()
    finally:
        import json

        cluster.state_file.write_text(json.dumps({"port": 1, "cluster_dir": str(data.parent),
                                                  "server_user": cluster.server_user}))
        cluster.destroy()


def test_each_kind_of_work_has_its_own_role_and_none_is_a_superuser(home700, sample_gpkg):
    """The embedded cluster's superuser is used by db up only; imports run as the owner (no
    superuser, no CREATEROLE), reading commands as a read-only role, and the owner cannot
    touch the owner look-up audit."""
    project, env = home700
    env = dict(env, KATASTER_VALIDATION_AFTER_IMPORT="false")
    kataster("db", "up", env=env, cwd=project, check=True)

    def url(role):
        return kataster("db", "url", "--role", role, env=env, cwd=project,
                        check=True).stdout.strip()

    admin, owner, reader = url("admin"), url("owner"), url("reader")
    with psycopg.connect(admin) as conn:
        roles = dict(conn.execute(
            "SELECT rolname, (rolsuper, rolcreaterole, rolcreatedb)::text FROM pg_roles"
            " WHERE rolname LIKE 'kataster%'").fetchall())
        assert [r for r, flags in roles.items() if flags.startswith("(t")] == ["kataster_su"]
        for role in ("kataster", "kataster_lesen", "kataster_dienst"):
            assert roles[role] == "(f,f,f)", role
        assert conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database"
                            " WHERE datname = 'kataster'").fetchone()[0] == "kataster"
        members = set(conn.execute(
            "SELECT m.rolname, g.rolname FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.member"
            " JOIN pg_roles g ON g.oid = a.roleid WHERE m.rolname LIKE 'kataster%'").fetchall())
        assert ("kataster_lesen", "kataster_eigentum") in members
        assert ("kataster_dienst", "kataster_leser") in members
        assert not [g for m, g in members if m == "kataster"]     # not even the audit's role
        read_only = {r for (r,) in conn.execute(
            "SELECT pg_get_userbyid(setrole) FROM pg_db_role_setting"
            " WHERE 'default_transaction_read_only=on' = ANY(setconfig)")}
        assert read_only == {"kataster_lesen", "kataster_dienst"}

    kataster("import", sample_gpkg, env=env, cwd=project, check=True)
    # Reading commands connect as kataster_lesen, writing ones as kataster: with the reading
    # role locked out, reading fails naming it while the owner's commands still work.
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("ALTER ROLE kataster_lesen NOLOGIN")
    locked = kataster("runs", env=env, cwd=project)
    assert locked.returncode == 1 and "kataster_lesen" in locked.stderr, locked.stderr
    assert kataster("audit", "limit", "50", env=env, cwd=project).returncode == 0
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("ALTER ROLE kataster_lesen LOGIN")
    runs = json.loads(kataster("runs", "--json", env=env, cwd=project, check=True).stdout)
    assert runs[0]["status"] == "committed"

    with psycopg.connect(reader) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("UPDATE kataster.finding SET status = 'accepted'")
    # The owner cannot change the audit, its limit table or its role behind the audit's back.
    auditor = None
    with psycopg.connect(owner) as conn:
        auditor = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log'"
                               ).fetchone()[0]
    assert auditor.startswith("kataster_audit_")
    for statement in ("ALTER TABLE kataster_privat.audit_log DISABLE TRIGGER USER",
                      "DELETE FROM kataster_privat.audit_log",
                      "UPDATE kataster_privat.audit_grenze SET flurstuecke_pro_stunde = NULL",
                      f"ALTER ROLE {auditor} PASSWORD 'known'",
                      f"SET ROLE {auditor}",
                      "CREATE EXTENSION IF NOT EXISTS file_fdw",
                      "COPY kataster.finding (message) FROM PROGRAM 'id'"):
        with psycopg.connect(owner) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    with psycopg.connect(owner) as conn:
        assert conn.execute("SELECT flurstuecke_pro_stunde FROM kataster_privat.audit_grenze"
                            ).fetchone()[0] == 50


def test_one_database_from_any_folder_of_the_project(home700, tmp_path):
    """Run from another folder, a command created and started a new, empty cluster and an
    export 'wrote 0 features' with exit 0. Now the project's database is found from its
    subfolders, elsewhere nothing is created, and 'db destroy' removes a cluster."""
    project, env = home700
    kataster("db", "up", env=env, cwd=project, check=True)
    here = json.loads(kataster("db", "status", "--json", env=env, cwd=project,
                               check=True).stdout)
    sub = project / "lieferungen" / "2026"
    sub.mkdir(parents=True)
    there = json.loads(kataster("db", "status", "--json", env=env, cwd=sub, check=True).stdout)
    assert there["data_dir"] == here["data_dir"] and there["port"] == here["port"]
    assert kataster("runs", env=env, cwd=sub).returncode == 0

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lost = kataster("export", "csv", "--layer", "flurstueck", "--out", elsewhere / "f.csv",
                    env=env, cwd=elsewhere)
    assert lost.returncode == 1 and "no embedded database in" in lost.stderr, lost.stderr
    assert "kataster db up" in lost.stderr
    assert not (elsewhere / ".kataster").exists() and not (elsewhere / "f.csv").exists()
    # A kataster.yaml marks a project folder too (its relative paths count from there).
    (elsewhere / "kataster.yaml").write_text(f"paths:\n  state_dir: {project / '.kataster'}\n")
    (elsewhere / "sub").mkdir()
    assert kataster("runs", env=env, cwd=elsewhere / "sub").returncode == 0

    refused = kataster("db", "destroy", env=env, cwd=sub)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert kataster("db", "status", env=env, cwd=project).returncode == 0
    gone = kataster("db", "destroy", "--yes", env=env, cwd=sub, check=True)
    assert "deleted the embedded database" in gone.stderr
    assert not os.path.exists(here["data_dir"])
    assert kataster("runs", env=env, cwd=project).returncode == 1
