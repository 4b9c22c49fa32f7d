"""Nothing lost, nothing let in: the probes of the reliability issue that concern what is read.

Each test reproduces a defect that was seen (a file silently skipped, an absurd coordinate
committed, a parser refusal that could be bypassed, a file's content echoed in an error)."""

import gzip
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.affinity
from conftest import kataster, query

from pipeline.synthetic.nas_writer import Amount, Writer, open_output

BOX = shapely.box(350000, 5700000, 350010, 5700010)


def parcel(oid, x=0, lage="Am Markt 1"):
    return {"type": "AX_Flurstueck", "id": oid, "beginnt": "2020-01-01T00:00:00Z",
            "geom": ("position", shapely.affinity.translate(BOX, x)),
            "props": [("flurstueckskennzeichen", "05309600100001______"),
                      ("amtlicheFlaeche", Amount(100)), ("flurnummer", "1"),
                      ("zeigtAufExternes", {"AA_Fachdatenverbindung": {"art": lage}})]}


def extract(path, features):
    with open_output(path) as fh:
        Writer("6.0").extract(features, fh)
    return path


def parcels(db):
    return query(db, "SELECT gml_id FROM kataster.ax_flurstueck ORDER BY 1")


@pytest.mark.parametrize("archive", ["gz", "zip"])
def test_archives_in_a_directory_are_imported_not_skipped(archive, cli_env, db, tmp_path):
    """import d/ with a.xml and b.xml.gz (or .zip) imported only a.xml, and a later
    import of d/b.xml.gz said "already imported"."""
    d = tmp_path / "d"
    d.mkdir()
    extract(d / "a.xml", [parcel("DENW36AL0000RA01")])
    b = extract(tmp_path / "b.xml", [parcel("DENW36AL0000RB01", 20)])
    if archive == "gz":
        (d / "b.xml.gz").write_bytes(gzip.compress(b.read_bytes()))
        packed = d / "b.xml.gz"
    else:
        with zipfile.ZipFile(d / "b.zip", "w") as z:
            z.write(b, "b.xml")
        packed = d / "b.zip"
    proc = kataster("import", d, "--json", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert parcels(db) == [("DENW36AL0000RA01",), ("DENW36AL0000RB01",)]
    again = kataster("import", packed, env=cli_env)
    assert again.returncode == 0 and "already imported" in again.stderr   # it was, truly


def test_a_shapefile_whose_dbf_changed_is_imported_again(cli_env, db, tmp_path, sample_gpkg):
    layer = gpd.read_file(sample_gpkg, layer="Flurstueck").head(50)
    shp = tmp_path / "flst.shp"
    layer.to_file(shp, encoding="UTF-8")
    kataster("import", shp, env=cli_env, check=True)
    layer.loc[0, "flaeche"] = 123456.5
    layer.to_file(shp, encoding="UTF-8")            # same geometry (.shp), other .dbf
    proc = kataster("import", shp, "--json", env=cli_env)
    assert proc.returncode == 0 and '"status": "committed"' in proc.stdout, proc.stdout
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck WHERE endet IS NULL"
                     " AND amtliche_flaeche = %s", (float(layer.loc[0, "flaeche"]),)) == [(1,)]


