"""SQL roles: what each role can and cannot read, change and delete; the audited look-up."""

import re
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from conftest import kataster, query, url_as
from owners import features
from psycopg import sql

from pipeline.db import Database
from pipeline.synthetic.nas_writer import Writer, open_output


def _login(db, role):
    name = f"dept_{role}_{uuid.uuid4().hex[:6]}"
    with Database(url_as(db.url, "admin")).connect() as conn:    # the owner may not create roles
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
    # Not even the database owner can change or delete audit records (the log is not its
    # table); a superuser's plain statements meet the append-only trigger.
    for stmt in ("UPDATE kataster_privat.audit_log SET aktenzeichen = 'x'",
                 "DELETE FROM kataster_privat.audit_log", "TRUNCATE kataster_privat.audit_log"):
        assert "permission denied" in _denied(db.url, stmt)
        assert "append-only" in _denied(url_as(db.url, "admin"), stmt)
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
    # The other reading commands too.
    for args in (("runs",), ("findings", "list"), ("versions",), ("db", "status")):
        proc = kataster(*args, env=env)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
    # Writing is the owner's: a clear refusal, not a traceback, and nothing changed.
    proc = kataster("findings", "accept", "--rule", "geom.invalid", "--reason", "x", env=env)
    assert proc.returncode == 1 and "not allowed for this database role" in proc.stderr, \
        proc.stderr


def _audit(db):
    return query(db, "SELECT id, db_user, flurstueckskennzeichen, aktenzeichen, os_user, bearbeiter"
                     " FROM kataster_privat.audit_log ORDER BY id")


def test_a_rollback_cannot_erase_the_audit(owners_db, cli_env):
    """As a kataster_eigentum member: BEGIN; SELECT … eigentum_auskunft over every parcel;
    ROLLBACK returned the owners and left no audit record."""
    db = owners_db
    name, url = _login(db, "eigentum")
    kataster("sql", "grant", name, "--role", "eigentum", env=cli_env, check=True)
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT e.* FROM kataster.flurstueck f CROSS JOIN LATERAL"
                            " kataster_privat.eigentum_auskunft(f.flurstueckskennzeichen, 'AZ R')"
                            " e").fetchall()
        assert rows
        conn.rollback()
    log = _audit(db)
    assert len(log) == 6 and {r[1] for r in log} == {name} and {r[3] for r in log} == {"AZ R"}
    # A transaction that fails after the look-up keeps its record too.
    with psycopg.connect(url) as conn:
        conn.execute("SELECT * FROM kataster_privat.eigentum_auskunft('05309600100001______',"
                     " 'AZ F')")
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT 1 / 0")
    assert [r[3] for r in _audit(db)][-1] == "AZ F"
    # The CLI records who asks, as claimed, besides the database user.
    kataster("eigentum", "05309600100001______", "--aktenzeichen", "AZ C", "--bearbeiter",
             "Frau Muster", env=cli_env, check=True)
    last = _audit(db)[-1]
    assert last[3:] == ("AZ C", __import__("getpass").getuser(), "Frau Muster")
    assert kataster("audit", "verify", env=cli_env).returncode == 0


def test_audit_verify_reports_every_change(owners_db, cli_env):
    db = owners_db
    for az in ("AZ 1", "AZ 2", "AZ 3", "AZ 4"):
        kataster("eigentum", "05309600100001______", "--aktenzeichen", az, env=cli_env,
                 check=True)
    ok = kataster("audit", "verify", env=cli_env)
    assert ok.returncode == 0 and "complete and unchanged" in ok.stderr
    auditor = query(db, "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log'")[0][0]
    assert auditor.startswith("kataster_audit_")
    with Database(url_as(db.url, "admin")).connect() as conn:   # the log's own role tampers
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(auditor)))
        conn.execute("ALTER TABLE kataster_privat.audit_log DISABLE TRIGGER USER")
        conn.execute("UPDATE kataster_privat.audit_log SET aktenzeichen = 'harmlos' WHERE id = 2")
        conn.execute("DELETE FROM kataster_privat.audit_log WHERE id IN (3, 4)")
        conn.commit()
    bad = kataster("audit", "verify", env=cli_env)
    assert bad.returncode == 1, bad.stderr
    assert "record 2 was changed after it was written" in bad.stdout
    assert "records after 2 up to 4 are missing (the newest were removed)" in bad.stdout


