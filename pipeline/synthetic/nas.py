"""NAS output of the synthetic Mülheim-like cadastre: GID 6.0/7.1 extracts and NBA updates.

Built on :func:`pipeline.synthetic.city.build` (same parcels, buildings, addresses), plus:

* catalogues: AX_Gemarkung, AX_Gemeinde, AX_LagebezeichnungKatalogeintrag (street names);
* addresses as AX_LagebezeichnungMitHausnummer, referenced by the parcels (``weistAuf``);
* the full ownership chain with the cases the importer must resolve: sole and co-owners,
  communities with sub-numbers (Erbengemeinschaft), Wohnungseigentum on a fictive sheet
  (1101 → 1301), §3(4) GBO (1102 → 1302), Erbbaurecht (2101 an 1100), the city as owner;
  owners are fictitious people whose addresses are not the parcels' own streets;
* boundaries with arcs: parcels along the southern city boundary get a gml:Arc edge;
* in extracts (not ``lean``) the type mix of a real one: points, presentation objects, land
  use in 24 types, rights and the further types (``_extras``, ``_further``): 86 types;
* a Gauß-Krüger variant (``srs="gk"``: DHDN 3GK2, EPSG:31466, via BETA2007).

``expected_ownership`` returns what the resolution must produce, for round-trip tests.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from fractions import Fraction

import numpy as np
import shapely
import shapely.affinity

from pipeline.synthetic.city import CITIES, build
from pipeline.synthetic.nas_writer import Amount, Ref, Writer, open_output, versioned_id

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


_AUTH = ["DENW36AL00"]     # authority + the city's id tag (see generator.id_tag)
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _oid(kind, n):
    """Object id: authority (8), city tag (2), kind (1), number in base 62 (5 digits)."""
    digits = []
    for _ in range(5):
        n, r = divmod(n, 62)
        digits.append(_DIGITS[r])
    return f"{_AUTH[0]}{kind}{''.join(reversed(digits))}"


def _set_city(city, seed, n):
    from pipeline.synthetic.city import id_tag

    _AUTH[0] = CITIES[city]["authority"] + id_tag(city, seed, n)


def beginnt_of(i):
    """A realistic, deterministic start of life for object ``i`` (1998–2024)."""
    h = (i * 2654435761) % 4294967296
    return (f"{1998 + h % 27}-{1 + (h >> 5) % 12:02d}-{1 + (h >> 9) % 28:02d}T"
            f"{(h >> 14) % 24:02d}:{(h >> 19) % 60:02d}:00Z")


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


def plan_arcs(polys, y0, shared=True):
    """{parcel index: {segment index: arc midpoint}}.

    Every 7th parcel on the southern city boundary bulges south. With ``shared``, every 9th
    parcel also turns the first edge it shares with a neighbour into an arc: both parcels
    carry it, one writes it forwards and the other backwards, as real extracts do."""
    arcs = {}
    for i, poly in enumerate(polys):
        if i % 7 == 0:
            south = _arc_for(poly, y0)
            if south:
                arcs[i] = dict(south[0])
    if not shared:
        return arcs
    edges = {}
    for i, poly in enumerate(polys):
        c = poly.exterior.coords
        for k in range(len(c) - 1):
            edges.setdefault(tuple(sorted((c[k], c[k + 1]))), []).append((i, k))
    for i, poly in enumerate(polys):
        if i % 9 != 4:
            continue
        c = list(poly.exterior.coords)
        for k in range(len(c) - 1):
            a, b = c[k], c[k + 1]
            sides = edges.get(tuple(sorted((a, b))), [])
            if len(sides) != 2 or np.hypot(b[0] - a[0], b[1] - a[1]) < 6:
                continue
            (j, kj), = [s for s in sides if s[0] != i]
            if k in arcs.get(i, {}) or kj in arcs.get(j, {}):
                continue
            length = np.hypot(b[0] - a[0], b[1] - a[1])
            normal = (-(b[1] - a[1]) / length, (b[0] - a[0]) / length)
            mid = (round((a[0] + b[0]) / 2 + SAG * normal[0], 3),
                   round((a[1] + b[1]) / 2 + SAG * normal[1], 3))
            arcs.setdefault(i, {})[k] = mid
            arcs.setdefault(j, {})[kj] = mid
            break
    return arcs


# Land use by the parcel's use: six in ten parcels the main type, the others one of the related
# types a real city has (the real extract writes its land use in 25 types, corpus README), each
# with its descriptive attribute.
NUTZUNG_TYPES = {
    "Wohnbaufläche": [("AX_Wohnbauflaeche", [("artDerBebauung", "1000")]),
                      ("AX_FlaecheGemischterNutzung", [("funktion", "2700")]),
                      ("AX_Strassenverkehr", []), ("AX_Weg", [("funktion", "5210")]),
                      ("AX_Platz", [("funktion", "5310")]), ("AX_Friedhof", [("funktion", "9401")]),
                      ("AX_FlaecheBesondererFunktionalerPraegung", [("funktion", "1100")])],
    "Industrie- und Gewerbefläche": [
        ("AX_IndustrieUndGewerbeflaeche", [("funktion", "1700")]),
        ("AX_Halde", [("lagergut", "1000")]), ("AX_Bergbaubetrieb", [("abbaugut", "1000")]),
        ("AX_TagebauGrubeSteinbruch", [("abbaugut", "1001")]),
        ("AX_Bahnverkehr", [("funktion", "2322")]), ("AX_Flugverkehr", [("art", "5520")]),
        ("AX_Schiffsverkehr", [("funktion", "5610")]), ("AX_Hafenbecken", [("funktion", "8810")])],
    "Grünanlage": [("AX_SportFreizeitUndErholungsflaeche", [("funktion", "4300")]),
                   ("AX_Gehoelz", []), ("AX_StehendesGewaesser", [("funktion", "8610")]),
                   ("AX_Fliessgewaesser", [("funktion", "8200")])],
    "Landwirtschaft": [("AX_Landwirtschaft", [("vegetationsmerkmal", "1010")]),
                       ("AX_Heide", []), ("AX_Moor", []), ("AX_Sumpf", []),
                       ("AX_UnlandVegetationsloseFlaeche", [("funktion", "1000")])],
    "Wald": [("AX_Wald", [("vegetationsmerkmal", "1100")]), ("AX_Gehoelz", [])]}


def land_use(use, i):
    """(type, descriptive properties) of parcel ``i``'s land use, or None."""
    variants = NUTZUNG_TYPES.get(use)
    if not variants:
        return None
    if i % 10 < 6 or len(variants) == 1:
        return variants[0]
    return variants[1 + (i // 10) % (len(variants) - 1)]


HEIGHT_URN = "urn:adv:crs:DE_DHHN2016_NH"


def _form(i, arcs):
    """The GML form a parcel is written in: most as current extracts (patches of rings of
    curves), some as older ones (GML 3.1 polygonPatches) or as a plain gml:Polygon."""
    if arcs or i % 5 not in (1, 2):
        return "patches"
    return "polygonPatches" if i % 5 == 1 else "polygon"


class _City:
    """What an extract and its updates share: the parcels, their arcs, bookings and ids."""

    def __init__(self, n, seed, city, lean):
        _set_city(city, seed, n)
        self.layers = build(n, seed, city)
        self.spec = CITIES[city]
        self.kreis = self.spec["kreis"]
        self.parcels = self.layers["Flurstueck"]
        self.polys = [shapely.get_geometry(g, 0) for g in self.parcels.geometry.values]
        self.y0 = float(shapely.total_bounds(self.parcels.geometry.values)[1])
        self.arcs = plan_arcs(self.polys, self.y0, shared=not lean)
        self.addresses = self.parcels["lagebeztxt"].str.rsplit(" ", n=1, expand=True)
        self.streets = {s: f"{k + 1:05d}" for k, s in
                        enumerate(sorted(self.addresses[0].unique()))}
        self.uses = self.parcels["tntxt"].str.split(";").str[0].to_numpy()

    def book_area(self, i):
        """amtliche Fläche: the generated book value, with the segments the arcs add."""
        flaeche = self.parcels["flaeche"].iat[i]
        arcs = self.arcs.get(i)
        if arcs:
            poly = self.polys[i]
            flaeche = round(flaeche + arc_reference(poly, arcs).area - poly.area)
        return float(flaeche)

    def bookings(self, owners, rng):
        """Run the owner generation for every parcel (as the extract does); yields
        (index, booking id) while ``owners.features`` fills."""
        for i in range(len(self.parcels)):
            yield i, owners.for_parcel(self.parcels["idflurst"].iat[i], int(rng.integers(20)))

    def address(self, i, beginnt, number):
        """Parcel ``i``'s address (AX_LagebezeichnungMitHausnummer) with house ``number``."""
        return {"type": "AX_LagebezeichnungMitHausnummer", "id": _oid("L", i),
                "beginnt": beginnt, "props": [
                    ("lagebezeichnung", {"AX_VerschluesselteLagebezeichnung": {
                        "land": "05", "regierungsbezirk": "1", "kreis": self.kreis,
                        "gemeinde": "000", "lage": self.streets[self.addresses.iat[i, 0]]}}),
                    ("hausnummer", number)]}

    def building_of_parcel(self):
        """{parcel index: index of its building} (the generator names buildings after the
        index of their parcel)."""
        return {int(o[10:16], 16) - 0x800000: k
                for k, o in enumerate(self.layers["GebaeudeBauwerk"]["oid"])}

    def building(self, i, b, shape, beginnt, to_out, storeys=0):
        """The building ``b`` on parcel ``i`` (``storeys`` more than generated)."""
        buildings = self.layers["GebaeudeBauwerk"]
        return {"type": "AX_Gebaeude", "id": _oid("H", i), "beginnt": beginnt,
                "geom": ("position", to_out(shape)), "props": [
                    ("gebaeudefunktion", str(buildings["gfkzshh"].iat[b])),
                    ("anzahlDerOberirdischenGeschosse",
                     str(int(buildings["anzahlgs"].iat[b]) + storeys)),
                    ("zeigtAuf", Ref(_oid("L", i)))]}

    def parcel(self, i, booking, beginnt, area, to_out):
        row = self.parcels.iloc[i]
        nummer = {"zaehler": row["flstnrzae"]}
        if isinstance(row["flstnrnen"], str):
            nummer["nenner"] = row["flstnrnen"]
        arcs = self.arcs.get(i, {})
        return {"type": "AX_Flurstueck", "id": row["idflurst"], "beginnt": beginnt,
                "geom": ("position", to_out(self.polys[i])),
                "arcs": {0: {k: to_out(shapely.Point(m)).coords[0] for k, m in arcs.items()}}
                if arcs else {},
                "form": _form(i, arcs), "props": [
                    ("gemarkung", {"AX_Gemarkung_Schluessel": {
                        "land": "05", "gemarkungsnummer": row["gemaschl"][2:]}}),
                    ("flurstuecksnummer", {"AX_Flurstuecksnummer": nummer}),
                    ("flurstueckskennzeichen", row["flstkennz"]),
                    ("amtlicheFlaeche", Amount(f"{area:.2f}")),
                    ("flurnummer", str(int(row["flur"]))),
                    ("zeitpunktDerEntstehung", beginnt[:10]),
                    ("gemeindezugehoerigkeit", {"AX_Gemeindekennzeichen": {
                        "land": "05", "regierungsbezirk": "1", "kreis": self.kreis,
                        "gemeinde": "000"}}),
                    ("istGebucht", Ref(booking)), ("weistAuf", Ref(_oid("L", i)))]}


def _extras(city, i, gid, beginnt, to_out, vertex_owner, building):
    """The other objects real extracts carry around a parcel (see the corpus README's type
    mix): boundary points with their Punktorte, presentation objects (AP_PTO for the parcel
    number and the house number, AP_PPO for the building's function as a MultiPoint, AP_LPO
    arrows as a MultiCurve), land use, Bodenschätzung, rights, special boundaries,
    historical parcels, building points (some positions with their own srsName, some
    height-only)."""
    poly = city.polys[i]
    out = [{"type": "AP_PTO", "id": _oid("T", i), "beginnt": beginnt,
            "geom": ("position", to_out(shapely.point_on_surface(poly))),
            "props": [("art", "ZAE_NEN"),
                      ("schriftinhalt", city.parcels["flstnrzae"].iat[i]
                       + (f"/{city.parcels['flstnrnen'].iat[i]}"
                          if isinstance(city.parcels["flstnrnen"].iat[i], str) else "")),
                      ("dientZurDarstellungVon", Ref(gid))]}]
    if i % 5 == 3:                          # a small parcel's number with its arrow
        at = shapely.point_on_surface(poly)
        out.append({"type": "AP_LPO", "id": _oid("l", i), "beginnt": beginnt,
                    "geom": ("position", to_out(shapely.MultiLineString(
                        [[(at.x + 4, at.y + 3), (at.x, at.y)]]))),
                    "props": [("signaturnummer", "2004"), ("art", "Pfeil"),
                              ("dientZurDarstellungVon", Ref(gid))]})
    use = land_use(city.uses[i], i)
    if use:
        out.append({"type": use[0], "id": _oid("U", i), "beginnt": beginnt,
                    "geom": ("position", to_out(poly)), "props": list(use[1])})
    for k, xy in enumerate(poly.exterior.coords[:-1]):
        if vertex_owner.get(xy) != i:
            continue
        v = i * 16 + k
        out.append({"type": "AX_Grenzpunkt", "id": _oid("R", v), "beginnt": beginnt,
                    "props": [("abmarkung_Marke", "9500"),
                              ("punktkennung", f"32{int(xy[0]) // 1000:03d}{v:09d}")]})
        out.append({"type": "AX_PunktortTA", "id": _oid("O", v), "beginnt": beginnt,
                    "geom": ("position", to_out(shapely.Point(xy))),
                    "props": [("genauigkeitsstufe", "2000"), ("istTeilVon", Ref(_oid("R", v)))]})
    if i % 3 == 0:
        edge = shapely.LineString(poly.exterior.coords[:2])
        out.append({"type": "AX_BesondereFlurstuecksgrenze", "id": _oid("E", i),
                    "beginnt": beginnt, "geom": ("position", to_out(edge)),
                    "props": [("artDerFlurstuecksgrenze", "1000")]})
        out.append({"type": "AX_SonstigesRecht", "id": _oid("W", i), "beginnt": beginnt,
                    "geom": ("geometrie", to_out(poly)), "props": [("artDerFestlegung", "4720")]})
    if city.uses[i] == "Landwirtschaft":
        out.append({"type": "AX_Bodenschaetzung", "id": _oid("Z", i), "beginnt": beginnt,
                    "geom": ("position", to_out(poly)),
                    "props": [("kulturart", "1000"), ("bodenart", "4000"),
                              ("ackerzahlOderGruenlandzahl", str(30 + i % 50))]})
    if i % 4 == 0:
        out.append({"type": "AX_Bewertung", "id": _oid("V", i), "beginnt": beginnt,
                    "geom": ("position", to_out(poly)), "props": [("klassifizierung", "1100")]})
    if i % 15 == 0:
        out.append({"type": "AX_HistorischesFlurstueckALB", "id": _oid("Y", i),
                    "beginnt": beginnt, "props": [
                        ("flurstueckskennzeichen", city.parcels["flstkennz"].iat[i][:9]
                         + f"{90000 + i % 9999:05d}______"),
                        ("nachfolgerFlurstueckskennzeichen", city.parcels["flstkennz"].iat[i])]})
    if building is not None:
        bshape, number = building
        out.append({"type": "AP_PTO", "id": _oid("t", i), "beginnt": BASE,
                    "geom": ("position", to_out(shapely.centroid(bshape))),
                    "props": [("art", "HNR"), ("schriftinhalt", number),
                              ("dientZurDarstellungVon", Ref(_oid("L", i)))]})
        if i % 4 != 3:                      # the building's function as a symbol
            out.append({"type": "AP_PPO", "id": _oid("p", i), "beginnt": BASE,
                        "geom": ("position", to_out(shapely.MultiPoint(
                            [shapely.point_on_surface(bshape)]))),
                        "props": [("signaturnummer", "3316"), ("art", "GFK"),
                                  ("dientZurDarstellungVon", Ref(_oid("H", i)))]})
        for k, xy in enumerate(bshape.exterior.coords[:2]):
            v = i * 4 + k
            out.append({"type": "AX_BesondererGebaeudepunkt", "id": _oid("Q", v),
                        "beginnt": BASE, "props": [("punktkennung", f"33{v:010d}")]})
            point = {"type": "AX_PunktortAU", "id": _oid("C", v), "beginnt": BASE,
                     "geom": ("position", to_out(shapely.Point(xy))),
                     "props": [("istTeilVon", Ref(_oid("Q", v)))]}
            if k == 1 and i % 3 == 0:       # a position with its own srsName
                point["pos_srs"] = "urn:adv:crs:ETRS89_UTM32" if to_out is _same else None
            out.append(point)
        if i % 20 == 0:                     # a height-only position (DHHN)
            out.append({"type": "AX_PunktortAU", "id": _oid("a", i), "beginnt": BASE,
                        "geom": ("position", 40.0 + (i % 700) / 10), "pos_srs": HEIGHT_URN,
                        "props": [("istTeilVon", Ref(_oid("Q", i * 4)))]})
    return out + _further(city, i, gid, beginnt, to_out, building)


def _xid(slot, j):
    """Id of the ``j``-th object of the further type in ``slot`` (see :func:`_further`)."""
    return _oid("X", slot * 20_000_000 + j)


_STELLE = {"AX_Dienststelle_Schluessel": {"land": "05", "stelle": "1170"}}


def _festpunkt(city, i, poly, name):
    """What a Lage- or Schwerefestpunkt carries (as the corpus's Rheinland-Pfalz portion)."""
    return [("punktkennung", f"4{int(poly.centroid.x) // 1000:03d}{i:06d}"),
            ("gemeinde", {"AX_Gemeindekennzeichen": {"land": "05", "regierungsbezirk": "1",
                                                     "kreis": city.kreis, "gemeinde": "000"}}),
            ("gemarkung", {"AX_Gemarkung_Schluessel": {
                "land": "05", "gemarkungsnummer": city.parcels["gemaschl"].iat[i][2:]}}),
            ("katasteramt", _STELLE), ("land", {"AX_Bundesland_Schluessel": {"land": "05"}}),
            ("darstellungshinweis", "true"), ("nameLagebeschreibung", name),
            ("punktvermarkung", "2180")]


def _further(city, i, gid, beginnt, to_out, building):
    """The further types of a real extract (it has 84; the corpus's Rheinland-Pfalz portion
    and Hamburg extract show them with these properties), each at about its real frequency:
    topographic and building points with their Punktorte (AU, AG), survey points with their
    sketches, Festpunkte, streets without house numbers, pseudo numbers, building addresses,
    building parts and lines, terrain edges and slopes, structures, a tower, Bodenschätzung
    pits and sample plots, protection zones, public-law restrictions, blocks, boundaries,
    street labels (AP_LTO) and presentation-only objects (AP_Darstellung). Ids: kind ``X``
    and a slot per type."""
    poly = city.polys[i]
    ring = poly.exterior.coords
    centre = shapely.point_on_surface(poly)
    out = []

    def add(slot, typ, j, props, geom=None, name="position"):
        f = {"type": typ, "id": _xid(slot, j), "beginnt": beginnt, "props": props}
        if geom is not None:
            f["geom"] = (name, to_out(geom))
        out.append(f)
        return f["id"]

    if i % 10 != 9:                                    # 900 per 1,000 parcels, as real ones
        top = add(0, "AX_BesondererTopographischerPunkt", i,
                  [("punktkennung", f"35{i:010d}")])
        add(1, "AX_PunktortAU", i, [("istTeilVon", Ref(top))],
            shapely.Point(centre.x + 1.5, centre.y - 1.0))
    if i % 40 == 0:                                    # a survey point, secured, with sketch
        auf = add(2, "AX_Aufnahmepunkt", i, [("punktkennung", f"36{i:010d}"),
                                             ("zustaendigeStelle", _STELLE),
                                             ("vermarkung_Marke", "2140")])
        add(1, "AX_PunktortAU", 10_000_000 + i, [("istTeilVon", Ref(auf))],
            shapely.Point(ring[0][0] + 2.0, ring[0][1] + 2.0))
        sich = add(3, "AX_Sicherungspunkt", i, [("punktkennung", f"37{i:010d}"),
                                                ("zustaendigeStelle", _STELLE),
                                                ("vermarkung_Marke", "2170")])
        add(4, "AX_Skizze", i, [("istTeilVon", Ref(auf)),
                                ("skizzenname", f"urn:AFIS_Skizze:36{i:010d}"),
                                ("skizzenart", "1000")])
        add(5, "AX_SonstigerVermessungspunkt", i, [
            ("punktkennung", f"38{i:010d}"), ("zustaendigeStelle", _STELLE),
            ("vermarkung_Marke", "2140"), ("art", "TP"), ("hat", Ref(sich))])
    if i % 500 == 59:
        add(6, "AX_Lagefestpunkt", i, _festpunkt(city, i, poly, "Pfeiler und Platte") + [
            ("klassifikation", {"AX_Klassifikation_Lagefestpunkt": {"ordnung": "2000"}}),
            ("funktion", "1000"),
            ("qualitaetsangaben", {"AX_DQFestpunkt": {"ueberwachungsdatum": "1998-01-01"}})])
    if i % 1000 == 61:
        add(7, "AX_Schwerefestpunkt", i, _festpunkt(city, i, poly, "Pfeiler") + [
            ("ordnung", "3000"), ("funktion", "1000"),
            ("qualitaetsangaben", {"AX_DQFestpunkt": {"ueberwachungsdatum": "2003-01-01"}})])
    if i % 20 == 5:
        add(8, "AX_LagebezeichnungOhneHausnummer", i, [("lagebezeichnung", {
            "AX_Lagebezeichnung": {"unverschluesselt": f"Gewann {city.addresses.iat[i, 0]}"}})])
    if i % 25 == 3:                                    # a street name along the boundary
        add(9, "AP_LTO", i, [("art", "Strasse"), ("schriftinhalt", city.addresses.iat[i, 0]),
                             ("signaturnummer", "4107")], shapely.LineString(ring[:2]))
    if i % 30 == 7:
        add(10, "AP_Darstellung", i, [("signaturnummer", "6000"), ("art", "FKT"),
                                      ("dientZurDarstellungVon", Ref(gid))])
    if i % 25 == 11:
        add(11, "AX_Gelaendekante", i, [("artDerGelaendekante", "1220")],
            shapely.LineString(ring[1:3]))
    if i % 60 == 13:
        kliff = add(12, "AX_BoeschungKliff", i, [])
        add(13, "AX_Boeschungsflaeche", i, [("istTeilVon", Ref(kliff))],
            shapely.affinity.scale(poly, 0.3, 0.3))
    if i % 30 == 17:
        add(14, "AX_SonstigesBauwerkOderSonstigeEinrichtung", i,
            [("bauwerksfunktion", "1740")], shapely.LineString(ring[2:4]))
    if i % 80 == 19:
        add(15, "AX_BauwerkImVerkehrsbereich", i, [("bauwerksfunktion", "1810")],
            shapely.affinity.scale(poly, 0.2, 0.2))
    if i % 90 == 23:
        add(16, "AX_BauwerkImGewaesserbereich", i, [("bauwerksfunktion", "2136")],
            shapely.Point(centre.x - 2.0, centre.y + 1.0))
    if i % 300 == 29:
        add(17, "AX_Turm", i, [("bauwerksfunktion", "1001")],
            shapely.Point(centre.x + 3.0, centre.y + 3.0))
    if city.uses[i] == "Landwirtschaft":
        add(18, "AX_GrablochDerBodenschaetzung", i, [
            ("bedeutung", "1100"),
            ("kennziffer", {"AX_KennzifferGrabloch": {
                "land": "05", "nummerierungsbezirk": f"R{i % 1000:03d}",
                "gemarkungsnummer": city.parcels["gemaschl"].iat[i][2:],
                "nummerDesGrablochs": str(1 + i % 9)}})], centre)
        if i % 40 < 4:
            add(19, "AX_MusterLandesmusterUndVergleichsstueck", i, [
                ("merkmal", "1000"), ("nummer", str(1 + i % 99)), ("kulturart", "1000"),
                ("bodenart", "4000"), ("ackerzahlOderGruenlandzahl", str(40 + i % 30))],
                shapely.affinity.scale(poly, 0.5, 0.5))
    if i % 150 == 31:
        add(20, "AX_Schutzzone", i, [("istTeilVon", Ref(_xid(21, 0))), ("zone", "1030")], poly)
    if i % 120 == 37:
        add(22, "AX_BauRaumOderBodenordnungsrecht", i, [
            ("artDerFestlegung", "2610"), ("ausfuehrendeStelle", _STELLE),
            ("name", f"{100000 + i}")], poly)
    if i % 200 == 41:
        add(23, "AX_Denkmalschutzrecht", i, [
            ("artDerFestlegung", "2910"), ("ausfuehrendeStelle", _STELLE),
            ("bezeichnung", f"{30000 + i}")], poly)
    if i % 100 == 47:
        add(24, "AX_Baublock", i, [("baublockbezeichnung", f"{140000 + i // 100}"),
                                   ("art", "2000")], poly)
    if i % 150 == 53:
        add(25, "AX_Gebietsgrenze", i, [("artDerGebietsgrenze", "7106")],
            shapely.LineString(ring[:2]))
    if i % 400 == 67:
        add(26, "AX_SchutzgebietNachNaturUmweltOderBodenschutzrecht", i, [
            ("artDerFestlegung", "1670"), ("ausfuehrendeStelle", _STELLE),
            ("name", f"Landschaftsschutzgebiet {i // 400 + 1}")])
    if building is not None:
        bshape, number = building
        corners = bshape.exterior.coords
        for k in (2, 3):                               # corners on the building's outline
            v = i * 2 + k - 2
            point = add(27, "AX_BesondererGebaeudepunkt", v, [("punktkennung", f"34{v:010d}")])
            add(28, "AX_PunktortAG", v, [("istTeilVon", Ref(point))], shapely.Point(corners[k]))
        if i % 10 == 1:
            add(29, "AX_GeoreferenzierteGebaeudeadresse", i, [
                ("qualitaetsangaben", "1000"), ("land", "05"), ("regierungsbezirk", "1"),
                ("kreis", city.kreis), ("gemeinde", "000"),
                ("strassenschluessel", city.streets[city.addresses.iat[i, 0]]),
                ("hausnummer", number), ("hatAuch", Ref(_oid("L", i)))],
                shapely.centroid(bshape))
        if i % 40 == 7:
            add(30, "AX_LagebezeichnungMitPseudonummer", i, [
                ("lagebezeichnung", {"AX_Lagebezeichnung": {"verschluesselt": {
                    "AX_VerschluesselteLagebezeichnung": {
                        "land": "05", "regierungsbezirk": "1", "kreis": city.kreis,
                        "gemeinde": "000",
                        "lage": city.streets[city.addresses.iat[i, 0]]}}}}),
                ("pseudonummer", number), ("laufendeNummer", "1")])
        if i % 8 == 2:
            add(31, "AX_Bauteil", i, [("bauart", "2610")],
                shapely.affinity.scale(bshape, 0.4, 0.4))
        if i % 6 == 4:
            add(32, "AX_BesondereGebaeudelinie", i, [("beschaffenheit", "1000")],
                shapely.LineString(corners[:2]))
        if i % 9 == 3:
            add(33, "AX_Firstlinie", i, [("art", "3000")],
                shapely.LineString([shapely.centroid(bshape).coords[0],
                                    (corners[0][0] / 2 + corners[1][0] / 2,
                                     corners[0][1] / 2 + corners[1][1] / 2)]))
    return out


def further_catalogue(city):
    """The catalogue objects of the further types: the authority, state, Regierungsbezirk,
    Kreis, the Buchungsblattbezirke, every Flur of every Gemarkung (AX_GemarkungsteilFlur)
    and the water protection area the zones belong to."""
    rows = [("AX_Dienststelle", [("schluessel", _STELLE), ("bezeichnung", "Katasteramt"),
                                 ("stellenart", "1200")]),
            ("AX_Bundesland", [("schluessel", {"AX_Bundesland_Schluessel": {"land": "05"}}),
                               ("bezeichnung", "Nordrhein-Westfalen")]),
            ("AX_Regierungsbezirk", [("schluessel", {"AX_Regierungsbezirk_Schluessel": {
                "land": "05", "regierungsbezirk": "1"}}), ("bezeichnung", "Düsseldorf")]),
            ("AX_KreisRegion", [("schluessel", {"AX_Kreis_Schluessel": {
                "land": "05", "regierungsbezirk": "1", "kreis": city.kreis}}),
                ("bezeichnung", city.spec["gemeinde"])])]
    for k in range(10):
        rows.append(("AX_Buchungsblattbezirk", [
            ("schluessel", {"AX_Buchungsblattbezirk_Schluessel": {"land": "05",
                                                                 "bezirk": f"{3000 + k:04d}"}}),
            ("bezeichnung", f"{city.spec['gemeinde']} {k + 1}")]))
    fluren = sorted(set(zip(city.parcels["gemaschl"], city.parcels["flur"], strict=True)))
    for gem, flur in fluren:
        rows.append(("AX_GemarkungsteilFlur", [
            ("schluesselGesamt", f"{gem}{int(flur):03d}"), ("bezeichnung", f"Flur {int(flur)}"),
            ("schluessel", {"AX_GemarkungsteilFlur_Schluessel": {
                "land": "05", "gemarkung": gem[2:], "gemarkungsteilFlur": f"{int(flur):03d}"}})]))
    out = [{"type": typ, "id": _xid(34, k), "beginnt": BASE, "props": props}
           for k, (typ, props) in enumerate(rows)]
    out.append({"type": "AX_SchutzgebietNachWasserrecht", "id": _xid(21, 0), "beginnt": BASE,
                "props": [("artDerFestlegung", "1510")]})
    return out


# What real extracts carry beyond the facts the importer uses (the corpus files, e.g. the
# Rheinland-Pfalz portion and the Hamburg extract): every object its ``anlass``; parcels,
# points and special boundaries a link to the producer's records (``zeigtAufExternes``);
# Punktorte, land use, rights, valuations, buildings, persons and addresses their lineage
# (``qualitaetsangaben``, ISO 19115 ``gmd:LI_Lineage``); presentation objects their font and
# alignment; and the type's descriptive attributes.
_FDV = {"AX_Flurstueck": "1020", "AX_PunktortTA": "1040", "AX_PunktortAU": "1040",
        "AX_Grenzpunkt": "9190", "AX_BesondereFlurstuecksgrenze": "1050",
        "AX_SonstigesRecht": "1060", "AX_Bodenschaetzung": "1070",
        "AX_GrablochDerBodenschaetzung": "1910", "AX_PunktortAG": "1040"}
_LINEAGE = {"AX_PunktortTA": ("AX_DQPunktort", "Berechnung", "9998"),
            "AX_PunktortAU": ("AX_DQPunktort", "Berechnung", "9998"),
            "AX_PunktortAG": ("AX_DQPunktort", "Berechnung", "9998"),
            "AX_GrablochDerBodenschaetzung": ("AX_DQMitDatenerhebung", "Erhebung", "1200"),
            "AX_SchutzgebietNachWasserrecht": ("AX_DQMitDatenerhebung", "Erhebung", "1200"),
            "AX_Bewertung": ("AX_DQMitDatenerhebung", "Erhebung", "1200"),
            "AX_SonstigesRecht": ("AX_DQMitDatenerhebung", "Erhebung", "1200"),
            "AX_Bodenschaetzung": ("AX_DQMitDatenerhebung", "Erhebung", "1200"),
            "AX_Gebaeude": ("AX_DQMitDatenerhebung", "Erhebung", "1000"),
            "AX_Person": ("AX_DQOhneDatenerhebung", "Erhebung", None),
            "AX_Anschrift": ("AX_DQOhneDatenerhebung", "Erhebung", None),
            **{t: ("AX_DQMitDatenerhebung", "Erhebung", "1200")
               for variants in NUTZUNG_TYPES.values() for t, _ in variants}}
_DESCRIPTIVE = {
    "AX_Flurstueck": [("rechtsbehelfsverfahren", "false")],
    "AX_PunktortTA": [("kartendarstellung", "true")],
    "AX_Grenzpunkt": [("zustaendigeStelle", {"AX_Dienststelle_Schluessel": {
        "land": "05", "stelle": "1170"}})],
    "AX_SonstigesRecht": [("ausfuehrendeStelle", {"AX_Dienststelle_Schluessel": {
        "land": "05", "stelle": "1170"}}), ("bezeichnung", "Baulast")],
    "AX_Bodenschaetzung": [("zustandsstufeOderBodenstufe", "4200"),
                           ("bodenzahlOderGruenlandgrundzahl", "55"),
                           ("entstehungsartOderKlimastufeWasserverhaeltnisse", ["1100", "7000"])],
    "AX_Gebaeude": [("bauweise", "2100"), ("dachform", "3100")]}
_LABEL = [("fontSperrung", "0.0"), ("skalierung", "1.000"),
          ("horizontaleAusrichtung", "zentrisch"), ("vertikaleAusrichtung", "Basis")]


def _lineage(kind, step, source, when):
    lineage = {"gmd:processStep": {"gmd:LI_ProcessStep": {
        "gmd:description": {"gco:CharacterString": step},
        "gmd:dateTime": {"gco:DateTime": when}}}}
    if source:
        lineage["gmd:source"] = {"gmd:LI_Source": {
            "gmd:description": {"gco:CharacterString": source}}}
    return {kind: {"herkunft": {"gmd:LI_Lineage": lineage}}}


def dress(f):
    """``f`` with what real files carry beyond the importer's facts (see above); the facts
    themselves are unchanged."""
    typ = f["type"]
    head = [("anlass", "000000")]
    if typ in _FDV:
        head.append(("zeigtAufExternes", {"AA_Fachdatenverbindung": {
            "art": f"urn:nw:fdv:{_FDV[typ]}",
            "fachdatenobjekt": {"AA_Fachdatenobjekt": {"name": f"{f['beginnt'][:4]}/"
                                                               f"{f['id'][-5:]}-01"}}}}))
    props = list(f.get("props", []))
    if typ == "AP_PTO":
        props[:0] = _LABEL + [("signaturnummer", "4070" if props[0][1] == "ZAE_NEN" else "4050")]
    elif typ == "AX_Grenzpunkt":
        props.append(("zeitpunktDerEntstehung", f["beginnt"][:4]))
    elif typ == "AX_Gebaeude" and f.get("geom") is not None:
        props.insert(0, ("grundflaeche", f"{shapely.area(f['geom'][1]):.0f}"))
    elif typ == "AX_Person" and any(name == "vorname" for name, _ in props) \
            and int(f["id"][-1], 36) % 2:
        props.insert(3, ("geburtsname", NACHNAMEN[int(f["id"][-2:], 36) % len(NACHNAMEN)]))
    props += _DESCRIPTIVE.get(typ, [])
    if typ in _LINEAGE:
        props.append(("qualitaetsangaben", _lineage(*_LINEAGE[typ], f["beginnt"])))
    return {**f, "head": head, "props": props}


def _same(g):
    return g


def write(n, out, version="6.0", seed=1, srs="utm", city="Mülheim", lean=False):
    """Write a Bestandsdatenauszug with ``n`` parcels (``.gz`` compresses).

    Without ``lean`` the extract carries the type mix of a real one (boundary points,
    Punktorte, presentation objects, land use, Bodenschätzung, rights, historical parcels),
    parcels in old and new GML forms, arcs shared by neighbours and positions with their own
    srsName; ``lean`` keeps parcels, buildings, addresses and owners (very large cities).

    Returns a summary dict including ``expected_ownership`` (parcel → rows) and ``arc_of``
    (parcel → {segment: arc midpoint}).
    """
    c = _City(n, seed, city, lean)
    parcels, buildings = c.parcels, c.layers["GebaeudeBauwerk"]
    rng = np.random.default_rng(seed + 1000)
    writer = Writer(version, srs=GK_URN if srs == "gk" else "urn:adv:crs:ETRS89_UTM32",
                    prefix="adv" if version == "7.1" else None, pretty=not lean)
    to_out = _same
    if srs == "gk":
        from pyproj import Transformer

        import importers.crs  # noqa: F401 - grids

        to_gk = Transformer.from_crs(25832, 31466, always_xy=True)

        def to_out(g):
            return shapely.transform(g, lambda xy: np.column_stack(
                to_gk.transform(xy[:, 0], xy[:, 1])))
    owners = _Owners(rng, c.spec["gemeinde"])
    counts = {}
    arc_areas = {}
    vertex_owner = {}
    if not lean:
        for i in range(len(c.polys) - 1, -1, -1):       # the lowest index wins
            for xy in c.polys[i].exterior.coords[:-1]:
                vertex_owner[xy] = i
    with open_output(out) as fh:
        cat = []
        for gem, name in sorted(set(zip(parcels["gemaschl"], parcels["gemarkung"], strict=True))):
            cat.append({"type": "AX_Gemarkung", "id": _oid("G", int(gem[2:])), "beginnt": BASE,
                        "props": [("schluessel", {"AX_Gemarkung_Schluessel": {
                            "land": "05", "gemarkungsnummer": gem[2:]}}), ("bezeichnung", name)]})
        cat.append({"type": "AX_Gemeinde", "id": _oid("M", 1), "beginnt": BASE, "props": [
            ("gemeindekennzeichen", {"AX_Gemeindekennzeichen": {
                "land": "05", "regierungsbezirk": "1", "kreis": c.kreis, "gemeinde": "000"}}),
            ("bezeichnung", c.spec["gemeinde"])]})
        if not lean:
            cat += further_catalogue(c)
        for street, key in c.streets.items():
            cat.append({"type": "AX_LagebezeichnungKatalogeintrag", "id": _oid("K", int(key)),
                        "beginnt": BASE, "props": [
                            ("schluessel", {"AX_VerschluesselteLagebezeichnung": {
                                "land": "05", "regierungsbezirk": "1", "kreis": c.kreis,
                                "gemeinde": "000", "lage": key}}),
                            ("bezeichnung", street)]})
        fh.write(writer._open("AX_Bestandsdatenauszug",
                              'xmlns:wfs="http://www.adv-online.de/namespaces/adv/gid/wfs"'))
        fh.write(writer.enthaelt() + ("" if writer.pretty else "\n"))

        def emit(f):
            fh.write(writer.member(f if lean else dress(f)))
            counts[f["type"]] = counts.get(f["type"], 0) + 1

        for f in cat:
            emit(f)
        bgeoms = buildings.geometry.values
        bld_of_parcel = c.building_of_parcel()
        for i, booking in c.bookings(owners, rng):
            gid = parcels["idflurst"].iat[i]
            area = c.book_area(i)
            if i in c.arcs:
                arc_areas[gid] = area
            number = c.addresses.iat[i, 1]
            emit(c.address(i, BASE, number))
            beginnt = beginnt_of(i)
            emit(c.parcel(i, booking, beginnt, area, to_out))
            b = bld_of_parcel.get(i)
            bshape = shapely.get_geometry(bgeoms[b], 0) if b is not None else None
            if b is not None:
                emit(c.building(i, b, bshape, BASE, to_out))
            if not lean:
                for f in _extras(c, i, gid, beginnt, to_out, vertex_owner,
                                 (bshape, number) if b is not None else None):
                    emit(f)
            if len(owners.features) > 2000:
                for f in owners.features:
                    emit(f)
                owners.features.clear()
        for f in owners.features:
            emit(f)
        fh.write(writer.close_extract())
    return {"out": str(out), "format": f"nas{version.replace('.', '')[:1]}", "parcels": n,
            "objects": sum(counts.values()), "types": counts, "arcs": len(c.arcs),
            "arc_areas": arc_areas, "arc_of": {parcels["idflurst"].iat[i]: a
                                               for i, a in c.arcs.items()},
            "expected_ownership": owners.expected}


def _later(stamp, days):
    """An ISO timestamp ("…Z") ``days`` later."""
    t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") + timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_nba(n, out, version="6.0", seed=1, fraction=0.05, city="Mülheim", lean=False,
              datum="2026-01-16T00:00:00Z", part=(1, 1), sequence=None):
    """An NBA update for the extract of the same ``n``, ``seed`` and ``lean``: a share of the
    parcels get a new version (amtliche Fläche + 1 m²) that re-sends the complete object (its
    booking, address and municipality references included, as real NBA portions do), and as
    many addresses are deleted (not so with ``sequence``). ``part``: (laufende Nummer,
    Gesamtzahl) of the portion.

    ``sequence=(k, size)``: instead of ``fraction``, the k-th (from 0) of daily portions of
    ``size`` parcels each, to be applied in order: disjoint parcels, versions one day apart;
    each parcel comes with new versions of its booking (AX_Buchungsstelle, another laufende
    Nummer), its address (the next house number) and its building where it has one (one
    storey more), as a day's Fortführungen carry them."""
    c = _City(n, seed, city, lean)
    parcels = c.parcels
    rng = np.random.default_rng(seed + 2000)
    update = UPDATE
    if sequence:
        k, size = sequence
        order = rng.permutation(len(parcels))
        pick = set(order[k * size:(k + 1) * size].tolist())
        update, datum = (_later(t, days=k) for t in (UPDATE, datum))
    else:
        pick = set(np.sort(rng.choice(len(parcels), size=max(1, int(len(parcels) * fraction)),
                                      replace=False)).tolist())
    owners = _Owners(np.random.default_rng(seed + 1000), c.spec["gemeinde"])
    writer = Writer(version, prefix="adv" if version == "7.1" else None, pretty=not lean)
    bgeoms = c.layers["GebaeudeBauwerk"].geometry.values
    bld_of_parcel = c.building_of_parcel() if sequence else {}
    replaces, deletes = [], []
    for i, booking in c.bookings(owners, owners.rng):
        mine = list(owners.features)        # parcel i's sheets, bookings, owners
        owners.features.clear()
        if i not in pick:
            continue
        gid = parcels["idflurst"].iat[i]
        new = c.parcel(i, booking, update, c.book_area(i) + 1, _same)
        new["gml_id"] = versioned_id(gid, update)
        replaces.append((new, versioned_id(gid, beginnt_of(i)), False))
        lage = _oid("L", i)
        if not sequence:
            deletes.append(("AX_LagebezeichnungMitHausnummer", versioned_id(lage, BASE)))
            continue
        stelle = next(f for f in mine if f["id"] == booking)
        replaces.append(({**stelle, "beginnt": update, "props": [
            (name, "2" if name == "laufendeNummer" else value)
            for name, value in stelle["props"]]}, versioned_id(booking, BASE), False))
        number = int(re.match(r"\d+", c.addresses.iat[i, 1]).group(0)) + 1
        replaces.append((c.address(i, update, str(number)), versioned_id(lage, BASE), False))
        b = bld_of_parcel.get(i)
        if b is not None:
            replaces.append((c.building(i, b, shapely.get_geometry(bgeoms[b], 0), update, _same,
                                        storeys=1), versioned_id(_oid("H", i), BASE), False))
    if not lean:
        replaces = [(dress(f), old, safe) for f, old, safe in replaces]
    with open_output(out) as fh:
        writer.nba([], replaces, deletes, datum, fh, portion={
            "profilkennung": f"NBA_{c.spec['gemeinde'].split()[0]}",
            "laufendeNummerVonGesamtzahl": part[0], "gesamtzahl": part[1]})
    return {"out": str(out), "format": "nba",
            "replaced": [parcels["idflurst"].iat[i] for i in sorted(pick)],
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