def test_wrong_crs_and_absurd_coordinates_are_refused(cli_env, db, tmp_path, sample_gpkg):
    """A GeoPackage in EPSG:25832 declared as EPSG:4326 committed Infinity geometries and
    replaced the good parcels; coordinates of 1e300 were accepted."""
    good = gpd.read_file(sample_gpkg, layer="Flurstueck").head(200)
    ok = tmp_path / "ok.gpkg"
    good.to_file(ok, layer="Flurstueck")
    kataster("import", ok, env=cli_env, check=True)
    before = query(db, "SELECT count(*), sum(ST_Area(geom)) FROM kataster.ax_flurstueck")
    wrong = tmp_path / "wrong.gpkg"
    good.set_crs(4326, allow_override=True).to_file(wrong, layer="Flurstueck")
    proc = kataster("import", wrong, env=cli_env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "outside Germany" in proc.stderr and "EPSG:4326" in proc.stderr, proc.stderr
    huge = good.copy()
    huge.loc[3, "geometry"] = shapely.box(1e300, 1e300, 2e300, 2e300)
    (tmp_path / "huge.gpkg").unlink(missing_ok=True)
    huge.to_file(tmp_path / "huge.gpkg", layer="Flurstueck")
    proc = kataster("import", tmp_path / "huge.gpkg", env=cli_env)
    assert proc.returncode == 1 and "outside Germany" in proc.stderr, proc.stderr
    assert query(db, "SELECT count(*), sum(ST_Area(geom)) FROM kataster.ax_flurstueck") == before


def test_nan_coordinates_in_nas_are_refused(cli_env, db, tmp_path):
    path = extract(tmp_path / "nan.xml", [parcel("DENW36AL0000NA01")])
    path.write_text(path.read_text().replace("350010.000 5700000.000", "NaN 5700000.000", 1))
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "not a finite number" in proc.stderr and "DENW36AL0000NA01" in proc.stderr
    assert "at line 3" in proc.stderr, proc.stderr             # the writer's one long line
    assert parcels(db) == []


@pytest.mark.parametrize("prolog", [
    '<?xml version="1.0"?><?vendor pi?><!DOCTYPE x [<!ENTITY e "e">]>',             # PI first
    '<?xml version="1.0"?><!--' + "x" * 300_000 + '--><!DOCTYPE x [<!ENTITY e "e">]>',  # long
    "utf-16",
])
def test_dtds_are_refused_by_the_parser_itself(prolog, cli_env, db, tmp_path):
    """A processing instruction before the DOCTYPE, a prolog longer than 256 KiB or UTF-16
    bypassed the refusal, and the text after an entity reference was dropped."""
    body = extract(tmp_path / "p.xml", [parcel("DENW36AL0000DT01", lage="A&e;B")]).read_text()
    body = body.split("?>", 1)[1].replace("&amp;e;", "&e;")
    path = tmp_path / "dtd.xml"
    if prolog == "utf-16":
        path.write_bytes(('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e "e">]>'
                          + body).encode("utf-16"))
    else:
        path.write_text(prolog + body)
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 1 and "declares a DTD or entities" in proc.stderr, proc.stderr
    assert parcels(db) == []


def test_predefined_entities_and_character_references_are_read(cli_env, db, tmp_path):
    path = extract(tmp_path / "e.xml", [parcel("DENW36AL0000EN01", lage="Müller & Söhne <1>")])
    text = path.read_text().replace("Söhne", "S&#246;hne")
    path.write_text(text)
    kataster("import", path, env=cli_env, check=True)
    assert query(db, "SELECT attrs->'zeigtAufExternes'->>'art' FROM kataster.ax_flurstueck") \
        == [("Müller & Söhne <1>",)]


def test_links_out_of_the_imported_directory_are_refused(cli_env, db, tmp_path):
    outside = extract(tmp_path / "secret.xml", [parcel("DENW36AL0000SL01")])
    d = tmp_path / "d"
    d.mkdir()
    extract(d / "a.xml", [parcel("DENW36AL0000SL02", 20)])
    (d / "link.xml").symlink_to(outside)
    proc = kataster("import", d, env=cli_env)
    assert proc.returncode == 1 and "outside the imported directory" in proc.stderr, proc.stderr
    assert parcels(db) == []


def test_a_profile_error_never_echoes_the_file(cli_env, db, tmp_path, sample_gpkg):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:geheim:/root:/bin/bash\n")
    binary = tmp_path / "blob"
    binary.write_bytes(np.random.default_rng(1).bytes(200))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed geheim\n")
    for profile in (secret, binary, broken):
        proc = kataster("import", sample_gpkg, "--profile", profile, env=cli_env)
        assert proc.returncode == 2, proc.stderr
        assert "geheim" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert str(profile) in proc.stderr


@pytest.mark.parametrize("url,secret", [
    ("postgresql://u:geheim@127.0.0.1:1/k", "geheim"),
    ("postgresql://u:ge@heim@127.0.0.1:1/k", "heim"),
    ("postgresql://u@127.0.0.1:1/k?password=geheim", "geheim"),
    ("host=127.0.0.1 port=1 user=u password=geheim dbname=k", "geheim"),
    ("host=127.0.0.1 port=1 user=u password='ge heim' dbname=k", "heim"),
    ("postgresql://u:ge[heim@127.0.0.1:1/k", "heim"),
])
def test_passwords_are_masked_everywhere(url, secret, tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("KATASTER_")}
    env.update(KATASTER_DATABASE_URL=url, KATASTER_PATHS_STATE_DIR=str(tmp_path / "s"))
    for args in (["config", "show"], ["db", "status"], ["runs"]):
        proc = kataster(*args, env=env)
        out = proc.stdout + proc.stderr
        assert secret not in out and "Traceback" not in out, (args, out)


def test_a_flat_delivery_of_objects_from_nas_is_compared_by_content(cli_env, db):
    """A flat delivery whose object ids already exist from a NAS import stored nothing and
    called it "unchanged" although its content differed (Hessen's WFS: the same 10 parcels as
    NAS and as ALKIS vereinfacht)."""
    import json

    from conftest import SHARED

    corpus = SHARED / "corpus" / "wfs-he"
    kataster("import", corpus / "NAS-konform.xml", env=cli_env, check=True)
    proc = kataster("import", corpus / "vereinfachtes-schema0.xml", "--json", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    merge = json.loads(proc.stdout)["merge"]["kataster.ax_flurstueck"]
    assert (merge["inserted"], merge["unchanged"], merge["closed"]) == (10, 0, 10)
    assert query(db, "SELECT source, count(*) FROM kataster.ax_flurstueck WHERE endet IS NULL"
                     " GROUP BY 1") == [("ogr:alkis-vereinfacht", 10)]


def test_unpacked_copies_live_in_the_state_directory_and_leftovers_go(cli_env, db, tmp_path):
    """kill -9 of an import of a .gz left the unpacked copy in the system's temporary
    directory for ever. Copies now live under the state directory; those of processes that no
    longer run are removed by the next import."""
    state = tmp_path / "state" / "unpacked"
    leftover = state / "999999999-killed"          # no such process
    leftover.mkdir(parents=True)
    (leftover / "big.xml").write_text("x" * 1000)
    path = extract(tmp_path / "a.xml", [parcel("DENW36AL0000GZ01")])
    gz = tmp_path / "a.xml.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    kataster("import", gz, env=cli_env, check=True)
    assert not leftover.exists()
    assert list(state.iterdir()) == []             # its own copy is gone after the run


def _children(pid):
    out = []
    for entry in __import__("pathlib").Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


@pytest.mark.slow
def test_killed_validation_leaves_no_workers(cli_env, db, sample_gpkg):
    """kill -9 of 'kataster validate' left its worker processes (~240 MB each) running."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    kataster("import", sample_gpkg, env=cli_env, check=True)
    exe = Path(sys.executable).with_name("kataster")
    proc = subprocess.Popen([str(exe), "validate"], env=cli_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        workers = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            # Forked workers: the command line is their parent's.
            workers = _children(proc.pid)
            if workers:
                break
            time.sleep(0.05)
        assert workers, "validation finished before its workers could be seen"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
            time.sleep(0.1)
        alive = [w for w in workers if Path(f"/proc/{w}").exists()
                 and Path(f"/proc/{w}/stat").read_text().split()[2] != "Z"]
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_an_import_never_marks_a_running_validation_and_waits_for_it(cli_env, db, sample_gpkg,
                                                                    tmp_path):
    """An import marked a running validation 'aborted' ("the import process ended"); a killed
    validation stayed 'running'; validation took no lock against a concurrent import."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    kataster("import", sample_gpkg, env=cli_env, check=True)
    exe = str(Path(sys.executable).with_name("kataster"))

    def running_validation():
        return query(db, "SELECT id FROM kataster.import_run WHERE kind = 'validate'"
                         " AND status = 'running'")

    validation = subprocess.Popen([exe, "validate"], env=cli_env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not running_validation() and time.monotonic() < deadline:
        time.sleep(0.05)
    other = extract(tmp_path / "o.xml", [parcel("DENW36AL0000LK01")])
    imp = kataster("import", other, "--no-validate", env=cli_env)    # waits for the validation
    assert validation.wait(120) == 0
    assert imp.returncode == 0, imp.stderr
    states = query(db, "SELECT kind, status FROM kataster.import_run ORDER BY id")
    assert states[1] == ("validate", "committed") and states[-1][1] == "committed", states
    # A killed validation is marked aborted by the next validation.
    validation = subprocess.Popen([exe, "validate"], env=cli_env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not running_validation() and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = running_validation()[0][0]
    os.kill(validation.pid, signal.SIGKILL)
    validation.wait(10)
    time.sleep(3)                         # the server notices the dead client (check interval)
    kataster("validate", env=cli_env, check=True)
    assert query(db, "SELECT status FROM kataster.import_run WHERE id = %s", (killed,)) == \
        [("aborted",)]


def _broken_gpkg(sample_gpkg, tmp_path, name, statement):
    import sqlite3

    good = gpd.read_file(sample_gpkg, layer="Flurstueck").head(20)
    path = tmp_path / f"{name}.gpkg"
    good.to_file(path, layer="Flurstueck")
    conn = sqlite3.connect(path)
    for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
        conn.execute(f'DROP TRIGGER "{trigger}"')      # (GDAL's triggers need SpatiaLite)
    conn.execute(statement)
    conn.commit()
    conn.close()
    return path


RING_OF_TWO = ("47500001000000000000000103000000010000000200000000000000e06e15410000000098b7554100"
               "000000f06e15410000000098b75541")


@pytest.mark.parametrize("name,statement,message", [
    ("truncated", "UPDATE Flurstueck SET geom = substr(geom, 1, 60) WHERE fid = 3",
     "feature fid 3 in layer Flurstueck: the geometry cannot be read"),
    ("two_points", f"UPDATE Flurstueck SET geom = X'{RING_OF_TWO}' WHERE fid = 5",
     "feature fid 5 in layer Flurstueck: the geometry cannot be read"),
    ("null_id", "UPDATE Flurstueck SET idflurst = NULL WHERE fid = 4",
     "feature fid 4 in layer Flurstueck: 1 features have no idflurst"),
])
def test_broken_geopackages_are_refused_with_the_feature(name, statement, message, cli_env,
                                                          db, tmp_path, sample_gpkg):
    path = _broken_gpkg(sample_gpkg, tmp_path, name, statement)
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert parcels(db) == []


@pytest.mark.parametrize("old,new", [
    ("<flurstueckskennzeichen>05309600100001______</flurstueckskennzeichen>",
     "<flurstueckskennzeichen><x>05309600100001______</x></flurstueckskennzeichen>"),
    ('<amtlicheFlaeche uom="urn:adv:uom:m2">100</amtlicheFlaeche>',
     '<amtlicheFlaeche uom="urn:adv:uom:m2"><x>100</x></amtlicheFlaeche>'),
])
def test_an_element_inside_a_nas_property_is_named(old, new, cli_env, db, tmp_path):
    path = extract(tmp_path / "el.xml", [parcel("DENW36AL0000EL01")])
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "DENW36AL0000EL01" in proc.stderr and "holds elements where a single value" \
        in proc.stderr, proc.stderr
