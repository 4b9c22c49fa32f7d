"""The NAS importer on real files, updates, and hostile input."""

import gzip
import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import shapely
import shapely.affinity
from conftest import SHARED, kataster, query

from pipeline.synthetic.nas_writer import Amount, Ref, Writer, open_output, versioned_id
from schemas import json_schema

NAS = SHARED / "nas"


def import_json(env, *args):
    proc = kataster("import", *args, "--json", env=env)
    data = json.loads(proc.stdout)
    jsonschema.validate(data, json_schema("import-summary"))
    return proc, data


@pytest.fixture
def real(tmp_path):
    shutil.copytree(NAS, tmp_path / "nas")
    return tmp_path / "nas"


def test_bonn_gid71_bare_features(real, cli_env, db):
    proc, data = import_json(cli_env, real / "bonn_gid71")
    assert proc.returncode == 0, proc.stderr
    assert data["importer"] == "nas"
    # Every object of the twelve files is stored and counted under its ALKIS type.
    assert sum(data["objects"].values()) == 12 and len(data["objects"]) == 12
    fsk, area, computed, gemarkung, gtype = query(
        db, "SELECT flurstueckskennzeichen, amtliche_flaeche, geometrie_flaeche, gemarkung,"
            " GeometryType(geom) FROM kataster.flurstueck")[0]
    assert (fsk, area, gtype) == ("05432002500008______", 110397.0, "MULTIPOLYGON")
    assert abs(computed - area) / area < 0.001
    tables = {t: n for t, n in query(db, "SELECT 'nutzung:' || objektart, count(*)"
                                         " FROM kataster.ax_nutzung GROUP BY 1 UNION ALL"
                                         " SELECT 'objekt:' || objektart, count(*)"
                                         " FROM kataster.ax_objekt GROUP BY 1")}
    assert tables["nutzung:AX_Wohnbauflaeche"] == 1 and tables["objekt:AX_Turm"] == 1
    # Arcs are stroked: the Wohnbaufläche has five gml:Arc segments.
    n, valid = query(db, "SELECT ST_NPoints(geom), ST_IsValid(geom) FROM kataster.ax_nutzung"
                         " WHERE objektart = 'AX_Wohnbauflaeche'")[0]
    assert valid and n > 59
    # Geometries without srsName: taken from the state in the id, recorded as info findings.
    assumed = query(db, "SELECT count(*) FROM kataster.finding WHERE rule = 'crs.assumed'")[0][0]
    assert assumed == data["findings"]["info"] > 0
    # Attributes without a column are kept (registry URLs reduced to their code).
    attrs = query(db, "SELECT attrs FROM kataster.ax_flurstueck")[0][0]
    assert attrs["anlass"].endswith("/010704")
    assert query(db, "SELECT count(*) FROM kataster.ax_lagebezeichnung")[0][0] == 1


def test_duisburg_wfs_answer_gid60(real, cli_env, db):
    proc, data = import_json(cli_env, real / "wfs" / "duisburg_baerl_1_flurstueck_nas_gid60.gml")
    assert proc.returncode == 0, proc.stderr
    assert data["objects"] == {"AX_Flurstueck": 1}
    row = query(db, "SELECT gml_id, flurstueckskennzeichen, amtliche_flaeche, land,"
                    " gemarkungsnummer, flurnummer, zaehler, nenner, beginnt, ist_gebucht,"
                    " ST_AsText(geom) FROM kataster.ax_flurstueck")[0]
    assert row[:8] == ("DENW21AL100077H6", "05329001100085______", 684.0, "05", "3290", 11, 85,
                       None)
    assert row[8].isoformat() == "2014-02-14T11:31:00+00:00" and row[9] == ["DENW21AL10007CcG"]
    assert row[10].startswith("MULTIPOLYGON(((338131.227 5706256.699,338144.126 5706242.59")


