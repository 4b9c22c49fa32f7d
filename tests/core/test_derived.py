"""The derived copies a run keeps for what it touched equal their definitions."""

import json

import pytest
import shapely
import shapely.affinity
from conftest import kataster, query

from pipeline.synthetic.nas import _City, write, write_nba
from pipeline.synthetic.nas_writer import Ref, Writer, open_output, versioned_id

# Rows of a kept copy that differ from its definition (the centre of a street's addresses may
# differ in the last bits with the order the points are collected in).
DIFFER = {
    "strassenname": """
SELECT count(*) FROM kataster.strassenname m FULL JOIN kataster.strassenname_quelle v USING (id)
WHERE m.id IS NULL OR v.id IS NULL OR NOT ST_DWithin(m.geom, v.geom, 1e-6)
   OR (m.strasse, m.land, m.gemarkungsnummer, m.flurnummer, m.adressen, m.herkunft)
      IS DISTINCT FROM (v.strasse, v.land, v.gemarkungsnummer, v.flurnummer, v.adressen,
                        v.herkunft)""",
    "hausnummer": """
SELECT count(*) FROM kataster.hausnummer m FULL JOIN kataster.hausnummer_quelle v USING (id)
WHERE m.id IS NULL OR v.id IS NULL OR NOT ST_Equals(m.geom, v.geom)
   OR (m.hausnummer, m.herkunft) IS DISTINCT FROM (v.hausnummer, v.herkunft)""",
    "flur_stueck": """
SELECT count(*) FROM kataster.flur_stueck m FULL JOIN kataster.flur_stueck_quelle v
  USING (id, zelle)
WHERE m.id IS NULL OR v.id IS NULL OR NOT ST_Equals(m.geom, v.geom)
   OR (m.land, m.gemarkungsnummer, m.flurnummer)
      IS DISTINCT FROM (v.land, v.gemarkungsnummer, v.flurnummer)""",
    # The Flur map as the union of its pieces: kataster.flur reads the kept pieces (0024).
    "flur_karte": """
SELECT count(*) FROM kataster.flur_karte m FULL JOIN kataster.flur v USING (id)
WHERE m.id IS NULL OR v.id IS NULL OR NOT ST_Equals(m.geom, v.geom)
   OR (m.land, m.gemarkungsnummer, m.flurnummer, m.gemarkung, m.herkunft)
      IS DISTINCT FROM (v.land, v.gemarkungsnummer, v.flurnummer, v.gemarkung, v.herkunft)""",
    # The Gemarkung map from the Flur map (0027).
    "gemarkung_karte": """
SELECT count(*) FROM kataster.gemarkung_karte m FULL JOIN kataster.gemarkung v USING (id)
WHERE m.id IS NULL OR v.id IS NULL OR NOT ST_Equals(m.geom, v.geom)
   OR (m.land, m.gemarkungsnummer, m.gemarkung, m.herkunft)
      IS DISTINCT FROM (v.land, v.gemarkungsnummer, v.gemarkung, v.herkunft)"""}
VERSIONS = {"strassenname": "SELECT id, xmin::text FROM kataster.strassenname",
            "hausnummer": "SELECT id, xmin::text FROM kataster.hausnummer",
            "flur_stueck": "SELECT id || ':' || zelle, xmin::text FROM kataster.flur_stueck",
            "flur_karte": "SELECT id, xmin::text FROM kataster.flur_karte",
            "gemarkung_karte": "SELECT id, xmin::text FROM kataster.gemarkung_karte"}
