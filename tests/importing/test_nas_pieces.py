"""Large NAS extracts cut into pieces that worker processes parse: same rows, same errors."""

import json
import os
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import psycopg
import pytest
from conftest import drop_database, kataster, new_database, query

from importers.nas import NasDocument, plan_pieces
from pipeline.errors import SourceError
from pipeline.synthetic.nas import write, write_nba

SMALL = 64 * 1024          # pieces of 64 kB: a 400-parcel extract (~4.6 MB) gives ~70


@pytest.fixture(scope="module")
def extract(tmp_path_factory):
    path = tmp_path_factory.mktemp("pieces") / "extract.xml"
    write(400, path, version="6.0", seed=5, srs="gk")
    return path


def records(doc):
    return [(r.objektart, r.gml_id, r.beginnt, r.endet, r.attrs, r.refs,
             None if r.geom is None else r.geom.wkb, r.srs) for r in doc.records()]


def test_pieces_cover_the_file_and_cut_between_features(extract):
    pieces = plan_pieces("extract.xml", extract, SMALL)
    assert len(pieces) > 20
    data = extract.read_bytes()
    assert pieces[0].start == 0 and pieces[-1].end == len(data)
    assert all(a.end == b.start for a, b in pairwise(pieces))
    assert all(data[p.start:].startswith(b"<gml:featureMember>") for p in pieces[1:])
    assert not pieces[0].head and all(p.head == pieces[1].head for p in pieces[1:])
    assert not pieces[-1].tail and pieces[0].tail == \
        b"</wfs:FeatureCollection></enthaelt></AX_Bestandsdatenauszug>"
    whole = records(NasDocument(extract, "extract.xml", 0.01))
    cut = [r for p in pieces for r in records(NasDocument(extract, "extract.xml", 0.01, p))]
    assert len(whole) > 4000 and cut == whole


def test_what_is_not_cut(extract, tmp_path):
    shared = Path(__file__).resolve().parents[3] / "shared" / "data" / "nas"
    # Update files (operations must stay in order), single-feature answers, bare features.
    for name in ("nba/replace_nas.xml", "wfs/duisburg_baerl_1_flurstueck_nas_gid60.gml",
                 "bonn_gid71/AX_Flurstueck.xml"):
        assert len(plan_pieces(name, shared / name, 1024)) == 1, name
    # Files under twice the piece size.
    assert len(plan_pieces("x", extract, extract.stat().st_size // 2 + 1)) == 1
    # A comment in the body could hide a container's start tag: the file stays whole.
    data = extract.read_bytes()
    middle = data.index(b"<gml:featureMember>", len(data) // 2)
    commented = tmp_path / "commented.xml"
    commented.write_bytes(data[:middle] + b"<!-- <gml:featureMember> -->" + data[middle:])
    assert len(plan_pieces("x", commented, SMALL)) == 1


def test_errors_name_the_position_in_the_file(extract, tmp_path):
    data = extract.read_bytes()
    at = data.index(b"<beginnt>", len(data) * 2 // 3)
    broken = tmp_path / "broken.xml"
    broken.write_bytes(data[:at] + b"<beginnt" + data[at + len(b"<beginnt>"):])
    with pytest.raises(SourceError) as whole:
        records(NasDocument(broken, "broken.xml", 0.01))
    pieces = plan_pieces("broken.xml", broken, SMALL)
    with pytest.raises(SourceError) as cut:
        for p in pieces:
            records(NasDocument(broken, "broken.xml", 0.01, p))
    assert "not well-formed XML at line" in str(whole.value)
    assert str(cut.value) == str(whole.value)
    # A file that ends early: the last piece reports where it ends.
    truncated = tmp_path / "truncated.xml"
    truncated.write_bytes(data[:len(data) - 5000])
    with pytest.raises(SourceError) as whole:
        records(NasDocument(truncated, "truncated.xml", 0.01))
    with pytest.raises(SourceError) as cut:
        for p in plan_pieces("truncated.xml", truncated, SMALL):
            records(NasDocument(truncated, "truncated.xml", 0.01, p))
    assert str(cut.value) == str(whole.value)


def contents(url):
    """Every stored row of every table and materialised view an import writes (run ids,
    serial ids and the run's own timestamps left out)."""
    out = {}
    with psycopg.connect(url) as conn:
        relations = conn.execute(
            "SELECT c.oid, n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('kataster', 'kataster_privat') AND c.relkind IN ('r', 'm')"
            "   AND c.relname NOT IN ('import_run', 'import_file', 'audit_log', 'repair_log',"
            "                         'alembic_version')").fetchall()
        for oid, name in relations:
            cols = [r[0] for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0"
                " AND NOT attisdropped AND attname NOT IN ('id', 'run_id', 'first_run_id',"
                " 'closed_run_id', 'created', 'updated') ORDER BY attnum", (oid,))]
            row = ", ".join(f'"{c}"' for c in cols)
            out[name] = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), ''))"  # noqa: S608
                f" FROM (SELECT ({row})::text AS r FROM {name}) x").fetchone()
    return out


