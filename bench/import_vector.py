"""Benchmark: `kataster import` of generated ALKIS-vereinfacht GeoPackages vs `ogr2ogr`.

For each size (default 100,000 and 1,000,000 parcels) it generates the file once, then in the
same run and on the same PostgreSQL cluster:

* `kataster import FILE` into a fresh, migrated database (one transaction, merge, indexes);
* `ogr2ogr -f PostgreSQL` (Debian's GDAL) of the same file, all layers, with a GiST spatial
  index, into a scratch schema of another fresh database.

It prints parcels/s for both, the ratio (ours / ogr2ogr; ≥ 1.0 means at least as fast) and the
peak RSS of our import process. Usage: ``python bench/import_vector.py [--sizes 100000,1000000]``.
Not a test: it asserts nothing; record the figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.db import Database  # noqa: E402
from pipeline.embedded import EmbeddedCluster  # noqa: E402
from pipeline.synthetic.city import generate  # noqa: E402

KATASTER = Path(sys.executable).with_name("kataster")


def _status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        return []
    return children + [d for c in children for d in _descendants(c)]


def run_measured(args, env=None):
    """Run a command; return (seconds, peak RSS in MB, stdout).

    Peak RSS is the largest sum of the resident sizes of the process and of every process it
    started (NAS import workers), polled every 20 ms while it runs, or the process's own peak
    (VmHWM) if that is larger. ``ru_maxrss`` of a child would include the memory of this
    (forking) process, which holds the generated data.
    """
    import tempfile

    started = time.monotonic()
    # Output goes to files, not pipes: a full pipe would stall the measured process.
    with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
        proc = subprocess.Popen(args, env=env, stdout=out_f, stderr=err_f, text=True)
        peak = 0
        while proc.poll() is None:
            together = sum(_status_kb(pid, "VmRSS:") for pid in _descendants(proc.pid))
            peak = max(peak, _status_kb(proc.pid, "VmHWM:"),
                       _status_kb(proc.pid, "VmRSS:") + together)
            time.sleep(0.02)
        seconds = time.monotonic() - started
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({proc.returncode}):\n{err}")
    return seconds, peak / 1024, out


def fresh_database(admin_url, name):
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + name))


def scratch_database(admin_url, name):
    """A fresh database with PostGIS and an empty schema ``scratch`` for ogr2ogr to load into."""
    url = fresh_database(admin_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
        conn.execute("CREATE SCHEMA scratch")
    return url


def ogr2ogr_load(admin_url, name, path):
    """``ogr2ogr -f PostgreSQL`` of every layer of the vector file ``path`` into schema
    ``scratch`` of a fresh database ``name`` (GiST indexes, COPY); returns its URL, seconds
    and peak RSS."""
    url = scratch_database(admin_url, name)
    secs, rss, _ = run_measured([
        "ogr2ogr", "-f", "PostgreSQL", pg_conninfo(url), str(path),
        "-lco", "SCHEMA=scratch", "-lco", "SPATIAL_INDEX=GIST", "-lco", "OVERWRITE=YES",
        "-nlt", "PROMOTE_TO_MULTI", "--config", "PG_USE_COPY", "YES"])
    return url, secs, rss


def ogr2ogr_nas(admin_url, name, path, *config):
    """``ogr2ogr -f PostgreSQL`` of a NAS file (all types, curves made linear, COPY) into
    schema ``scratch`` of a fresh database ``name``; ``config``: more ``--config`` pairs.
    Returns the seconds it took."""
    url = scratch_database(admin_url, name)
    conninfo = pg_conninfo(url) + " active_schema=scratch schemas=scratch"
    secs, _, _ = run_measured(["ogr2ogr", "-f", "PostgreSQL", conninfo, str(path), "-nlt",
                               "CONVERT_TO_LINEAR", "--config", "PG_USE_COPY", "YES",
                               *config])
    return secs


def kataster_env(url, state_dir, **settings):
    """The environment for a `kataster` process on database ``url`` with its state under
    ``state_dir`` (and further ``KATASTER_…`` settings), none of the caller's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KATASTER_")}
    env.update(KATASTER_DATABASE_URL=url, KATASTER_PATHS_STATE_DIR=str(state_dir), **settings)
    return env


def pg_conninfo(url):
    parts = urlsplit(url)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if p)
    return (f"PG:host={parts.hostname} port={parts.port} dbname={parts.path[1:]} "
            f"user={parts.username} passfile={query['passfile']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    cluster = EmbeddedCluster(work / "state")
    cluster.up()
    admin = cluster.url("postgres", "admin")
    rows = []
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            path = work / f"muelheim_{n}.gpkg"
            if not path.exists():
                t = time.monotonic()
                generate(n, path, fmt="gpkg", seed=1)
                print(f"generated {n:,} parcels in {time.monotonic() - t:.1f} s "
                      f"({path.stat().st_size / 1e6:.0f} MB)", flush=True)

            ours_url = fresh_database(admin, "bench_ours")
            Database(ours_url).prepare()
            env = kataster_env(ours_url, work / "s2")
            # The import alone (ogr2ogr does not validate); validation is bench/validate.py.
            ours_s, ours_rss, _ = run_measured([str(KATASTER), "-q", "import", "--no-validate",
                                                str(path)], env)
            with psycopg.connect(ours_url) as conn:
                count = conn.execute("SELECT count(*) FROM kataster.flurstueck").fetchone()[0]
            assert count == n, (count, n)

            ogr_url, ogr_s, ogr_rss = ogr2ogr_load(admin, "bench_ogr", path)
            with psycopg.connect(ogr_url) as conn:
                ogr_count = conn.execute("SELECT count(*) FROM scratch.flurstueck").fetchone()[0]
                has_index = conn.execute(
                    "SELECT count(*) FROM pg_indexes WHERE schemaname = 'scratch'"
                    " AND tablename = 'flurstueck' AND indexdef ILIKE '%gist%'").fetchone()[0]
            assert ogr_count == n and has_index, (ogr_count, has_index)

            row = (n, n / ours_s, n / ogr_s, ogr_s / ours_s, ours_rss, ours_s, ogr_s, ogr_rss)
            rows.append(row)
            print(f"{n:>9,} parcels: kataster {row[1]:9,.0f}/s ({ours_s:6.1f} s)   "
                  f"ogr2ogr {row[2]:9,.0f}/s ({ogr_s:6.1f} s)   ratio {row[3]:.2f}   "
                  f"peak RSS kataster {ours_rss:,.0f} MB (ogr2ogr {ogr_rss:,.0f} MB)", flush=True)
    finally:
        cluster.destroy()
        shutil.rmtree(work / "s2", ignore_errors=True)
    print("\n| parcels | kataster parcels/s | ogr2ogr parcels/s | ratio | kataster peak RSS |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n, ours, ogr, ratio, rss, *_ in rows:
        print(f"| {n:,} | {ours:,.0f} | {ogr:,.0f} | {ratio:.2f} | {rss:,.0f} MB |")


if __name__ == "__main__":
    main()
