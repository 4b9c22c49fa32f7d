"""The derived copies a run keeps for the Fluren it touched equal their definitions."""

import json

from conftest import kataster, query

from pipeline.synthetic.nas import write, write_nba
from pipeline.synthetic.nas_writer import Writer, open_output, versioned_id

# Rows of the street-name table that differ from its definition (the centre of a street's
# addresses may differ in the last bits with the order the points are collected in).
STREET_NAMES_DIFFER = """
SELECT count(*) FROM kataster.strassenname m FULL JOIN kataster.strassenname_quelle v USING (id)
WHERE m.id IS NULL OR v.id IS NULL OR NOT ST_DWithin(m.geom, v.geom, 1e-6)
   OR (m.strasse, m.land, m.gemarkungsnummer, m.flurnummer, m.adressen, m.herkunft)
      IS DISTINCT FROM (v.strasse, v.land, v.gemarkungsnummer, v.flurnummer, v.adressen,
                        v.herkunft)"""
ROW_VERSIONS = "SELECT id, xmin::text FROM kataster.strassenname"


def test_street_names_follow_updates_and_address_changes(cli_env, db, tmp_path):
    """Generated NBA portions (parcels re-sent, their addresses deleted), then an address
    moved to another street while its parcel is not in the delivery: after every run the
    street names equal their definition, and a run rewrote only the rows of the Fluren it
    touched (those of the moved address included)."""
    city = tmp_path / "city.xml"
    write(120, city, version="7.1", seed=5)
    kataster("import", city, "--no-validate", env=cli_env, check=True)
    total = query(db, "SELECT count(*) FROM kataster.strassenname")[0][0]
    assert total > 10 and query(db, STREET_NAMES_DIFFER)[0][0] == 0

    def imported(path):
        before = dict(query(db, ROW_VERSIONS))
        run = json.loads(kataster("import", path, "--no-validate", "--json", env=cli_env,
                                  check=True).stdout)
        assert run["status"] == "committed"
        assert query(db, STREET_NAMES_DIFFER)[0][0] == 0, path.name
        return {i for i, x in query(db, ROW_VERSIONS) if before.get(i) != x}

    for k in range(2):
        portion = tmp_path / f"portion_{k}.xml"
        write_nba(120, portion, version="7.1", seed=5, sequence=(k, 10))
        rewritten = imported(portion)
        assert 0 < len(rewritten) < total

    # The address of a parcel in one Flur moves to a street of another Flur; the parcel itself
    # is not delivered: its new address text reaches the street names through the address step.
    lid, beginnt, land, rb, kreis, gemeinde, flur = query(db, """
        SELECT l.gml_id, to_char(l.beginnt AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
               l.land, l.regierungsbezirk, l.kreis, l.gemeinde,
               f.land || f.gemarkungsnummer || lpad(f.flurnummer::text, 3, '0')
        FROM kataster.ax_flurstueck f
        JOIN kataster.ax_lagebezeichnung l ON l.endet IS NULL AND l.gml_id = ANY(f.weist_auf)
        WHERE f.endet IS NULL ORDER BY f.gml_id LIMIT 1""")[0]
    street, other_flur = query(db, """
        SELECT strasse, land || gemarkungsnummer || lpad(flurnummer::text, 3, '0')
        FROM kataster.strassenname
        WHERE land || gemarkungsnummer || lpad(flurnummer::text, 3, '0') <> %s
        ORDER BY id LIMIT 1""", (flur,))[0]
    code = query(db, "SELECT lage FROM kataster.ax_lagebezeichnung l JOIN kataster.ax_katalog k"
                     " ON k.schluessel = l.land || l.regierungsbezirk || l.kreis || l.gemeinde"
                     " || l.lage AND k.endet IS NULL WHERE k.bezeichnung = %s LIMIT 1",
                 (street,))[0][0]
    moved = {"type": "AX_LagebezeichnungMitHausnummer", "id": lid,
             "beginnt": "2026-03-01T00:00:00Z",
             "props": [("lagebezeichnung", {"AX_VerschluesselteLagebezeichnung": {
                 "land": land, "regierungsbezirk": rb, "kreis": kreis, "gemeinde": gemeinde,
                 "lage": code}}), ("hausnummer", "999")]}
    update = tmp_path / "address.xml"
    with open_output(update) as fh:
        Writer("7.1", prefix="adv").nba([], [(moved, versioned_id(lid, beginnt), False)], [],
                                        "2026-03-02T00:00:00Z", fh)
    rewritten = imported(update)
    assert query(db, "SELECT count(*) FROM kataster.strassenname WHERE strasse = %s AND"
                     " land || gemarkungsnummer || lpad(flurnummer::text, 3, '0') = %s",
                 (street, flur))[0][0] == 1          # the street is now named in the first Flur
    assert {i.split(":")[0] for i in rewritten} == {flur} and 0 < len(rewritten) < total