FLUR = "land || gemarkungsnummer || lpad(flurnummer::text, 3, '0')"
UTC = """to_char(beginnt AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


def test_street_names_and_house_numbers_follow_updates(cli_env, db, tmp_path):
    """Generated NBA portions (parcels re-sent with their outline, with new versions of their
    bookings, addresses and buildings: the next house number); a
    parcel re-sent with a new outline; an address moved to another street while its parcel is
    not delivered (the old and the new street's names in its Flur change, not the Flur map's
    pieces); a house number's presentation object deleted, then its address renumbered; a
    presentation object's text emptied, then its address renumbered. After every run the
    street names and house numbers equal their definitions (the Flur map's pieces and the Flur
    map too), and a run rewrote only rows of what it changed (the street names of the re-sent
    parcels; the pieces, Flur and Gemarkung of the reshaped one; the moved address's Flur; the
    building and object that show a renumbered address, neither delivered)."""
    city = tmp_path / "city.xml"
    write(120, city, version="7.1", seed=5)
    kataster("import", city, "--no-validate", env=cli_env, check=True)
    total = {t: query(db, f"SELECT count(*) FROM kataster.{t}")[0][0] for t in DIFFER}
    assert total["strassenname"] > 10 and total["hausnummer"] > 10
    assert all(query(db, q)[0][0] == 0 for q in DIFFER.values())
    dates = iter(f"2026-03-{d:02d}T00:00:00Z" for d in range(1, 29))

    def imported(path):
        before = {t: dict(query(db, q)) for t, q in VERSIONS.items()}
        run = json.loads(kataster("import", path, "--no-validate", "--json", env=cli_env,
                                  check=True).stdout)
        assert run["status"] == "committed"
        for table, q in DIFFER.items():
            assert query(db, q)[0][0] == 0, (path.name, table)
        return {t: {i for i, x in query(db, q) if before[t].get(i) != x}
                for t, q in VERSIONS.items()}

    def nba(name, replaces=(), deletes=()):
        path = tmp_path / f"{name}.xml"
        with open_output(path) as fh:
            Writer("7.1", prefix="adv").nba([], list(replaces), list(deletes), next(dates), fh)
        return imported(path)

    def address(lid, hausnummer, lage=None):
        """A new version of Lagebezeichnung ``lid`` with another number (and street)."""
        beginnt, land, rb, kreis, gemeinde, old = query(
            db, f"SELECT {UTC}, land, regierungsbezirk, kreis, gemeinde, lage"
                " FROM kataster.ax_lagebezeichnung WHERE gml_id = %s AND endet IS NULL",
            (lid,))[0]
        new = {"type": "AX_LagebezeichnungMitHausnummer", "id": lid, "beginnt": next(dates),
               "props": [("lagebezeichnung", {"AX_VerschluesselteLagebezeichnung": {
                   "land": land, "regierungsbezirk": rb, "kreis": kreis, "gemeinde": gemeinde,
                   "lage": lage or old}}), ("hausnummer", hausnummer)]}
        return new, versioned_id(lid, beginnt), False

    for k in range(2):
        portion = tmp_path / f"portion_{k}.xml"
        write_nba(120, portion, version="7.1", seed=5, sequence=(k, 4))
        rewritten = imported(portion)
        assert 0 < len(rewritten["strassenname"]) < total["strassenname"]
        # The parcels keep their outline and Flur (a new area, the next house number): no piece of
        # the Flur map, no Flur or Gemarkung map is redrawn.
        assert rewritten["flur_stueck"] == rewritten["flur_karte"] == set()
        assert rewritten["gemarkung_karte"] == set()

    # A parcel re-sent with a new outline (shrunk by a tenth about its centre, so its cell
    # stays): the pieces of its cell, its Flur's map and its Gemarkung's are redrawn, no others.
    c = _City(120, 5, "Mülheim", False)
    i = next(k for k in range(len(c.parcels)) if k not in c.arcs)
    gid = c.parcels["idflurst"].iat[i]
    beginnt, booking, flur, zelle = query(
        db, f"SELECT {UTC}, ist_gebucht[1], {FLUR}, kataster.zelle(geom)"
            " FROM kataster.ax_flurstueck WHERE gml_id = %s AND endet IS NULL", (gid,))[0]
    new = c.parcel(i, booking, next(dates), 1000,
                   lambda g: shapely.affinity.scale(g, 0.9, 0.9))
    rewritten = nba("reshaped", [(new, versioned_id(gid, beginnt), False)])
    assert f"{flur}:{zelle}" in rewritten["flur_stueck"]
    assert {piece.split(":")[0] for piece in rewritten["flur_stueck"]} == {flur}
    assert rewritten["flur_karte"] == {flur}
    assert rewritten["gemarkung_karte"] == {flur[:6]}

    # The address of a parcel in one Flur moves to a street of another Flur; the parcel itself
    # is not delivered: its new address text reaches the street names through lage_text.
    lid, flur = query(db, f"""
        SELECT l.gml_id, f.{FLUR} FROM kataster.ax_flurstueck f
        JOIN kataster.ax_lagebezeichnung l ON l.endet IS NULL AND l.gml_id = ANY(f.weist_auf)
        WHERE f.endet IS NULL ORDER BY f.gml_id LIMIT 1""")[0]
    street = query(db, f"SELECT strasse FROM kataster.strassenname WHERE {FLUR} <> %s"
                       " ORDER BY id LIMIT 1", (flur,))[0][0]
    code = query(db, "SELECT lage FROM kataster.ax_lagebezeichnung l JOIN kataster.ax_katalog k"
                     " ON k.schluessel = l.land || l.regierungsbezirk || l.kreis || l.gemeinde"
                     " || l.lage AND k.endet IS NULL WHERE k.bezeichnung = %s LIMIT 1",
                 (street,))[0][0]
    rewritten = nba("moved", [address(lid, "999", code)])
    assert query(db, f"SELECT count(*) FROM kataster.strassenname WHERE strasse = %s"
                     f" AND {FLUR} = %s", (street, flur))[0][0] == 1   # now in the first Flur
    # Only the street names of the new street and of the old one (if it keeps addresses there)
    # in that Flur were rewritten.
    assert f"{flur}:{street}" in rewritten["strassenname"]
    assert len(rewritten["strassenname"]) <= 2
    assert {i.split(":")[0] for i in rewritten["strassenname"]} == {flur}
    assert rewritten["flur_stueck"] == rewritten["flur_karte"] == set()
    assert rewritten["gemarkung_karte"] == set()

    # Two house numbers shown by presentation objects of buildings that name their address.
    shown = query(db, f"""
        SELECT p.gml_id, {UTC.replace('beginnt', 'p.beginnt')}, ST_X(p.geom), ST_Y(p.geom),
               l.gml_id, g.gml_id
        FROM kataster.ax_objekt p
        JOIN kataster.ax_lagebezeichnung l ON l.endet IS NULL
         AND l.gml_id = regexp_replace(p.attrs->>'dientZurDarstellungVon', '^(urn:adv:oid:|#)', '')
        JOIN kataster.ax_gebaeude g ON g.endet IS NULL
         AND p.attrs->>'dientZurDarstellungVon' = ANY(kataster.verweise(g.attrs->'zeigtAuf'))
        WHERE p.objektart = 'AP_PTO' AND p.endet IS NULL AND p.attrs->>'art' = 'HNR'
          AND l.gml_id <> %s
        ORDER BY p.gml_id LIMIT 2""", (lid,))
    assert len(shown) == 2
    # The first object is deleted: its building shows the number of its address itself.
    pto, beginnt, _x, _y, lage, building = shown[0]
    rewritten = nba("pto_deleted", deletes=[("AP_PTO", versioned_id(pto, beginnt))])
    assert building in rewritten["hausnummer"]
    rewritten = nba("renumbered", [address(lage, "77b")])
    assert rewritten["hausnummer"] == {building}
    assert query(db, "SELECT hausnummer, herkunft FROM kataster.hausnummer WHERE id = %s",
                 (building,)) == [("77b", "abgeleitet")]
    # The second object loses its text: it shows its address's number, which then changes.
    pto, beginnt, x, y, lage, _building = shown[1]
    emptied = {"type": "AP_PTO", "id": pto, "beginnt": next(dates),
               "geom": ("position", shapely.Point(x, y)),
               "props": [("art", "HNR"), ("schriftinhalt", ""),
                         ("dientZurDarstellungVon", Ref(lage))]}
    assert pto in nba("emptied", [(emptied, versioned_id(pto, beginnt), False)])["hausnummer"]
    rewritten = nba("renumbered_shown", [address(lage, "12c")])
    assert rewritten["hausnummer"] == {pto} and rewritten["strassenname"] <= {
        i for i, in query(db, "SELECT id FROM kataster.strassenname")}
    assert query(db, "SELECT hausnummer FROM kataster.hausnummer WHERE id = %s",
                 (pto,)) == [("12c",)]


def test_district_map_union_falls_back_where_parts_are_no_coverage():
    """The maps' union (GEOS's coverage union) gives ST_Union's outline on a clean coverage,
    and where the parts are no coverage (an overlap; a shared edge with a vertex on one side
    only, which GEOS's coverage union refuses) the general union's."""
    from pipeline.views import union_parts

    def union(*geoms):
        return union_parts(shapely.to_wkb(list(geoms)))

    a, b = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)
    clean = union(a, b, shapely.box(5, 5, 6, 6))
    assert clean.geom_type == "MultiPolygon" and len(clean.geoms) == 2
    assert clean.equals(shapely.union_all([a, b, shapely.box(5, 5, 6, 6)]))
    # (1, 1) is a vertex of the two left squares, not of the tall right one.
    t = [a, shapely.box(0, 1, 1, 2), shapely.box(1, 0, 2, 2)]
    with pytest.raises(shapely.errors.GEOSException):
        shapely.coverage_union_all(t)
    assert union(*t).equals(shapely.box(0, 0, 2, 2))
    # Overlapping parts: the coverage union is invalid, the map is the true union.
    overlap = [a, shapely.box(0.5, 0, 1.5, 1)]
    assert not shapely.coverage_union_all(overlap).is_valid
    got = union(*overlap)
    assert got.is_valid and got.equals(shapely.box(0, 0, 1.5, 1))
