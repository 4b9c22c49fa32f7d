"""NAS output of the synthetic Mülheim-like cadastre: GID 6.0/7.1 extracts and NBA updates.

Built on :func:`pipeline.generator.build` (same parcels, buildings, addresses), plus:

* catalogues: AX_Gemarkung, AX_Gemeinde, AX_LagebezeichnungKatalogeintrag (street names);
* addresses as AX_LagebezeichnungMitHausnummer, referenced by the parcels (``weistAuf``);
* the full ownership chain with the cases the importer must resolve: sole and co-owners,
  communities with sub-numbers (Erbengemeinschaft), Wohnungseigentum on a fictive sheet
  (1101 → 1301), §3(4) GBO (1102 → 1302), Erbbaurecht (2101 an 1100), the city as owner;
  owners are fictitious people whose addresses are not the parcels' own streets;
* boundaries with arcs: parcels along the southern city boundary get a gml:Arc edge;
* a Gauß-Krüger variant (``srs="gk"``: DHDN 3GK2, EPSG:31466, via BETA2007).

``expected_ownership`` returns what the resolution must produce, for round-trip tests.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import shapely

from pipeline.generator import CITIES, build
from pipeline.nas_writer import Amount, Ref, Writer, open_output, versioned_id

BASE = "2020-01-01T00:00:00Z"
UPDATE = "2026-01-15T08:00:00Z"
VORNAMEN = ["Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hakan", "Ida", "Jonas",
            "Katarina", "Lukas", "Mia", "Noah", "Olga", "Paul", "Rosa", "Samuel", "Tanja", "Yusuf"]
NACHNAMEN = ["Becker", "Demir", "Fischer", "Hoffmann", "Kaya", "Klein", "Koch", "Krüger",
             "Lange", "Meyer", "Nowak", "Richter", "Schäfer", "Schmidt", "Schulz", "Wagner",
             "Weber", "Wolf", "Yilmaz", "Zimmermann"]
OWNER_STREETS = ["Am Fiktivweg", "Beispielallee", "Musterstraße", "Platzhalterring",
                 "Testgasse", "Erfundener Pfad"]
ORTE = [("45127", "Essen"), ("47051", "Duisburg"), ("40210", "Düsseldorf"), ("46045", "Oberhausen"),
        ("44787", "Bochum"), ("45468", "Mülheim an der Ruhr")]
SAG = 0.4          # sagitta in metres of the generated boundary arcs
GK_URN = "urn:adv:crs:DE_DHDN_3GK2_NW177"


_AUTH = ["DENW36AL"]


def _oid(kind, n):
    return f"{_AUTH[0]}{kind}{n:07X}"


class _Owners:
    """Builds sheets, bookings, name numbers, persons and addresses for each parcel."""

    def __init__(self, rng, city_name):
        self.rng = rng
        self.city = f"Stadt {city_name}"
        self.features = []
        self.expected = {}         # parcel gml_id -> sorted list of (buchungsart, person, share)
        self.n = 0

    def _next(self, kind):
        self.n += 1
        return _oid(kind, self.n)

    def sheet(self, blattart=1000):
        gid = self._next("B")
        self.features.append({"type": "AX_Buchungsblatt", "id": gid, "beginnt": BASE, "props": [
            ("buchungsblattkennzeichen", f"05{3000 + self.n % 900:04d}{self.n:07d}"),
            ("buchungsblattbezirk", {"AX_Buchungsblattbezirk_Schluessel":
                                     {"land": "05", "bezirk": f"{3000 + self.n % 900:04d}"}}),
            ("buchungsblattnummerMitBuchstabenerweiterung", f"{self.n:07d}"),
            ("blattart", str(blattart))]})
        return gid

    def stelle(self, sheet, art, anteil=None, an=()):
        gid = self._next("S")
        props = [("buchungsart", str(art)), ("laufendeNummer", "1"),
                 ("istBestandteilVon", Ref(sheet))]
        if anteil is not None:
            props.append(("anteil", {"AX_Anteil": {"zaehler": f"{anteil.numerator}.000000000000",
                                                   "nenner": str(anteil.denominator)}}))
        props += [("an", Ref(a)) for a in an]
        self.features.append({"type": "AX_Buchungsstelle", "id": gid, "beginnt": BASE,
                              "props": props})
        return gid

    def person(self, legal=None):
        gid = self._next("P")
        aid = self._next("A")
        rng = self.rng
        if legal:
            props = [("nachnameOderFirma", legal), ("anrede", "3000")]
        else:
            props = [("nachnameOderFirma", NACHNAMEN[rng.integers(len(NACHNAMEN))]),
                     ("vorname", VORNAMEN[rng.integers(len(VORNAMEN))]),
                     ("geburtsdatum", f"19{rng.integers(30, 99)}-{rng.integers(1, 13):02d}-"
                                      f"{rng.integers(1, 29):02d}"),
                     ("anrede", str(1000 + 1000 * int(rng.integers(2))))]
        props.append(("hat", Ref(aid)))
        self.features.append({"type": "AX_Person", "id": gid, "beginnt": BASE, "props": props})
        plz, ort = ORTE[rng.integers(len(ORTE))]
        self.features.append({"type": "AX_Anschrift", "id": aid, "beginnt": BASE, "props": [
            ("strasse", OWNER_STREETS[rng.integers(len(OWNER_STREETS))]),
            ("hausnummer", str(rng.integers(1, 200))), ("postleitzahlPostzustellung", plz),
            ("ort_Post", ort), ("bestimmungsland", "Deutschland")]})
        return gid

    def nn(self, sheet, nr, person=None, anteil=None, art=None, eigentuemerart="1000"):
        gid = self._next("N")
        props = [("laufendeNummerNachDIN1421", nr), ("eigentuemerart", eigentuemerart),
                 ("istBestandteilVon", Ref(sheet))]
        if anteil is not None:
            props.append(("anteil", {"AX_Anteil": {"zaehler": str(anteil.numerator),
                                                   "nenner": str(anteil.denominator)}}))
        if art:
            props.append(("artDerRechtsgemeinschaft", str(art)))
        if person:
            props.append(("benennt", Ref(person)))
        self.features.append({"type": "AX_Namensnummer", "id": gid, "beginnt": BASE,
                              "props": props})
        return gid

    def owners_on(self, sheet, factor, art, out, community_ok=True):
        """Put 1–3 owners (or a community) on a sheet; record the expected rows."""
        kind = self.rng.integers(10)
        if kind < 6:
            p = self.person()
            self.nn(sheet, "0001.00.00.00.00", p, Fraction(1))
            out.append((art, p, factor))
        elif kind < 8:
            for k in range(2):
                p = self.person()
                self.nn(sheet, f"000{k + 1}.00.00.00.00", p, Fraction(1, 2))
                out.append((art, p, factor / 2))
        elif community_ok:
            self.nn(sheet, "0001.00.00.00.00", None, Fraction(1), art=1000)
            for k in range(3):
                p = self.person()
                self.nn(sheet, f"0001.0{k + 1}.00.00.00", p)
                out.append((art, p, None))
        else:
            p = self.person(legal=self.city)
            self.nn(sheet, "0001.00.00.00.00", p, Fraction(1), eigentuemerart="5500")
            out.append((art, p, factor))

    def for_parcel(self, parcel_id, case):
        out = []
        if case < 14:                                  # ordinary Grundstück
            s = self.sheet()
            b = self.stelle(s, 1100)
            self.owners_on(s, Fraction(1), 1100, out)
        elif case < 17:                                # Wohnungseigentum (WEG)
            fict = self.sheet(5000)
            b = self.stelle(fict, 1101)
            shares = [Fraction(3, 10), Fraction(7, 10)] if case % 2 else [Fraction(1, 4)] * 4
            for sh in shares:
                s = self.sheet()
                self.stelle(s, 1301, sh, [b])
                self.owners_on(s, sh, 1301, out, community_ok=False)
        elif case < 18:                                # §3(4) GBO
            fict = self.sheet(5000)
            b = self.stelle(fict, 1102)
            for sh in (Fraction(1, 3), Fraction(2, 3)):
                s = self.sheet()
                self.stelle(s, 1302, sh, [b])
                self.owners_on(s, sh, 1302, out, community_ok=False)
        elif case < 19:                                # Erbbaurecht on an ordinary parcel
            s = self.sheet()
            b = self.stelle(s, 1100)
            self.owners_on(s, Fraction(1), 1100, out, community_ok=False)
            e = self.sheet()
            self.stelle(e, 2101, None, [b])
            p = self.person()
            self.nn(e, "0001.00.00.00.00", p)
            out.append((2101, p, None))
        else:                                          # the city
            s = self.sheet()
            b = self.stelle(s, 1100)
            p = self.person(legal=self.city)
            self.nn(s, "0001.00.00.00.00", p, Fraction(1), eigentuemerart="5500")
            out.append((1100, p, Fraction(1)))
        self.expected[parcel_id] = sorted(out, key=lambda r: (r[0], r[1]))
        return b


def _arc_for(poly, y0):
    """For a parcel on the southern boundary: {segment index: arc midpoint} bulging south."""
    coords = list(poly.exterior.coords)
    for i in range(len(coords) - 1):
        (x1, y1), (x2, y2) = coords[i], coords[i + 1]
        if abs(y1 - y0) < 1e-6 and abs(y2 - y0) < 1e-6 and abs(x2 - x1) > 4:
            return {0: {i: ((x1 + x2) / 2, y0 - SAG)}}
    return {}


def _with_arc(i, poly, y0, flaeche):
    """Every 7th parcel on the southern boundary gets an arc; its book area includes the
    circular segment the arc adds. Returns (arcs, amtliche Fläche)."""
    arcs = _arc_for(poly, y0) if i % 7 == 0 else {}
    if arcs:
        flaeche = round(flaeche + arc_reference(poly, arcs[0]).area - poly.area)
    return arcs, flaeche


def write(n, out, version="6.0", seed=1, srs="utm", city="Mülheim"):
    """Write a Bestandsdatenauszug with ``n`` parcels (``.gz`` compresses).

    Returns a summary dict including ``expected_ownership`` (parcel → rows).
    """
    layers = build(n, seed, city)
    spec = CITIES[city]
    _AUTH[0] = spec["authority"]
    kreis = spec["kreis"]
    parcels, buildings = layers["Flurstueck"], layers["GebaeudeBauwerk"]
    rng = np.random.default_rng(seed + 1000)
    writer = Writer(version, srs=GK_URN if srs == "gk" else "urn:adv:crs:ETRS89_UTM32",
                    prefix="adv" if version == "7.1" else None)
    to_gk = None
    if srs == "gk":
        from pyproj import Transformer

        import importers.crs  # noqa: F401 - grids

        to_gk = Transformer.from_crs(25832, 31466, always_xy=True)
    y0 = float(shapely.total_bounds(parcels.geometry.values)[1])
    owners = _Owners(rng, spec["gemeinde"])
    streets = {}
    features_written = {"n": 0}
    arcs_written = 0
    arc_areas = {}
    with open_output(out) as fh:
        cat = []
        for gem, name in sorted(set(zip(parcels["gemaschl"], parcels["gemarkung"], strict=True))):
            cat.append({"type": "AX_Gemarkung", "id": _oid("G", int(gem[2:])), "beginnt": BASE,
                        "props": [("schluessel", {"AX_Gemarkung_Schluessel": {
                            "land": "05", "gemarkungsnummer": gem[2:]}}), ("bezeichnung", name)]})
        cat.append({"type": "AX_Gemeinde", "id": _oid("M", 1), "beginnt": BASE, "props": [
            ("gemeindekennzeichen", {"AX_Gemeindekennzeichen": {
                "land": "05", "regierungsbezirk": "1", "kreis": kreis, "gemeinde": "000"}}),
            ("bezeichnung", spec["gemeinde"])]})
        addresses = parcels["lagebeztxt"].str.rsplit(" ", n=1, expand=True)
        for k, street in enumerate(sorted(addresses[0].unique())):
            streets[street] = f"{k + 1:05d}"
            cat.append({"type": "AX_LagebezeichnungKatalogeintrag", "id": _oid("K", k + 1),
                        "beginnt": BASE, "props": [
                            ("schluessel", {"AX_VerschluesselteLagebezeichnung": {
                                "land": "05", "regierungsbezirk": "1", "kreis": kreis,
                                "gemeinde": "000", "lage": f"{k + 1:05d}"}}),
                            ("bezeichnung", street)]})
        fh.write(writer._open("AX_Bestandsdatenauszug",
                              'xmlns:wfs="http://www.adv-online.de/namespaces/adv/gid/wfs"'))
        p = writer.p
        fh.write(f"<{p}enthaelt><wfs:FeatureCollection gml:id=\"FC1\">\n")

        def emit(f):
            fh.write("<gml:featureMember>" + writer.feature(f) + "</gml:featureMember>\n")
            features_written["n"] += 1

        for f in cat:
            emit(f)
        geoms = parcels.geometry.values
        bgeoms = buildings.geometry.values
        # The generator names buildings after the index of their parcel.
        bld_of_parcel = {int(o[8:16], 16) - 0x8000000: k for k, o in enumerate(buildings["oid"])}
        for i in range(len(parcels)):
            row = parcels.iloc[i]
            gid = row["idflurst"]
            poly = shapely.get_geometry(geoms[i], 0)
            arcs, flaeche = _with_arc(i, poly, y0, row["flaeche"])
            arcs_written += bool(arcs)
            if arcs:
                arc_areas[gid] = float(flaeche)
            lage_id = _oid("L", i)
            street, number = addresses.iat[i, 0], addresses.iat[i, 1]
            emit({"type": "AX_LagebezeichnungMitHausnummer", "id": lage_id, "beginnt": BASE,
                  "props": [("lagebezeichnung", {"AX_VerschluesselteLagebezeichnung": {
                      "land": "05", "regierungsbezirk": "1", "kreis": kreis, "gemeinde": "000",
                      "lage": streets[street]}}), ("hausnummer", number)]})
            booking = owners.for_parcel(gid, int(rng.integers(20)))
            shape = poly if to_gk is None else shapely.transform(
                poly, lambda c: np.column_stack(to_gk.transform(c[:, 0], c[:, 1])))
            arc_gk = arcs
            if to_gk is not None and arcs:
                (k, seg), = arcs[0].items()
                mx, my = to_gk.transform(*seg)
                arc_gk = {0: {k: (mx, my)}}
            nenner = row["flstnrnen"]
            nummer = {"zaehler": row["flstnrzae"]}
            if isinstance(nenner, str):
                nummer["nenner"] = nenner
            emit({"type": "AX_Flurstueck", "id": gid, "beginnt": BASE, "geom": ("position", shape),
                  "arcs": arc_gk, "props": [
                      ("gemarkung", {"AX_Gemarkung_Schluessel": {
                          "land": "05", "gemarkungsnummer": row["gemaschl"][2:]}}),
                      ("flurstuecksnummer", {"AX_Flurstuecksnummer": nummer}),
                      ("flurstueckskennzeichen", row["flstkennz"]),
                      ("amtlicheFlaeche", Amount(f"{flaeche:.2f}")),
                      ("flurnummer", str(int(row["flur"]))),
                      ("zeitpunktDerEntstehung", "1990-01-01"),
                      ("gemeindezugehoerigkeit", {"AX_Gemeindekennzeichen": {
                          "land": "05", "regierungsbezirk": "1", "kreis": kreis,
                          "gemeinde": "000"}}),
                      ("istGebucht", Ref(booking)), ("weistAuf", Ref(lage_id))]})
            b = bld_of_parcel.get(i)
            if b is not None:
                bshape = shapely.get_geometry(bgeoms[b], 0)
                if to_gk is not None:
                    bshape = shapely.transform(
                        bshape, lambda c: np.column_stack(to_gk.transform(c[:, 0], c[:, 1])))
                emit({"type": "AX_Gebaeude", "id": _oid("H", i), "beginnt": BASE,
                      "geom": ("position", bshape), "props": [
                          ("gebaeudefunktion", str(buildings["gfkzshh"].iat[b])),
                          ("anzahlDerOberirdischenGeschosse", str(buildings["anzahlgs"].iat[b])),
                          ("zeigtAuf", Ref(lage_id))]})
            if len(owners.features) > 2000:
                for f in owners.features:
                    emit(f)
                owners.features.clear()
        for f in owners.features:
            emit(f)
        fh.write(f"</wfs:FeatureCollection></{p}enthaelt></{p}AX_Bestandsdatenauszug>\n")
    return {"out": str(out), "format": f"nas{version.replace('.', '')[:1]}", "parcels": n,
            "objects": features_written["n"], "arcs": arcs_written, "arc_areas": arc_areas,
            "expected_ownership": owners.expected}


def write_nba(n, out, version="6.0", seed=1, fraction=0.05, city="Mülheim"):
    """An NBA update for the extract of the same ``n`` and ``seed``: a share of the parcels get a
    new version (amtliche Fläche + 1 m²), as many addresses are deleted."""
    layers = build(n, seed, city)
    _AUTH[0] = CITIES[city]["authority"]
    parcels = layers["Flurstueck"]
    rng = np.random.default_rng(seed + 2000)
    pick = np.sort(rng.choice(len(parcels), size=max(1, int(len(parcels) * fraction)),
                              replace=False))
    writer = Writer(version, prefix="adv" if version == "7.1" else None)
    replaces, deletes = [], []
    y0 = float(shapely.total_bounds(parcels.geometry.values)[1])
    for i in pick:
        row = parcels.iloc[i]
        gid = row["idflurst"]
        poly = shapely.get_geometry(row.geometry, 0)
        arcs, flaeche = _with_arc(i, poly, y0, row["flaeche"])
        nummer = {"zaehler": row["flstnrzae"]}
        if isinstance(row["flstnrnen"], str):
            nummer["nenner"] = row["flstnrnen"]
        new = {"type": "AX_Flurstueck", "id": gid, "gml_id": versioned_id(gid, UPDATE),
               "beginnt": UPDATE, "geom": ("position", poly), "arcs": arcs,
               "props": [("gemarkung", {"AX_Gemarkung_Schluessel": {
                   "land": "05", "gemarkungsnummer": row["gemaschl"][2:]}}),
                   ("flurstuecksnummer", {"AX_Flurstuecksnummer": nummer}),
                   ("flurstueckskennzeichen", row["flstkennz"]),
                   ("amtlicheFlaeche", Amount(f"{flaeche + 1:.2f}")),
                   ("flurnummer", str(int(row["flur"])))]}
        replaces.append((new, versioned_id(gid, BASE), False))
        deletes.append(("AX_LagebezeichnungMitHausnummer", versioned_id(_oid("L", i), BASE)))
    with open_output(out) as fh:
        writer.nba([], replaces, deletes, "2026-01-16T00:00:00Z", fh)
    return {"out": str(out), "format": "nba", "replaced": [parcels.iloc[i]["idflurst"]
                                                          for i in pick],
            "deleted": len(deletes)}


def arc_reference(poly, arcs, step=0.0005):
    """The parcel with its arc stroked very finely (reference for round-trip checks)."""
    from importers.nas_geometry import stroke_arc

    coords = list(poly.exterior.coords)
    out = []
    for i in range(len(coords) - 1):
        if i in arcs:
            out.extend(stroke_arc(coords[i], arcs[i], coords[i + 1], step)[:-1].tolist())
        else:
            out.append(coords[i])
    out.append(out[0])
    return shapely.Polygon(out)

