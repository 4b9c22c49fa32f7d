"""Generated NAS extracts and updates: round trip through the importer, oracle against GDAL."""

import subprocess
from fractions import Fraction
from urllib.parse import parse_qs, urlsplit

import pytest
import shapely
from conftest import kataster, query

from pipeline.synthetic.city import build
from pipeline.synthetic.nas import BASE, SAG, UPDATE, arc_reference, beginnt_of, write, write_nba


@pytest.mark.parametrize("version, srs", [("6.0", "utm"), ("7.1", "utm"), ("6.0", "gk")])
def test_round_trip(version, srs, cli_env, db, tmp_path):
    n = 400
    path = tmp_path / f"extract_{version}_{srs}.xml.gz"
    summary = write(n, path, version=version, seed=3, srs=srs)
    assert summary["arcs"] > 0
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    layers = build(n, seed=3)
    src = layers["Flurstueck"].set_index("idflurst")
    rows = query(db, "SELECT gml_id, flurstueckskennzeichen, amtliche_flaeche, gemarkung,"
                     " flurnummer, zaehler, nenner, lage, gemeinde, beginnt, ST_AsBinary(geom)"
                     " FROM kataster.flurstueck")
    assert len(rows) == n
    tol = 0.01 if srs == "gk" else 0.001
    arcs = 0
    for gid, fsk, area, gem, flur, z, nen, lage, gemeinde, beginnt, wkb in rows:
        s = src.loc[gid]
        book = summary["arc_areas"].get(gid, s["flaeche"])
        assert (fsk, area, gem, flur, z) == (s["flstkennz"], book, s["gemarkung"],
                                             int(s["flur"]), int(s["flstnrzae"]))
        assert nen == (s["flstnrnen"] if isinstance(s["flstnrnen"], str) else None)
        assert lage == s["lagebeztxt"] and gemeinde == "Mülheim an der Ruhr"
        assert beginnt.isoformat().replace("+00:00", "Z") == beginnt_of(int(gid[-6:], 16))
        got = shapely.from_wkb(bytes(wkb))
        expected = shapely.get_geometry(s.geometry, 0)
        d = shapely.hausdorff_distance(got, expected)
        if d > tol:   # a parcel with a boundary arc (own or shared): compare with the true arc
            arcs += 1
            ref = arc_reference(expected, summary["arc_of"][gid])
            assert shapely.hausdorff_distance(got, ref) <= 0.01 + tol, gid
            assert SAG * 0.9 < d < SAG * 1.1
    assert arcs == summary["arcs"]
    # Neighbours that share an arc meet exactly: no gap or overlap between parcels.
    assert query(db, "SELECT count(*) FROM kataster.flurstueck a JOIN kataster.flurstueck b"
                     " ON a.gml_id < b.gml_id AND a.geom && b.geom"
                     " AND ST_Area(ST_Intersection(a.geom, b.geom)) > 1e-6")[0][0] == 0
    # Ownership: every parcel's owners, bookings and exact shares.
    got = {}
    for fgid, art, person, z, nn in query(
            db, "SELECT flurstueck_gml_id, buchungsart, person_gml_id, anteil_zaehler,"
                " anteil_nenner FROM kataster_privat.eigentum_aufgeloest"):
        got.setdefault(fgid, []).append((art, person, None if z is None else Fraction(int(z),
                                                                                       int(nn))))
    expected = {k: sorted(v, key=lambda r: (r[0], r[1])) for k, v in
                summary["expected_ownership"].items()}
    assert {k: sorted(v, key=lambda r: (r[0], r[1])) for k, v in got.items()} == expected
    kinds = {a for rows_ in expected.values() for a, _, _ in rows_}
    assert {1100, 1301, 1302, 2101} <= kinds
    # Relations and the rest of the delivery.
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck"
                     " WHERE cardinality(ist_gebucht) = 1 AND cardinality(weist_auf) = 1")[0][0] == n
    assert query(db, "SELECT count(*) FROM kataster.gebaeude")[0][0] == len(
        layers["GebaeudeBauwerk"])
    assert query(db, "SELECT count(*) FROM kataster_privat.finding")[0][0] == 0


def test_nba_update_of_generated_extract(cli_env, db, tmp_path):
    base, update = tmp_path / "base.xml", tmp_path / "update.xml"
    write(300, base, seed=4)
    nba = write_nba(300, update, seed=4, fraction=0.05)
    kataster("import", base, env=cli_env, check=True)
    proc = kataster("import", update, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    changed = query(db, "SELECT gml_id, count(*), max(amtliche_flaeche) - min(amtliche_flaeche)"
                        " FROM kataster.ax_flurstueck GROUP BY gml_id HAVING count(*) > 1")
    assert sorted(r[0] for r in changed) == sorted(nba["replaced"])
    assert {r[1:] for r in changed} == {(2, 1.0)}
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck WHERE endet IS NOT NULL"
                     " AND endet = %s", (UPDATE,))[0][0] == len(nba["replaced"])
    assert query(db, "SELECT count(*) FROM kataster.ax_lagebezeichnung WHERE endet ="
                     " '2026-01-16T00:00:00Z'")[0][0] == nba["deleted"]


