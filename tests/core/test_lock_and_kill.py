"""The import lock, and a real kill -9 in the middle of an import."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from conftest import kataster, query

from pipeline.runs import IMPORT_LOCK
from pipeline.synthetic.city import generate


@pytest.fixture(scope="module")
def big_gpkg(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.gpkg"
    generate(60_000, path, fmt="gpkg", seed=11)
    return path


def test_waits_for_the_lock_then_times_out(db, cli_env, sample_gpkg):
    holder = psycopg.connect(db.url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (IMPORT_LOCK,))
    try:
        env = dict(cli_env, KATASTER_DATABASE_LOCK_TIMEOUT="1")
        started = time.monotonic()
        proc = kataster("import", sample_gpkg, env=env)
        assert proc.returncode == 3, proc.stderr
        assert time.monotonic() - started >= 1
        assert "waiting for the import lock held by another import (server pid" in proc.stderr
        assert "gave up after 1 s" in proc.stderr and "nothing was imported" in proc.stderr
        assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck")[0][0] == 0

        # With a longer timeout the import waits, then proceeds once the lock is free.
        env = dict(cli_env, KATASTER_DATABASE_LOCK_TIMEOUT="60")
        exe = Path(sys.executable).with_name("kataster")
        waiting = subprocess.Popen([str(exe), "import", str(sample_gpkg)], env=env,
                                   stderr=subprocess.PIPE, text=True)
        # Until its session is there and has tried the lock (a slow start under load must
        # not let it find the lock free).
        assert _wait_for(db, "SELECT count(*) FROM pg_stat_activity"
                             " WHERE application_name = 'kataster import'", timeout=60)
        time.sleep(1)
        assert waiting.poll() is None
        holder.execute("SELECT pg_advisory_unlock(%s)", (IMPORT_LOCK,))
        _, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        assert "got the import lock after waiting" in err and "committed" in err
    finally:
        holder.close()


def _wait_for(db, sql, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query(db, sql)[0][0]:
            return True
        time.sleep(0.05)
    return False


def _state(db):
    return query(db, "SELECT count(*), count(*) FILTER (WHERE endet IS NULL),"
                     " coalesce(sum(amtliche_flaeche), 0), max(run_id)"
                     " FROM kataster.ax_flurstueck")[0]


@pytest.mark.parametrize("moment", ["staging", "merge"])
def test_kill_9_mid_import_keeps_previous_state(db, cli_env, sample_gpkg, big_gpkg, moment):
    kataster("import", sample_gpkg, env=cli_env, check=True)
    before = _state(db)
    exe = Path(sys.executable).with_name("kataster")
    proc = subprocess.Popen([str(exe), "import", str(big_gpkg)], env=cli_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if moment == "staging":
            assert _wait_for(db, "SELECT count(*) FROM pg_stat_activity"
                                 " WHERE query ILIKE 'COPY%stage_%'")
            time.sleep(0.3)
        else:
            assert _wait_for(db, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                                 " AND (query ILIKE 'INSERT INTO \"kataster\".\"ax_%'"
                                 "      OR query ILIKE 'UPDATE \"kataster\".\"ax_%')")
        assert proc.poll() is None, "the import finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # The server notices the dead client and rolls its transaction back.
    assert _wait_for(db, "SELECT count(*) = 0 FROM pg_stat_activity"
                         " WHERE application_name = 'kataster import'", timeout=30)
    assert _state(db) == before
    # The next import needs no manual clean-up: it gets the lock at once and succeeds.
    env = dict(cli_env, KATASTER_DATABASE_LOCK_TIMEOUT="5")
    done = kataster("import", big_gpkg, env=env, check=True)
    assert "waiting" not in done.stderr
    runs = query(db, "SELECT status FROM kataster.import_run ORDER BY id")
    assert [r[0] for r in runs] == ["committed", "aborted", "committed"]
    assert _state(db)[1] == 60_000


def test_ctrl_c_mid_import_keeps_previous_state(db, cli_env, sample_gpkg, big_gpkg):
    """Ctrl-C (SIGINT) in the middle of an import: the run is rolled back and recorded as
    failed, the command says so without a traceback and exits with 130, as shells expect."""
    kataster("import", sample_gpkg, env=cli_env, check=True)
    before = _state(db)
    exe = Path(sys.executable).with_name("kataster")
    # As at a terminal: a suite started in the background (a shell's `&`) passes SIGINT on
    # ignored, and a process that ignores it at start keeps ignoring it.
    proc = subprocess.Popen([str(exe), "import", str(big_gpkg)], env=cli_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert _wait_for(db, "SELECT count(*) FROM pg_stat_activity"
                             " WHERE query ILIKE 'COPY%stage_%'")
        time.sleep(0.3)
        assert proc.poll() is None, "the import finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert _state(db) == before
    status, error = query(db, "SELECT status, error FROM kataster.import_run"
                              " ORDER BY id DESC LIMIT 1")[0]
    assert status == "failed" and "KeyboardInterrupt" in error


def test_lost_database_connection_fails_with_one_message(db, cli_env, sample_gpkg, big_gpkg):
    """The server dropping the import's connection (stopped, restarted) gave two chained
    tracebacks and left the run 'running'. Now: one message, exit 1, and the next import
    marks the run aborted."""
    kataster("import", sample_gpkg, env=cli_env, check=True)
    before = _state(db)
    exe = Path(sys.executable).with_name("kataster")
    proc = subprocess.Popen([str(exe), "import", str(big_gpkg)], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(db, "SELECT count(*) FROM pg_stat_activity"
                             " WHERE query ILIKE 'COPY%stage_%'")
        query(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE application_name = 'kataster import'")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert "connection to the database was lost" in err and "nothing of it was kept" in err
    assert _state(db) == before
    assert query(db, "SELECT status FROM kataster.import_run ORDER BY id")[-1] == ("running",)
    kataster("import", sample_gpkg, "--force", env=cli_env, check=True)
    assert [r[0] for r in query(db, "SELECT status FROM kataster.import_run ORDER BY id")] == \
        ["committed", "aborted", "committed"]