def _parcel(oid, beginnt, area, geom, fsk="05420801400063______"):
    return {"type": "AX_Flurstueck", "id": oid, "beginnt": beginnt, "geom": ("position", geom),
            "props": [("gemarkung", {"AX_Gemarkung_Schluessel": {"land": "05",
                                                                  "gemarkungsnummer": "4208"}}),
                      ("flurstuecksnummer", {"AX_Flurstuecksnummer": {"zaehler": "63"}}),
                      ("flurstueckskennzeichen", fsk), ("amtlicheFlaeche", Amount(area)),
                      ("flurnummer", "14")]}


def test_real_replace_after_earlier_version(real, cli_env, db, tmp_path):
    """replace_nas.xml replaces version 2010-08-09T07:17:26Z of DENW44AL00003IkM."""
    old = tmp_path / "earlier.xml"
    square = shapely.box(405587, 5645090, 405620, 5645140)
    with open_output(old) as fh:
        Writer("6.0").extract([_parcel("DENW44AL00003IkM", "2010-08-09T07:17:26Z", 1500,
                                       square)], fh)
    kataster("import", old, env=cli_env, check=True)
    proc, data = import_json(cli_env, real / "nba" / "replace_nas.xml")
    assert data["status"] == "committed", data
    rows = query(db, "SELECT beginnt, endet, amtliche_flaeche FROM kataster.ax_flurstueck"
                     " ORDER BY beginnt")
    assert [(r[0].isoformat(), r[1] and r[1].isoformat(), r[2]) for r in rows] == [
        ("2010-08-09T07:17:26+00:00", "2011-04-29T07:06:35+00:00", 1500.0),
        ("2011-04-29T07:06:35+00:00", None, 1520.0)]
    # The Replace's geometry has no srsName: the document's standard CRS (ETRS89_UTM32) holds.
    x = query(db, "SELECT ST_XMin(geom) FROM kataster.flurstueck")[0][0]
    assert abs(x - 405587.077) < 1e-6
    # The same update again: an exact re-send is kept once.
    again = kataster("import", real / "nba" / "replace_nas.xml", "--force", env=cli_env)
    assert again.returncode == 0, again.stderr
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck")[0][0] == 2


def test_update_with_missing_target_fails_completely(real, cli_env, db):
    proc, data = import_json(cli_env, real / "nba" / "replace_nas.xml")
    assert proc.returncode == 1 and data["status"] == "failed"
    assert "1 update targets are not in the database" in data["error"]
    assert "DENW44AL00003IkM20100809T071726Z" in data["error"]
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck")[0][0] == 0


def test_real_delete_of_namensnummern(real, cli_env, db, tmp_path):
    ids = ["DENW44AL00000HJU", "DENW44AL00000JLo", "DENW44AL00000JLq"]
    earlier = tmp_path / "nn.xml"
    with open_output(earlier) as fh:
        Writer("6.0").extract([{"type": "AX_Namensnummer", "id": i,
                                "beginnt": "2010-07-30T09:28:47Z",
                                "props": [("laufendeNummerNachDIN1421", f"000{k}.00.00.00.00"),
                                          ("istBestandteilVon", Ref("DENW44AL0000BLAT"))]}
                               for k, i in enumerate(ids)], fh)
    kataster("import", earlier, env=cli_env, check=True)
    assert query(db, "SELECT count(*) FROM kataster_privat.ax_namensnummer"
                     " WHERE endet IS NULL")[0][0] == 3
    proc, data = import_json(cli_env, real / "nba" / "delete_nas.xml")
    assert proc.returncode == 0, proc.stderr
    rows = query(db, "SELECT gml_id, endet FROM kataster_privat.ax_namensnummer ORDER BY 1")
    assert [r[0] for r in rows] == sorted(ids)
    assert {r[1].isoformat() for r in rows} == {"2011-02-08T00:00:00+00:00"}  # portion date
    # Owner data stays private: nothing of it in the public schema.
    assert query(db, "SELECT count(*) FROM kataster.ax_objekt")[0][0] == 0