def test_addresses_follow_their_lagebezeichnungen(cli_env, db, tmp_path):
    """A parcel names its Lagebezeichnungen by id, not by version: a new house number, a
    deleted Lagebezeichnung and a renamed street reach the address text (lage) of parcels the
    update does not touch."""
    from pipeline.synthetic.nas_writer import Writer, open_output, versioned_id

    base, update = tmp_path / "base.xml", tmp_path / "update.xml"
    write(60, base, seed=4)
    kataster("import", base, env=cli_env, check=True)
    rows = query(db, "SELECT f.gml_id, f.lage, l.gml_id, l.land, l.regierungsbezirk, l.kreis,"
                     " l.gemeinde, l.lage FROM kataster.ax_flurstueck f"
                     " JOIN kataster.ax_lagebezeichnung l ON l.gml_id = f.weist_auf[1]"
                     " ORDER BY f.gml_id")
    before = {r[0]: r[1] for r in rows}
    (a, a_lage, a_l, *key_a), (b, _, b_l, *_) = rows[0], rows[1]
    # A street that neither a nor b lies on.
    c_key = next(r[3:] for r in rows if r[7] != key_a[4] and r[0] != b)
    c_street = query(db, "SELECT gml_id FROM kataster.ax_katalog WHERE schluessel = %s",
                     ("".join(c_key),))[0][0]
    schluessel = dict(zip(("land", "regierungsbezirk", "kreis", "gemeinde", "lage"), c_key,
                          strict=True))
    renamed = {"type": "AX_LagebezeichnungKatalogeintrag", "id": c_street, "beginnt": UPDATE,
               "props": [("schluessel", {"AX_VerschluesselteLagebezeichnung": schluessel}),
                         ("bezeichnung", "Neue Straße")]}
    new_number = {"type": "AX_LagebezeichnungMitHausnummer", "id": a_l, "beginnt": UPDATE,
                  "props": [("lagebezeichnung", {"AX_VerschluesselteLagebezeichnung": dict(
                      zip(("land", "regierungsbezirk", "kreis", "gemeinde", "lage"), key_a,
                          strict=True))}), ("hausnummer", "99z")]}
    with open_output(update) as fh:
        Writer("6.0").nba([], [(new_number, versioned_id(a_l, BASE), False),
                               (renamed, versioned_id(c_street, BASE), False)],
                          [("AX_LagebezeichnungMitHausnummer", versioned_id(b_l, BASE))],
                          "2026-01-16T00:00:00Z", fh)
    kataster("import", update, env=cli_env, check=True)
    after = dict(query(db, "SELECT gml_id, lage FROM kataster.ax_flurstueck WHERE endet IS NULL"))
    on_c = {r[0] for r in rows if tuple(r[3:]) == tuple(c_key)}
    assert after[a] == a_lage.rsplit(" ", 1)[0] + " 99z"
    assert after[b] is None                          # its only Lagebezeichnung is gone
    assert on_c and all(after[p] == "Neue Straße " + before[p].rsplit(" ", 1)[1] for p in on_c)
    untouched = set(before) - {a, b} - on_c
    assert untouched and all(after[p] == before[p] for p in untouched)
    # No parcel got a new version: the text is derived, not delivered.
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck WHERE endet IS NOT NULL")[0][0] == 0


def test_zip_of_nas_files_and_object_counts(cli_env, db, tmp_path):
    import json
    import zipfile

    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    sa = write(60, a, seed=7)
    sb = write(40, b, seed=8, city="Oberhausen")
    z = tmp_path / "lieferung.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(a, "lieferung/a.xml")
        archive.write(b, "lieferung/b.xml")
    proc = kataster("import", z, "--json", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["importer"] == "nas"
    # The per-type counts add up to the number of objects in the files.
    assert sum(data["objects"].values()) == sa["objects"] + sb["objects"]
    assert data["objects"]["AX_Flurstueck"] == 100


def test_same_object_in_two_files_is_stored_once(cli_env, db, tmp_path):
    d = tmp_path / "delivery"
    d.mkdir()
    write(100, d / "part1.xml", seed=5)
    write(100, d / "part2.xml", seed=5)
    proc = kataster("import", d, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT count(*) FROM kataster.ax_flurstueck")[0][0] == 100


def test_oracle_gdal_nas_driver(db, tmp_path, cli_env):
    """GID 6.0: object counts equal GDAL's NAS driver, total parcel area within 0.01 %."""
    path = tmp_path / "oracle.xml"
    write(300, path, version="6.0", seed=6)
    proc = kataster("import", path, "--json", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    import json

    ours = json.loads(proc.stdout)["objects"]
    with db.connect() as conn:
        conn.execute("CREATE SCHEMA oracle")
        conn.commit()
    url = urlsplit(db.url)
    passfile = parse_qs(url.query)["passfile"][0]
    pg = (f"PG:host={url.hostname} port={url.port} dbname={url.path[1:]} user={url.username}"
          f" passfile={passfile} active_schema=oracle schemas=oracle")
    copy = tmp_path / "gdal" / "oracle.xml"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    subprocess.run(["ogr2ogr", "-f", "PostgreSQL", pg, str(copy),
                    "-nlt", "CONVERT_TO_LINEAR"], check=True, capture_output=True, timeout=600)
    tables = [r[0] for r in query(db, "SELECT table_name FROM information_schema.tables"
                                      " WHERE table_schema = 'oracle'")]
    theirs = {}
    for t in tables:
        if t == "alkis_beziehungen":
            continue
        theirs[t] = query(db, f'SELECT count(*) FROM oracle."{t}"')[0][0]
    assert theirs == {k.lower(): v for k, v in ours.items()}
    area_gdal = query(db, "SELECT sum(ST_Area(wkb_geometry)) FROM oracle.ax_flurstueck")[0][0]
    area_ours = query(db, "SELECT sum(geometrie_flaeche) FROM kataster.flurstueck")[0][0]
    assert abs(area_gdal - area_ours) / area_ours < 1e-4
