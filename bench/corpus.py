"""The real corpus (../shared/data/corpus/) file by file: our result, GDAL's counts, both times.

For every file: `kataster import FILE` (with the default validation after import) into a fresh
migrated database, timed as the whole process; the objects per type against GDAL's NAS driver
(`ogrinfo -so -al` on a copy: the driver writes a ``.gfs`` beside the file; `ALKIS_beziehungen`
and `Delete` are not object types); `ogr2ogr -f PostgreSQL` of the same file in the same run as
the anchor (NAS files only); the coverage findings the validation left. Refused files show the
first line of our message. Prints one Markdown table. Not a test (the conformance test is
`tests/importing/test_corpus.py`); usage: ``python bench/corpus.py``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_vector import KATASTER, fresh_database, kataster_env, ogr2ogr_nas  # noqa: E402

from pipeline.db import Database  # noqa: E402
from pipeline.embedded import EmbeddedCluster  # noqa: E402

CORPUS = ROOT.parent / "shared" / "data" / "corpus"
NAS_INDICATOR = "NAS-Operationen;AAA-Fachschema;aaa.xsd;aaa-suite;adv/gid"


def gdal_counts(path, tmp):
    """{layer: features} as GDAL's NAS (or GML) driver reads a copy of ``path``."""
    copy = Path(tmp) / path.name.removesuffix(".gz")
    if path.suffix == ".gz":
        with gzip.open(path) as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        shutil.copy(path, copy)
    proc = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(copy)], capture_output=True,
                          text=True, env=dict(os.environ, NAS_INDICATOR=NAS_INDICATOR))
    if proc.returncode:
        return None, copy
    names = re.findall(r"^Layer name: (\S+)", proc.stdout, re.M)
    counts = re.findall(r"^Feature Count: (\d+)", proc.stdout, re.M)
    return ({n: int(c) for n, c in zip(names, counts, strict=True)
             if n not in ("ALKIS_beziehungen", "Delete")}, copy)


def coverage_findings(url):
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT rule, severity, count(*) FROM kataster.finding "
                            "WHERE rule LIKE 'coverage.%%' GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    return ", ".join(f"{n} {rule} ({sev})" for rule, sev, n in rows) or "none"


def main():
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")
    work = ROOT / "bench" / "out" / "corpus"
    work.mkdir(parents=True, exist_ok=True)
    cluster = EmbeddedCluster(work / "state")
    cluster.up()
    admin = cluster.url("postgres", "admin")
    rows = []
    try:
        for path in files:
            name = str(path.relative_to(CORPUS))
            url = fresh_database(admin, "bench_corpus")
            Database(url).prepare()
            env = kataster_env(url, work / "s")
            started = time.monotonic()
            proc = subprocess.run([str(KATASTER), "-q", "import", str(path), "--json"],
                                  capture_output=True, text=True, env=env)
            secs = time.monotonic() - started
            ours = json.loads(proc.stdout)["objects"] if proc.returncode == 0 else None
            with tempfile.TemporaryDirectory() as tmp:
                # (not for refused files: GDAL 3.6 spins on the entity bomb)
                gdal, copy = gdal_counts(path, tmp) if ours is not None else (None, None)
                ogr = "-"
                if gdal and not path.name.startswith(("AAA", "verein")):
                    ogr_s = ogr2ogr_nas(admin, "bench_corpus_ogr", copy, "--config",
                                        "NAS_INDICATOR", NAS_INDICATOR)
                    ogr = f"{ogr_s:.1f} s"
            if ours is None:
                message = (proc.stderr.strip().splitlines() or ["(no message)"])[0]
                message = message.replace(str(path), "FILE").replace("|", "/")[:140]
                rows.append((name, f"refused: {message}", "-", "-", f"{secs:.1f} s", "-", "-"))
                continue
            n = sum(ours.values())
            if gdal is None:
                same = "GDAL cannot read it"
            elif gdal == ours:
                same = "equal"
            elif len(gdal) == len(ours) == 1 and sum(gdal.values()) == n:
                same = f"equal (GDAL's layer {next(iter(gdal))})"     # its GML driver's name
            else:
                same = f"differ: {_diff(ours, gdal)}"
            rows.append((name, f"imported: {n:,} objects of {len(ours)} types",
                         f"{sum(gdal.values()):,}" if gdal is not None else "-", same,
                         f"{secs:.1f} s", ogr,
                         coverage_findings(url)))
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
    print("| file | kataster | GDAL objects | per type | kataster time | ogr2ogr | "
          "coverage findings |")
    print("| --- | --- | ---: | --- | ---: | ---: | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def _diff(ours, gdal):
    keys = sorted(set(ours) | set(gdal))
    return "; ".join(f"{k} {ours.get(k, 0)} vs {gdal.get(k, 0)}" for k in keys
                     if ours.get(k, 0) != gdal.get(k, 0))[:200]


if __name__ == "__main__":
    main()