def test_empty_update(real, cli_env, db):
    proc, data = import_json(cli_env, real / "nba" / "empty_nas.xml")
    assert proc.returncode == 0 and data["status"] == "committed" and data["objects"] == {}


def test_safe_to_ignore_becomes_a_warning(cli_env, db, tmp_path):
    path = tmp_path / "nba.xml"
    new = _parcel("DENW44AL0000ZZZZ", "2012-01-01T00:00:00Z", 100, shapely.box(350000, 5700000, 350010, 5700010))
    with open_output(path) as fh:
        Writer("7.1", prefix="adv").nba([], [(new, versioned_id("DENW44AL0000ZZZZ",
                                                               "2011-01-01T00:00:00Z"), True)],
                                        [], "2012-01-02T00:00:00Z", fh)
    proc, data = import_json(cli_env, path)
    assert proc.returncode == 0 and data["findings"]["warning"] == 1
    assert query(db, "SELECT rule FROM kataster.finding")[0][0] == "update.target_missing"
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck")[0][0] == 1


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<AX_Bestandsdatenauszug xmlns="http://www.adv-online.de/namespaces/adv/gid/6.0">&lol3;</AX_Bestandsdatenauszug>
"""


def test_entity_bomb_and_external_entities_refused(cli_env, db, tmp_path):
    bomb = tmp_path / "bomb.xml"
    bomb.write_bytes(BOMB)
    proc = kataster("import", bomb, env=cli_env)
    assert proc.returncode == 1 and "declares a DTD or entities" in proc.stderr
    xxe = tmp_path / "xxe.xml"
    xxe.write_bytes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                    b'<AX_Flurstueck xmlns="http://www.adv-online.de/namespaces/adv/gid/6.0">'
                    b"&e;</AX_Flurstueck>")
    proc = kataster("import", xxe, env=cli_env)
    assert proc.returncode == 1 and "declares a DTD" in proc.stderr and "root:" not in proc.stderr


def test_truncated_and_malformed_files(real, cli_env, db, tmp_path):
    src = (real / "wfs" / "duisburg_baerl_1_flurstueck_nas_gid60.gml").read_bytes()
    cut = tmp_path / "cut.xml"
    cut.write_bytes(src[: len(src) // 2])
    proc = kataster("import", cut, env=cli_env)
    assert proc.returncode == 1 and "not well-formed XML at line" in proc.stderr
    assert "column" in proc.stderr
    bad = tmp_path / "bad.xml"
    bad.write_bytes(src.replace(b"</gemarkung>", b"</gemarkungX>", 1))
    proc = kataster("import", bad, env=cli_env)
    assert proc.returncode == 1 and "not well-formed XML at line" in proc.stderr
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck")[0][0] == 0


def test_huge_text_node_refused(cli_env, db, tmp_path):
    huge = tmp_path / "huge.xml"
    with open(huge, "wb") as fh:
        fh.write(b'<?xml version="1.0"?><AX_Flurstueck xmlns="http://www.adv-online.de/'
                 b'namespaces/adv/gid/6.0" xmlns:gml="http://www.opengis.net/gml/3.2" '
                 b'gml:id="DENW00AL00000001"><name>')
        fh.write(b"x" * (12 * 1024 * 1024))
        fh.write(b"</name></AX_Flurstueck>")
    proc = kataster("import", huge, env=cli_env)
    assert proc.returncode == 1 and "huge" in proc.stderr.lower()


def test_gzip_bomb_refused(cli_env, db, tmp_path):
    path = tmp_path / "bomb.xml.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b'<?xml version="1.0"?><AX_Bestandsdatenauszug xmlns="http://www.adv-online.de/'
                 b'namespaces/adv/gid/6.0">')
        for _ in range(64):
            fh.write(b" " * (1 << 20))
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 1 and "decompression bomb" in proc.stderr


def test_unknown_srs_names_the_object(cli_env, db, tmp_path):
    path = tmp_path / "srs.xml"
    w = Writer("6.0", srs="urn:adv:crs:MARS_UTM1")
    with open_output(path) as fh:
        w.extract([_parcel("DENW44AL0000SRS1", "2012-01-01T00:00:00Z", 100,
                           shapely.box(350000, 5700000, 350010, 5700010))], fh)
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 1 and "unknown srsName 'urn:adv:crs:MARS_UTM1'" in proc.stderr
    assert "srs.xml, feature AX_Flurstueck DENW44AL0000SRS1" in proc.stderr


@pytest.mark.parametrize("version", ["6.0", "7.1"])
def test_delete_update_and_replace_in_both_versions(version, cli_env, db, tmp_path):
    """GID 7.1 names targets with fes:ResourceId and typeNames (its deletes were silently
    dropped); wfs:Update ends a version at the endet it sets, in both versions."""
    prefix = "adv" if version == "7.1" else None
    box = shapely.box(350000, 5700000, 350010, 5700010)
    first = [_parcel(f"DENW44AL0000UP0{i}", "2012-01-01T00:00:00Z", 100,
                     shapely.affinity.translate(box, 20 * i)) for i in range(3)]
    extract = tmp_path / "extract.xml"
    with open_output(extract) as fh:
        Writer(version, prefix=prefix).extract(first, fh)
    kataster("import", extract, env=cli_env, check=True)
    old = [versioned_id(f["id"], "2012-01-01T00:00:00Z") for f in first]
    newer = _parcel("DENW44AL0000UP00", "2013-01-01T00:00:00Z", 101, box)
    update = tmp_path / "nba.xml"
    with open_output(update) as fh:
        Writer(version, prefix=prefix).nba(
            [], [(newer, old[0], False)], [("AX_Flurstueck", old[1])], "2013-01-02T00:00:00Z",
            fh, updates=[("AX_Flurstueck", old[2], "2013-01-01T12:00:00Z", "010704")])
    proc = kataster("-v", "import", update, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    # The core ran the steps the NAS source names, in their declared order, each timed.
    timed = re.findall(r"pipeline\.steps: step (\w+): \d+\.\d\d s", proc.stderr)
    assert timed == ["check_operations", "apply_operations", "lage_text", "ownership"], \
        proc.stderr
    rows = query(db, "SELECT gml_id, beginnt::text, endet::text FROM kataster.ax_flurstueck"
                     " ORDER BY 1, 2")
    assert rows == [
        ("DENW44AL0000UP00", "2012-01-01 00:00:00+00", "2013-01-01 00:00:00+00"),
        ("DENW44AL0000UP00", "2013-01-01 00:00:00+00", None),
        ("DENW44AL0000UP01", "2012-01-01 00:00:00+00", "2013-01-02 00:00:00+00"),  # portion date
        ("DENW44AL0000UP02", "2012-01-01 00:00:00+00", "2013-01-01 12:00:00+00"),  # its endet
    ]
    assert query(db, "SELECT attrs->>'anlass_endet' FROM kataster.ax_flurstueck"
                     " WHERE gml_id = 'DENW44AL0000UP02'") == [("010704",)]


def test_an_operation_not_understood_fails_with_name_and_line(cli_env, db, tmp_path):
    path = tmp_path / "nba.xml"
    with open_output(path) as fh:
        Writer("7.1", prefix="adv").nba([], [], [], "2013-01-02T00:00:00Z", fh)
    text = path.read_text().replace("</wfs:Transaction>", "\n<wfs:Native vendorId='x'/>"
                                                          "</wfs:Transaction>")
    path.write_text(text)
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line = text[:text.index("<wfs:Native")].count("\n") + 1
    assert f"operation Native that is not understood (line {line})" in proc.stderr, proc.stderr
    # an Update that sets another property is refused too
    with open_output(path) as fh:
        Writer("6.0").nba([], [], [], "2013-01-02T00:00:00Z", fh,
                          updates=[("AX_Flurstueck", "DENW44AL0000UP0020120101T000000Z",
                                    "2013-01-01T12:00:00Z", None)])
    path.write_text(path.read_text().replace("lebenszeitintervall/AA_Lebenszeitintervall/endet",
                                             "amtlicheFlaeche"))
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 1 and "Update sets amtlicheFlaeche, which is not understood" \
        in proc.stderr, proc.stderr


def _portion(tmp_path, name, datum, nr, total, inserts=(), profil="Musterstadt"):
    path = tmp_path / name
    with open_output(path) as fh:
        Writer("7.1", prefix="adv").nba(list(inserts), [], [], datum, fh, portion={
            "profilkennung": profil, "laufendeNummerVonGesamtzahl": nr, "gesamtzahl": total})
    return path


def test_nba_deliveries_in_order_with_acknowledgements(cli_env, db, tmp_path):
    """Parts of one delivery are applied in part order whatever their file names; missing
    parts are listed; an older delivery is refused (unless --allow-older); a later delivery
    while parts of an earlier one are missing gives a warning; each run writes an
    AX_NBAQuittierung, a failed one acknowledging failure."""
    box = shapely.box(350000, 5700000, 350010, 5700010)
    d1 = "2020-01-02T00:00:00Z"
    folder = tmp_path / "lieferung"
    folder.mkdir()
    _portion(folder, "b.xml", d1, 0, 3, [_parcel("DENW44AL0000NB01", "2020-01-01T00:00:00Z",
                                                 100, box)])
    first = _portion(tmp_path, "a.xml.gz", d1, 2, 3)
    shutil.copy(first, folder / "a.xml.gz")
    proc, data = import_json(cli_env, folder)
    assert proc.returncode == 0, proc.stderr
    assert [f["path"].rsplit("/", 1)[-1] for f in data["files"]] == ["a.xml.gz", "b.xml"]
    assert data["missing_parts"] == [{"profilkennung": "Musterstadt",
                                      "datum": "2020-01-02T00:00:00+00:00", "parts": [1]}]
    ack = (tmp_path / "out" / "quittierungen"
           / f"Musterstadt_20200102T000000_NBA_Quittierung_Lauf_{data['run_id']}.xml")
    assert data["acknowledgements"] == [str(ack)]
    text = ack.read_text()
    assert "<gesamtNBAErfolgreich>true</gesamtNBAErfolgreich>" in text
    assert text.index("<laufendeNummerVonGesamtzahl>0<") < \
        text.index("<laufendeNummerVonGesamtzahl>2<")          # delivery and part order
    runs = kataster("runs", env=cli_env, check=True).stdout
    assert "NBA delivery Musterstadt of 2020-01-02T00:00:00+00:00: parts 1 not yet delivered" \
        in runs
    # A later delivery while part 1 of the first is missing: a warning naming it.
    later = _portion(tmp_path, "later.xml", "2020-02-01T00:00:00Z", 1, 1)
    proc, data = import_json(cli_env, later)
    assert proc.returncode == 0 and data["findings"]["warning"] == 1, proc.stderr
    assert query(db, "SELECT message FROM kataster.finding WHERE rule = 'nba.missing_parts'") \
        == [("NBA delivery Musterstadt of 2020-01-02T00:00:00+00:00 still misses parts 1 of 3, "
             "and a later delivery of the profile arrives",)]
    # The missing part of the older delivery now: refused, naming both; --allow-older applies.
    older = _portion(tmp_path, "older.xml", d1, 1, 3)
    proc, data = import_json(cli_env, older)
    assert proc.returncode == 1 and "is older than the newest applied delivery" in data["error"]
    assert "later.xml" in data["error"]
    failed = Path(data["acknowledgements"][0]).read_text()
    assert "<gesamtNBAErfolgreich>false</gesamtNBAErfolgreich>" in failed
    proc, data = import_json(cli_env, older, "--allow-older")
    assert proc.returncode == 0, proc.stderr
    assert data["missing_parts"] == []
    # Re-delivery of an applied part is a no-op.
    again = kataster("import", older, "--allow-older", "--force", "--json", env=cli_env)
    assert again.returncode == 0
    assert query(db, "SELECT count(*) FROM kataster.nba_portion") == [(4,)]


def test_positions_with_their_own_crs(cli_env, db, tmp_path):
    """A srsName on gml:pos is honoured: a state Gauß-Krüger variant is transformed (through
    BETA2007), a local zone-prefixed UTM and a height are kept as written, with one crs.kept
    info finding per system, never placed at their raw coordinates."""
    import pyproj

    import importers.crs  # noqa: F401 - grids

    x, y = pyproj.Transformer.from_crs(25832, 31466, always_xy=True).transform(350005, 5700005)
    points = [
        ("DENW44AL0000CR01", f'<gml:pos srsName="urn:adv:crs:DE_DHDN_3GK2_NW177">{x:.3f} {y:.3f}</gml:pos>'),
        ("DENW44AL0000CR02", '<gml:pos srsName="urn:adv:crs:LOKAL_RP_UTM32101">32351593.736 5531607.130</gml:pos>'),
        ("DENW44AL0000CR03", '<gml:pos srsName="urn:adv:crs:LOKAL_RP_UTM32101">32351594.736 5531608.130</gml:pos>'),
        ("DENW44AL0000CR04", '<gml:pos srsName="urn:adv:crs:DE_DHHN85_NOH">254.320</gml:pos>'),
    ]
    path = tmp_path / "punkte.xml"
    with open_output(path) as fh:
        Writer("6.0").extract([{"type": "AX_PunktortAU", "id": oid, "beginnt": "2020-01-01T00:00:00Z",
                                "props": [("position", "@@" + oid)]} for oid, _ in points], fh)
    text = path.read_text()
    for oid, pos in points:
        text = text.replace(f"<position>@@{oid}</position>",
                            f'<position><gml:Point gml:id="p{oid[-2:]}">{pos}</gml:Point></position>')
    path.write_text(text)
    proc, data = import_json(cli_env, path)
    assert proc.returncode == 0, proc.stderr
    rows = dict(query(db, "SELECT gml_id, ST_AsText(geom) FROM kataster.ax_objekt"))
    gx, gy = shapely.from_wkt(rows["DENW44AL0000CR01"]).coords[0]
    assert abs(gx - 350005) < 1.5 and abs(gy - 5700005) < 1.5       # BETA2007, not Helmert
    assert rows["DENW44AL0000CR02"] is None and rows["DENW44AL0000CR04"] is None
    kept = dict(query(db, "SELECT gml_id, attrs->'_originale_position'->>'crs'"
                          " FROM kataster.ax_objekt WHERE gml_id = 'DENW44AL0000CR02'"))
    assert kept == {"DENW44AL0000CR02": "urn:adv:crs:LOKAL_RP_UTM32101"}
    assert query(db, "SELECT attrs->'_hoehe'->0->>'wert' FROM kataster.ax_objekt"
                     " WHERE gml_id = 'DENW44AL0000CR04'") == [("254.32",)]
    assert sorted(query(db, "SELECT object_id, message FROM kataster.finding"
                            " WHERE rule = 'crs.kept'")) == [
        ("urn:adv:crs:DE_DHHN85_NOH", "1 positions in urn:adv:crs:DE_DHHN85_NOH kept with their "
         "original coordinates as attributes (_originale_position, _hoehe), without a map "
         "geometry: the system is a height system or cannot be transformed reliably to "
         "EPSG:25832"),
        ("urn:adv:crs:LOKAL_RP_UTM32101", "2 positions in urn:adv:crs:LOKAL_RP_UTM32101 kept with "
         "their original coordinates as attributes (_originale_position, _hoehe), without a map "
         "geometry: the system is a height system or cannot be transformed reliably to "
         "EPSG:25832")]
    assert "DE_DHDN_3GK2_NW177" in data["transformation"] and "BETA2007" in \
        query(db, "SELECT transformation FROM kataster.import_run")[0][0]