def test_bulk_look_ups_are_limited_per_aktenzeichen(owners_db, cli_env):
    db = owners_db
    kataster("audit", "limit", "3", env=cli_env, check=True)
    with db.connect() as conn:
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT e.* FROM kataster.flurstueck f CROSS JOIN LATERAL"
                         " kataster_privat.eigentum_auskunft(f.flurstueckskennzeichen, 'AZ B') e"
                         ).fetchall()
    assert "exceed 3 parcels per hour" in str(err.value)
    assert len(_audit(db)) == 3                       # each parcel looked up is recorded
    other = kataster("eigentum", "05309600100001______", "--aktenzeichen", "AZ anders",
                     env=cli_env)
    assert other.returncode == 0, other.stderr         # the limit is per Aktenzeichen
    refused = kataster("eigentum", "05309600100001______", "--aktenzeichen", "AZ B",
                       env=cli_env)
    assert refused.returncode == 1 and "exceed 3 parcels per hour" in refused.stderr


def test_a_malformed_key_is_refused_before_the_audit(owners_db, cli_env):
    proc = kataster("eigentum", "0530960010000", "--aktenzeichen", "AZ 1", env=cli_env)
    assert proc.returncode == 2 and "not a Flurstückskennzeichen" in proc.stderr, proc.stderr
    assert _audit(owners_db) == []
    # Keys are taken without the trailing underscores too.
    ok = kataster("eigentum", "05309600100002", "--aktenzeichen", "AZ 1", env=cli_env)
    assert ok.returncode == 0 and _audit(owners_db)[0][2] == "05309600100002______"


def test_sql_roles_without_createrole_and_unwritable_output(owners_db, cli_env, tmp_path):
    import os

    name, url = _login(owners_db, "leser")
    kataster("sql", "grant", name, "--role", "leser", env=cli_env, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KATASTER_")}
    env.update(KATASTER_DATABASE_URL=url, KATASTER_PATHS_STATE_DIR=str(tmp_path / "s"))
    proc = kataster("sql", "roles", env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "CREATEROLE" in proc.stderr
    for fmt in ("gpkg", "csv"):
        out = kataster("export", fmt, "--layer", "flurstueck", "--out", f"/proc/x.{fmt}",
                       env=cli_env)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert "cannot write the export" in out.stderr


def test_eigentum_for_people(owners_db, cli_env):
    """No headers, '1100' unexplained and shares as 1.00000000000000000000/1.000…: now a table
    with German headers, the Buchungsart in words and reduced fractions; --json the same."""
    import json

    out = kataster("eigentum", "05309600100002______", "--aktenzeichen", "AZ T", env=cli_env,
                   check=True).stdout.splitlines()
    assert out[0].split() == ["Buchungsblatt", "Buchungsart", "Anteil", "Eigentümer",
                              "Gemeinschaft"]
    body = "\n".join(out[1:])
    assert "Wohnungs-/Teileigentum" in body and ".000" not in body
    assert re.search(r"\b\d+/\d+\b", body), body
    rows = json.loads(kataster("eigentum", "05309600100002______", "--aktenzeichen", "AZ T",
                               "--json", env=cli_env, check=True).stdout)
    assert all(r["anteil"] is None or re.fullmatch(r"\d+/\d+", r["anteil"]) for r in rows)
    assert {r["buchungsart_text"] for r in rows} >= {"Wohnungs-/Teileigentum"}