def test_import_in_worker_processes_stores_the_same_rows(extract, cli_env, db, server):
    proc = kataster("import", extract, "--json", env={**cli_env, "KATASTER_IMPORT_WORKERS": "1"})
    assert proc.returncode == 0, proc.stderr
    name, url = new_database(server)
    try:
        env = {**cli_env, "KATASTER_DATABASE_URL": url, "KATASTER_IMPORT_WORKERS": "2",
               "KATASTER_IMPORT_PIECE_BYTES": str(SMALL)}
        parallel = kataster("import", extract, "--json", env=env)
        assert parallel.returncode == 0, parallel.stderr
        serial, cut = contents(db.url), contents(url)
        assert serial["kataster.ax_flurstueck"][0] == 400
        assert serial["kataster_privat.eigentum_aufgeloest"][0] > 400
        assert cut == serial
        a, b = json.loads(proc.stdout), json.loads(parallel.stdout)
        assert (a["objects"], a["merge"], a["findings"]) == (b["objects"], b["merge"],
                                                             b["findings"])
    finally:
        drop_database(server, name)


def test_error_in_a_worker_names_file_and_feature_and_keeps_nothing(extract, cli_env, db,
                                                                   tmp_path):
    data = extract.read_bytes()
    at = data.index(b"<beginnt>", len(data) * 3 // 4) + len(b"<beginnt>")
    gml_id = data[:at].rsplit(b'gml:id="', 1)[1][:16].decode()
    bad = tmp_path / "bad.xml"
    bad.write_bytes(data[:at] + b"2020-13-45" + data[at + len(b"2020-01-01"):])
    env = {**cli_env, "KATASTER_IMPORT_WORKERS": "2", "KATASTER_IMPORT_PIECE_BYTES": str(SMALL)}
    proc = kataster("import", bad, env=env)
    assert proc.returncode == 1
    assert "bad.xml" in proc.stderr and gml_id in proc.stderr and "invalid timestamp" in proc.stderr
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck") == [(0,)]
    assert query(db, "SELECT status FROM kataster.import_run") == [("failed",)]


def _workers(pid):
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in children
            if b"multiprocessing.spawn" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.fixture(scope="module")
def bigger(tmp_path_factory):
    """An extract that keeps two workers busy for a few seconds with 64 kB pieces."""
    path = tmp_path_factory.mktemp("bigger") / "bigger.xml"
    write(1500, path, version="6.0", seed=6)
    return path


def _import_with_workers(path, cli_env):
    """Start ``kataster import`` with two workers; return it and their pids once they parse."""
    env = {**cli_env, "KATASTER_IMPORT_WORKERS": "2", "KATASTER_IMPORT_PIECE_BYTES": str(SMALL)}
    exe = Path(sys.executable).with_name("kataster")
    proc = subprocess.Popen([str(exe), "import", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(workers := _workers(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    if len(workers) < 2 or proc.poll() is not None:
        proc.kill()
        raise AssertionError("no workers seen while importing")
    time.sleep(0.5)                                   # they are parsing now
    return proc, workers


def test_kill_9_mid_import_leaves_no_workers_and_no_rows(bigger, cli_env, db):
    proc, workers = _import_with_workers(bigger, cli_env)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    # (A worker is reaped by init once it dies; /proc/<pid> is gone then.)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()], "workers outlived the import"
    deadline = time.monotonic() + 30
    while query(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                    " 'kataster import'")[0][0] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck") == [(0,)]
    assert query(db, "SELECT count(*) FROM kataster_privat.ax_person") == [(0,)]


def test_delivery_of_several_files_in_worker_processes(extract, cli_env, db, server, tmp_path):
    # An extract (cut into pieces) and an NBA update of it (whole: its operations keep their
    # order) in one run: the same result as read in one process.
    update = tmp_path / "update.xml"
    write_nba(400, update, version="6.0", seed=5, fraction=0.05)
    serial = kataster("import", extract, update, "--json",
                      env={**cli_env, "KATASTER_IMPORT_WORKERS": "1"})
    assert serial.returncode == 0, serial.stderr
    name, url = new_database(server)
    try:
        env = {**cli_env, "KATASTER_DATABASE_URL": url, "KATASTER_IMPORT_WORKERS": "2",
               "KATASTER_IMPORT_PIECE_BYTES": str(SMALL)}
        parallel = kataster("import", extract, update, "--json", env=env)
        assert parallel.returncode == 0, parallel.stderr
        a, b = json.loads(serial.stdout), json.loads(parallel.stdout)
        assert a["merge"]["kataster.ax_flurstueck"]["inserted"] == 420    # 20 new versions
        assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck"
                         " WHERE endet IS NOT NULL") == [(20,)]
        assert (a["objects"], a["merge"], a["findings"]) == (b["objects"], b["merge"],
                                                             b["findings"])
        assert contents(url) == contents(db.url)
    finally:
        drop_database(server, name)


def test_a_killed_worker_fails_the_run_clearly(bigger, cli_env, db):
    proc, workers = _import_with_workers(bigger, cli_env)
    try:
        os.kill(workers[0], signal.SIGKILL)          # as the kernel's OOM killer would
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert "worker process ended abruptly" in err and "Traceback" not in err
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck") == [(0,)]
    assert query(db, "SELECT status FROM kataster.import_run") == [("failed",)]
    assert not [w for w in workers if Path(f"/proc/{w}").exists()]
