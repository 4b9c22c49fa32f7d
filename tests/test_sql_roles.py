"""SQL roles: what each role can and cannot read, change and delete; the audited look-up."""

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from conftest import kataster, query
from test_ownership import features

from pipeline.nas_writer import Writer, open_output


def _login(db, role):
    name = f"dept_{role}_{uuid.uuid4().hex[:6]}"
    with db.connect() as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw-{name}'")  # name is generated above
        conn.commit()
    parts = urlsplit(db.url)
    url = urlunsplit(parts._replace(netloc=f"{name}:pw-{name}@{parts.hostname}:{parts.port}",
                                    query=""))
    return name, url


def _denied(url, statement, params=None):
    with psycopg.connect(url) as conn:
        with pytest.raises(psycopg.Error) as err:
            conn.execute(statement, params)
    return str(err.value)


@pytest.fixture
def owners_db(db, cli_env, tmp_path):
    path = tmp_path / "owners.xml"
    with open_output(path) as fh:
        Writer("6.0").extract(features(), fh)
    kataster("import", path, env=cli_env, check=True)
    assert "roles ready" in kataster("sql", "roles", env=cli_env, check=True).stderr
    kataster("sql", "roles", env=cli_env, check=True)          # idempotent
    return db


def test_roles(owners_db, cli_env):
    db = owners_db
    fsk = "05309600100001______"
    roles = {}
    for role in ("leser", "eigentum", "admin"):
        name, url = _login(db, role)
        kataster("sql", "grant", name, "--role", role, env=cli_env, check=True)
        roles[role] = url
    nobody_name, nobody = _login(db, "none")

    # kataster_leser: public views, nothing else.
    with psycopg.connect(roles["leser"]) as conn:
        assert conn.execute("SELECT count(*) FROM kataster.flurstueck").fetchone()[0] == 6
        conn.execute("SELECT count(*) FROM kataster.flurstueck_am(now())")
    for stmt in ("SELECT * FROM kataster.ax_flurstueck", "SELECT * FROM kataster_privat.eigentum",
                 "SELECT * FROM kataster_privat.ax_person",
                 "SELECT * FROM kataster_privat.eigentum_auskunft('x', 'AZ 1')",
                 "DELETE FROM kataster.ax_flurstueck"):
        assert "permission denied" in _denied(roles["leser"], stmt)
    assert "permission denied" in _denied(roles["leser"], "UPDATE kataster.flurstueck SET lage = 'x'")
    assert "permission denied" in _denied(nobody, "SELECT * FROM kataster.flurstueck")

    # kataster_eigentum: only through the audited function, with an Aktenzeichen.
    with psycopg.connect(roles["eigentum"]) as conn:
        rows = conn.execute("SELECT name FROM kataster_privat.eigentum_auskunft(%s, %s)"
                            " ORDER BY 1", (fsk, "AZ 61-2026/17")).fetchall()
        assert [r[0] for r in rows] == ["Adlerqx", "Bergqx", "Clausqx"]
        conn.commit()
    assert "Aktenzeichen" in _denied(roles["eigentum"], "SELECT * FROM kataster_privat."
                                     "eigentum_auskunft(%s, %s)", (fsk, "  "))
    for stmt in ("SELECT * FROM kataster_privat.eigentum", "SELECT * FROM kataster_privat.ax_person",
                 "SELECT * FROM kataster_privat.eigentum_aufgeloest",
                 "SELECT * FROM kataster_privat.audit_log",
                 "INSERT INTO kataster_privat.audit_log (flurstueckskennzeichen, aktenzeichen)"
                 " VALUES ('x', 'y')", "DELETE FROM kataster_privat.audit_log"):
        assert "permission denied" in _denied(roles["eigentum"], stmt), stmt

    # kataster_admin: reads everything, cannot change the audit log.
    with psycopg.connect(roles["admin"]) as conn:
        assert conn.execute("SELECT count(*) FROM kataster_privat.ax_person").fetchone()[0] == 8
        log = conn.execute("SELECT db_user, flurstueckskennzeichen, aktenzeichen, at"
                           " FROM kataster_privat.audit_log").fetchall()
    eig_user = urlsplit(roles["eigentum"]).username
    assert [(r[0], r[1], r[2]) for r in log] == [(eig_user, fsk, "AZ 61-2026/17")]
    for stmt in ("UPDATE kataster_privat.audit_log SET aktenzeichen = 'x'",
                 "DELETE FROM kataster_privat.audit_log", "TRUNCATE kataster_privat.audit_log",
                 "UPDATE kataster.ax_flurstueck SET lage = 'x'"):
        assert "not allowed" in _denied(roles["admin"], stmt) or \
            "permission denied" in _denied(roles["admin"], stmt)
    # Not even the database owner can change or delete audit records.
    for stmt in ("UPDATE kataster_privat.audit_log SET aktenzeichen = 'x'",
                 "DELETE FROM kataster_privat.audit_log", "TRUNCATE kataster_privat.audit_log"):
        assert "append-only" in _denied(db.url, stmt)
    assert query(db, "SELECT count(*) FROM kataster_privat.audit_log")[0][0] == 1
    # The public views only read, even for the database owner.
    for stmt in ("UPDATE kataster.flurstueck SET lage = 'x'", "DELETE FROM kataster.flurstueck"):
        assert "only read" in _denied(db.url, stmt)


def test_eigentum_command(owners_db, cli_env):
    import json

    rows = json.loads(kataster("eigentum", "05309600100002______", "--aktenzeichen", "AZ 7",
                               "--json", env=cli_env, check=True).stdout)
    assert sorted(r["name"] for r in rows) == ["Dornqx", "Eichqx", "Finkqx"]
    empty = kataster("eigentum", "05309600100002______", "--aktenzeichen", " ", env=cli_env)
    assert empty.returncode == 2 and "Aktenzeichen" in empty.stderr
    assert query(owners_db, "SELECT count(*) FROM kataster_privat.audit_log")[0][0] == 1


def test_department_roles_can_use_the_command_line(owners_db, cli_env, tmp_path):
    """Every command ran the migrations first (CREATE SCHEMA IF NOT EXISTS …), so a member of
    kataster_eigentum got a traceback from 'kataster eigentum'."""
    import json
    import os

    name, url = _login(owners_db, "eigentum")
    kataster("sql", "grant", name, "--role", "eigentum", env=cli_env, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KATASTER_")}
    env.update(KATASTER_DATABASE_URL=url, KATASTER_PATHS_STATE_DIR=str(tmp_path / "s"),
               KATASTER_PATHS_OUTPUT_DIR=str(tmp_path / "o"))
    proc = kataster("eigentum", "05309600100002______", "--aktenzeichen", "AZ 9", "--json",
                    env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)
    assert query(owners_db, "SELECT db_user FROM kataster_privat.audit_log"
                            " WHERE aktenzeichen = 'AZ 9'") == [(name,)]
    out = kataster("export", "csv", "--layer", "flurstueck", "--out", tmp_path / "f.csv",
                   env=env)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
