"""ALKIS NAS importer: GeoInfoDok 6.0 and 7.1, extracts, NBA updates, WFS answers, bare features.

The reader streams with lxml ``iterparse`` and frees every feature after it is converted, so
memory stays bounded whatever the file size. Parsing is safe: no network, no DTD, no entity
expansion (a document with a DOCTYPE is refused), libxml2's limits on text node size stay on.

Every object is stored: typed tables for the types the product uses, a generic table
(attributes as JSONB + geometry) for every other type; owner-group types go to
``kataster_privat``. See DESIGN.md, "NAS import".
"""

from __future__ import annotations

import functools
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from lxml import etree

from importers import crs as crsmod
from importers.base import Batch, ImportSource, Operation
from importers.nas_geometry import (
    GEOMETRY_NAMES,
    GML,
    Context,
    GeometryError,
    HeightOnly,
    local_name,
    to_shapely,
)
from importers.nas_portion import portion_key, read_portion
from importers.sources import open_inputs
from pipeline import kennzeichen
from pipeline.errors import CRSError, SourceError
from pipeline.parallel import in_processes, pipelined
from pipeline.validation.findings import Finding

XLINK = "{http://www.w3.org/1999/xlink}href"
GML_ID = "{" + GML + "}id"
GML_NS = "{http://www.opengis.net/gml"    # start of a GML 3.2 (or 3.1) element's tag
ADV = re.compile(r"^\{http://www\.adv-online\.de/namespaces/adv/gid/(6\.0|7\.1)[^}]*\}")
SUFFIXES = {".xml", ".gml", ".nas"}
SNIFF = 256 * 1024
BATCH = 20_000

CRS_URNS = {
    "urn:adv:crs:ETRS89_UTM32": 25832, "urn:adv:crs:ETRS89_UTM33": 25833,
    "urn:adv:crs:DE_DHDN_3GK2": 31466, "urn:adv:crs:DE_DHDN_3GK3": 31467,
    "urn:adv:crs:DE_DHDN_3GK4": 31468, "urn:adv:crs:DE_DHDN_3GK5": 31469,
}
WEST = {"NW", "BW", "BY", "HE", "NI", "RP", "SL", "SH", "HB", "HH"}
EAST = {"BB", "BE", "MV", "SN", "ST", "TH"}

NUTZUNG = {
    "AX_Wohnbauflaeche", "AX_IndustrieUndGewerbeflaeche", "AX_Halde", "AX_Bergbaubetrieb",
    "AX_TagebauGrubeSteinbruch", "AX_FlaecheGemischterNutzung",
    "AX_FlaecheBesondererFunktionalerPraegung", "AX_SportFreizeitUndErholungsflaeche",
    "AX_Friedhof", "AX_Strassenverkehr", "AX_Weg", "AX_Platz", "AX_Bahnverkehr",
    "AX_Flugverkehr", "AX_Schiffsverkehr", "AX_Landwirtschaft", "AX_Wald", "AX_Gehoelz",
    "AX_Heide", "AX_Moor", "AX_Sumpf", "AX_UnlandVegetationsloseFlaeche", "AX_Fliessgewaesser",
    "AX_Hafenbecken", "AX_StehendesGewaesser", "AX_Meer",
}
CATALOGUES = {"AX_Gemarkung", "AX_Gemeinde", "AX_Dienststelle", "AX_LagebezeichnungKatalogeintrag",
              "AX_Buchungsblattbezirk", "AX_KreisRegion", "AX_Regierungsbezirk", "AX_Bundesland",
              "AX_GemarkungsteilFlur", "AX_Gemeindeteil", "AX_Lagebezeichnung"}
# The owner group ("Eigentümer"): personal and land-register data, kept in kataster_privat.
PRIVATE = {"AX_Person", "AX_Anschrift", "AX_Namensnummer", "AX_Buchungsblatt",
           "AX_Buchungsstelle", "AX_Vertretung", "AX_Verwaltung", "AX_Personengruppe",
           "AX_Benutzer", "AX_Benutzergruppe", "AX_BenutzergruppeMitZugriffskontrolle",
           "AX_BenutzergruppeNBA", "AX_Empfaenger"}
TYPED = {
    "AX_Flurstueck": "kataster.ax_flurstueck",
    "AX_Gebaeude": "kataster.ax_gebaeude",
    "AX_LagebezeichnungMitHausnummer": "kataster.ax_lagebezeichnung",
    "AX_LagebezeichnungOhneHausnummer": "kataster.ax_lagebezeichnung",
    "AX_LagebezeichnungMitPseudonummer": "kataster.ax_lagebezeichnung",
    "AX_Buchungsblatt": "kataster_privat.ax_buchungsblatt",
    "AX_Buchungsstelle": "kataster_privat.ax_buchungsstelle",
    "AX_Namensnummer": "kataster_privat.ax_namensnummer",
    "AX_Person": "kataster_privat.ax_person",
    "AX_Anschrift": "kataster_privat.ax_anschrift",
}
POLYGON_TABLES = {"kataster.ax_flurstueck", "kataster.ax_gebaeude", "kataster.ax_nutzung"}


def table_for(objektart):
    if objektart in TYPED:
        return TYPED[objektart]
    if objektart in NUTZUNG:
        return "kataster.ax_nutzung"
    if objektart in CATALOGUES:
        return "kataster.ax_katalog"
    if objektart in PRIVATE:
        return "kataster_privat.ax_objekt"
    return "kataster.ax_objekt"


def oid(value):
    """The 16-character object id of an ``urn:adv:oid:…`` reference or versioned id."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("urn:adv:oid:"):
        value = value[12:]
    return value[:16]


def code(value):
    """A code value given plainly or as a registry URL (…/AA_Anlassart/010704)."""
    if value is None or not isinstance(value, str):
        return value              # (elements where a code belongs: reported by _batch)
    value = value.strip()
    return value.rsplit("/", 1)[-1] if value.startswith(("http://", "https://")) else value


def timestamp(value, where):
    """ISO timestamp of NAS (``2014-02-14T11:31:00Z``) or a versioned id suffix."""
    if value is None:
        return None
    try:
        return _timestamp(value.strip())
    except ValueError:
        raise SourceError(where, f"invalid timestamp {value.strip()!r}") from None


@functools.lru_cache(maxsize=1 << 16)
def _timestamp(value):
    # Cached: the objects of one update share a handful of times.
    if re.fullmatch(r"\d{8}T\d{6}Z", value):
        value = f"{value[:4]}-{value[4:6]}-{value[6:8]}T{value[9:11]}:{value[11:13]}:{value[13:15]}Z"
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")


# -- generic conversion of a feature element ----------------------------------------------------
def to_value(el):
    """Property element → JSON-like value (text, code, reference, nested dict, list)."""
    href = el.get(XLINK)
    if not len(el):          # no child nodes at all: the common leaf, without building a list
        if href is not None:
            return href.strip()
        return el.text.strip() if el.text else None
    children = [c for c in el if isinstance(c.tag, str)]
    if href is not None and not children:
        return href.strip()
    if not children:
        text = el.text.strip() if el.text else None
        return text
    if len(children) == 1 and \
            local_name(children[0].tag)[:3] in ("AX_", "AA_", "AP_", "AU_", "AG_"):
        return to_dict(children[0])
    return to_dict(el)


def to_dict(el):
    out = {}
    for child in el:
        name = local_name(child.tag)
        if not name:
            continue                                # not an element
        if len(child):
            value = to_value(child)
        else:                                       # a leaf: to_value's first case, inline
            href = child.get(XLINK)
            if href is not None:
                value = href.strip()
            else:
                text = child.text
                value = text.strip() if text else None
        if name in out:
            if not isinstance(out[name], list):
                out[name] = [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out


@dataclass
class Record:
    objektart: str
    gml_id: str
    beginnt: object
    endet: object
    attrs: dict
    geom: object
    srs: object
    src: str
    refs: dict = field(default_factory=dict)


def _srs_of(el, inherited):
    return el.get("srsName") or inherited


def parse_feature(el, default_srs, max_dev, src, line=lambda n: n):
    """One NAS feature element → Record (geometry in the file's CRS, CRS URN alongside).

    ``line`` maps a line of the parsed document to the file's line (pieces of a file).
    """
    objektart = local_name(el.tag)
    full_id = el.get(GML_ID) or ""
    gml_id = full_id[:16]
    where = f"{src}: {objektart} {full_id or '(no gml:id)'}"
    if len(gml_id) != 16:
        raise SourceError(src, f"{objektart} at line {line(el.sourceline)} has no valid gml:id "
                               f"({full_id!r})", hint="NAS object ids have 16 characters")
    attrs, refs = {}, defaultdict(list)
    geom, srs = None, None
    beginnt = endet = None
    for prop in el:
        tag = prop.tag                              # (lxml builds this string on each access)
        if not isinstance(tag, str) or tag.startswith(GML_NS):
            continue                                # gml:identifier, boundedBy
        name = local_name(tag)
        if name == "lebenszeitintervall":
            lz = next(prop.iterdescendants("{*}AA_Lebenszeitintervall"), None)
            if lz is not None:
                b = next(lz.iterchildren("{*}beginnt"), None)
                e = next(lz.iterchildren("{*}endet"), None)
                beginnt = timestamp(b.text if b is not None else None, where)
                endet = timestamp(e.text if e is not None else None, where)
            continue
        children = [c for c in prop if isinstance(c.tag, str)] if len(prop) else []
        first = children[0].tag if children else ""
        if first.startswith(GML_NS):
            g, s = _geometry(children[0], default_srs, max_dev, src, objektart, full_id, name,
                             line, attrs)
            if g is None:
                continue
            if geom is None:
                geom, srs = g, s
            else:
                attrs.setdefault("_weitere_geometrien", []).append(
                    {"property": name, "wkt": shapely.to_wkt(g, rounding_precision=3),
                     "crs": s})
            continue
        href = prop.get(XLINK)
        if href is not None and not children:
            refs[name].append(oid(href) if href.startswith("urn:adv:oid:") else href)
            value = href.strip()                    # what to_value gives for a reference
        elif not children:                          # text (what to_value gives, inline)
            text = prop.text
            value = text.strip() if text else None
        else:
            value = to_value(prop)
        if name in attrs:
            if not isinstance(attrs[name], list):
                attrs[name] = [attrs[name]]
            attrs[name].append(value)
        else:
            attrs[name] = value
    if beginnt is None:
        raise SourceError(src, f"lebenszeitintervall/beginnt is missing (line "
                               f"{line(el.sourceline)})",
                          feature=f"{objektart} {full_id}",
                          hint="every NAS object version needs its start time")
    return Record(objektart, gml_id, beginnt, endet, attrs, geom, srs, src, dict(refs))


def _geometry(gml, default_srs, max_dev, src, objektart, full_id, prop, line, attrs):
    """(shapely geometry, srsName) of a property's GML element, or (None, None) where the
    position is a height (kept in ``attrs["_hoehe"]``)."""
    feature = f"{objektart} {full_id}"
    if local_name(gml.tag) not in GEOMETRY_NAMES:
        raise SourceError(src, f"property {prop} holds gml:{local_name(gml.tag)} at line "
                               f"{line(gml.sourceline)}, which is not a supported geometry",
                          feature=feature, hint="see importers/nas_geometry.py for the forms "
                                                "read; nothing was imported")
    ctx = Context(max_dev)
    try:
        g = to_shapely(gml, max_dev, ctx)
    except HeightOnly as h:
        attrs.setdefault("_hoehe", []).append(
            {"property": prop, "wert": h.value, "crs": h.srs or gml.get("srsName")
             or default_srs})
        return None, None
    except GeometryError as err:
        at = f" at line {line(err.line)}" if err.line else ""
        raise SourceError(src, f"geometry {prop} cannot be read{at}: {err}",
                          feature=feature) from None
    srs = gml.get("srsName") or default_srs
    if ctx.inner_srs:
        if len(ctx.inner_srs) > 1:
            raise SourceError(src, f"geometry {prop} at line {line(gml.sourceline)} mixes "
                                   f"positions in {', '.join(sorted(ctx.inner_srs))}",
                              feature=feature, hint="one geometry needs one coordinate system")
        srs = next(iter(ctx.inner_srs))          # a position's own srsName wins
    return g, srs


# -- typed columns ---------------------------------------------------------------------------------
def _get(attrs, *path):
    v = attrs
    for p in path:
        if isinstance(v, list):
            v = v[0] if v else None
        if not isinstance(v, dict):
            return None
        v = v.get(p)
    if isinstance(v, list):
        v = v[0] if v else None
    return v


def _int(v):
    if isinstance(v, dict):
        return v                  # elements where a value belongs: reported by _batch
    try:
        return int(float(v)) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _num(v):
    if isinstance(v, dict):
        return v
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _key(d, *parts):
    if not isinstance(d, dict):
        return None
    values = [d.get(p) for p in parts]
    return "".join(str(v) for v in values if v is not None) or None


def typed_columns(r):
    a = r.attrs
    t = r.objektart
    if t == "AX_Flurstueck":
        nenner = _get(a, "flurstuecksnummer", "nenner")
        fsk = _get(a, "flurstueckskennzeichen")
        try:                     # what the properties leave out, the key gives (no Flur: NULL)
            key = kennzeichen.parse(fsk)
        except ValueError:
            key = None
        zaehler = _int(_get(a, "flurstuecksnummer", "zaehler"))
        return {"flurstueckskennzeichen": fsk,
                "land": _get(a, "gemarkung", "land") or (key and key.land),
                "gemarkungsnummer": _get(a, "gemarkung", "gemarkungsnummer")
                or (key and key.gemarkung),
                "flurnummer": _int(_get(a, "flurnummer")) if _get(a, "flurnummer") is not None
                else (key and key.flur),
                "zaehler": zaehler if zaehler is not None else (key and key.zaehler),
                "nenner": str(int(nenner)) if nenner and nenner.isdigit() else nenner,
                "amtliche_flaeche": _num(_get(a, "amtlicheFlaeche")),
                "gemeindekennzeichen": _key(a.get("gemeindezugehoerigkeit"), "land",
                                            "regierungsbezirk", "kreis", "gemeinde"),
                "ist_gebucht": r.refs.get("istGebucht"), "weist_auf": r.refs.get("weistAuf"),
                "zeigt_auf": r.refs.get("zeigtAuf")}
    if t == "AX_Gebaeude":
        return {"gebaeudefunktion": _int(code(_get(a, "gebaeudefunktion"))),
                "bezeichnung": _get(a, "name")}
    if t.startswith("AX_Lagebezeichnung") and t in TYPED:
        lage = a.get("lagebezeichnung") or {}
        inner = lage.get("AX_VerschluesselteLagebezeichnung", lage) if isinstance(lage, dict) \
            else {}
        return {"objektart": t, "land": _get(inner, "land"),
                "regierungsbezirk": _get(inner, "regierungsbezirk"),
                "kreis": _get(inner, "kreis"), "gemeinde": _get(inner, "gemeinde"),
                "lage": _get(inner, "lage"),
                "hausnummer": a.get("hausnummer") or a.get("pseudonummer"),
                "unverschluesselt": lage.get("unverschluesselt") if isinstance(lage, dict)
                else None}
    if t == "AX_Buchungsblatt":
        bez = a.get("buchungsblattbezirk") or {}
        return {"buchungsblattkennzeichen": _get(a, "buchungsblattkennzeichen"),
                "land": _get(bez, "land"), "bezirk": _get(bez, "bezirk"),
                "buchungsblattnummer": _get(a, "buchungsblattnummerMitBuchstabenerweiterung"),
                "blattart": _int(code(_get(a, "blattart")))}
    if t == "AX_Buchungsstelle":
        return {"buchungsart": _int(code(_get(a, "buchungsart"))),
                "laufende_nummer": _get(a, "laufendeNummer"),
                "anteil_zaehler": _get(a, "anteil", "zaehler"),
                "anteil_nenner": _get(a, "anteil", "nenner"),
                "ist_bestandteil_von": (r.refs.get("istBestandteilVon") or [None])[0],
                "an": r.refs.get("an")}
    if t == "AX_Namensnummer":
        return {"laufende_nummer_din1421": _get(a, "laufendeNummerNachDIN1421"),
                "anteil_zaehler": _get(a, "anteil", "zaehler"),
                "anteil_nenner": _get(a, "anteil", "nenner"),
                "art_der_rechtsgemeinschaft": _int(code(_get(a, "artDerRechtsgemeinschaft"))),
                "eigentuemerart": _int(code(_get(a, "eigentuemerart"))),
                "ist_bestandteil_von": (r.refs.get("istBestandteilVon") or [None])[0],
                "benennt": (r.refs.get("benennt") or [None])[0]}
    if t == "AX_Person":
        return {"nachname_oder_firma": _get(a, "nachnameOderFirma"), "vorname": _get(a, "vorname"),
                "geburtsname": _get(a, "geburtsname"), "geburtsdatum": _get(a, "geburtsdatum"),
                "anrede": _int(code(_get(a, "anrede"))),
                "akademischer_grad": _get(a, "akademischerGrad"), "hat": r.refs.get("hat")}
    if t == "AX_Anschrift":
        return {"strasse": _get(a, "strasse"), "hausnummer": _get(a, "hausnummer"),
                "postleitzahl": _get(a, "postleitzahlPostzustellung"), "ort": _get(a, "ort_Post"),
                "bestimmungsland": _get(a, "bestimmungsland")}
    if t in CATALOGUES:
        key = None
        for prop in ("schluessel", "gemeindekennzeichen", "schluesselGesamt", "kennung"):
            v = a.get(prop)
            if isinstance(v, dict):
                key = "".join(str(x) for x in v.values() if isinstance(x, str))
                break
            if isinstance(v, str):
                key = v
                break
        return {"objektart": t, "schluessel": key or r.gml_id, "bezeichnung": _get(a, "bezeichnung")}
    return {"objektart": t}


# -- documents ----------------------------------------------------------------------------------------
CONTAINERS = {"featureMember", "member"}
DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.I)


def _check_prolog(path, origin):
    """Refuse DTDs and entity declarations before the parser sees them."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF)
    m = re.search(rb"<[A-Za-z_]", re.sub(rb"<!--.*?-->", b"", head, flags=re.S))
    prolog = head if m is None else re.sub(rb"<!--.*?-->", b"", head, flags=re.S)[:m.start()]
    if DOCTYPE.search(prolog):
        raise SourceError(origin, "the document declares a DTD or entities; refused "
                                  "(NAS files never need them, and they can hide entity-"
                                  "expansion bombs)")


def _refuse_dtd(tree, origin):
    """Refuse a document whose prolog declares a DTD (and so possibly entities), as the parser
    itself saw it: whatever the encoding, the comments or processing instructions before it
    and the length of the prolog. Entities are never expanded; refusing the DTD means no text
    is ever cut at an entity reference either."""
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise SourceError(origin, "the document declares a DTD or entities; refused (NAS files "
                                  "never need them, and they can hide entity-expansion bombs)")


def sniff(path):
    """True if the file looks like NAS (an AdV GID 6.0/7.1 namespace near the start)."""
    import gzip
    import zipfile

    path = Path(path)
    try:
        if path.is_dir():
            return any(sniff(p) for p in sorted(path.rglob("*"))
                       if p.is_file() and p.suffix.lower() in SUFFIXES | {".gz", ".zip"})
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as fh:
                head = fh.read(SNIFF)
        elif path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if Path(n).suffix.lower() in SUFFIXES]
                if not names:
                    return False
                with z.open(names[0]) as fh:
                    head = fh.read(SNIFF)
        elif path.suffix.lower() in SUFFIXES:
            with open(path, "rb") as fh:
                head = fh.read(SNIFF)
        else:
            return False
    except (OSError, EOFError, zipfile.BadZipFile):
        return False
    if b"adv-online.de/namespaces/adv/gid/" in head:
        return True
    # Other encodings (UTF-16) and long prologs: ask the parser for the root's namespaces.
    if path.suffix.lower() in SUFFIXES:
        return any("adv-online.de/namespaces/adv/gid/" in (ns or "")
                   for ns in _root_namespaces(path).values())
    return False


def _root_namespaces(path):
    """The namespace declarations in scope at the root element ({} if unreadable)."""
    try:
        for _event, el in etree.iterparse(str(path), events=("start",), resolve_entities=False,
                                          no_network=True, load_dtd=False, huge_tree=False):
            return dict(el.nsmap)
    except etree.XMLSyntaxError:
        return {}
    return {}


@dataclass
class ParsedOperation:
    kind: str            # delete | replace | update (an update ends the version: ``endet``)
    objektart: str
    target: str          # versioned id (OID + beginnt) or OID
    safe: bool
    src: str
    endet: object = None
    anlass: str | None = None


OPERATIONS = {"Insert", "Delete", "Replace", "Update"}
# What a wfs:Update may set: the end of the version's life, and why.
UPDATE_ENDET = "lebenszeitintervall/AA_Lebenszeitintervall/endet"


def _strip_prefixes(path):
    return "/".join(part.split(":")[-1] for part in (path or "").strip().split("/"))


def _targets(op_el):
    """The ids an operation's filter names: ogc:FeatureId/@fid (GID 6.0) or fes:ResourceId/@rid
    (GID 7.1, WFS 2.0)."""
    ids = [t.get("fid") for t in op_el.iterfind(".//{*}FeatureId")]
    ids += [t.get("rid") for t in op_el.iterfind(".//{*}ResourceId")]
    return [i for i in ids if i]


def _type_name(op_el):
    name = op_el.get("typeName") or op_el.get("typeNames") or ""
    return name.split(":")[-1].strip()


class NasDocument:
    """Streams the objects and update operations of one NAS document."""

    def __init__(self, path, origin, max_dev, piece=None):
        self.path = Path(path)
        self.origin = str(origin)
        self.max_dev = max_dev
        self.piece = piece               # a byte range of the file (see Piece), or all of it
        self.operations = []
        self.portion_date = None
        self.portion = None              # AX_Portionskennung as a dict (NBA), or None
        self.kind = None                 # root element's local name
        self.default_srs = None
        self.counts = defaultdict(int)

    # Only these elements produce events (lxml filters in C, so the thousands of geometry and
    # attribute elements inside a feature cost no Python call).
    EVENT_TAGS = ["{*}featureMember", "{*}member", "{*}Insert", "{*}Replace", "{*}Delete",
                  "{*}Update", "{*}Transaction", "{*}AX_Portionskennung",
                  "{*}AA_Koordinatenreferenzsystemangaben", "{" + GML + "}Envelope"]

    def _line(self, line):
        """The file's line for a line of the parsed document."""
        if line is None or self.piece is None:
            return line
        return self.piece.position_in_file(line, 0)[0]

    def _fail(self, el, message, hint=None):
        raise SourceError(self.origin, f"{message} (line {self._line(el.sourceline)})",
                          hint=hint or "nothing was imported")

    def records(self):
        _check_prolog(self.path, self.origin)
        source = str(self.path) if self.piece is None else _PieceReader(self.piece)
        context = etree.iterparse(
            source, events=("end",), tag=self.EVENT_TAGS, resolve_entities=False,
            no_network=True, load_dtd=False, huge_tree=False, remove_comments=True,
            remove_pis=True)
        found = False
        checked = False
        try:
            for _event, el in context:
                if not checked:          # the parser's own view of the prolog, any encoding
                    _refuse_dtd(el.getroottree(), self.origin)
                    checked = True
                name = local_name(el.tag)
                if name in ("featureMember", "member", "Insert"):
                    parent = el.getparent()
                    if name == "member" and parent is not None and local_name(parent.tag) == "Replace":
                        continue
                    for feature in el:
                        if isinstance(feature.tag, str):
                            found = True
                            yield self._feature(feature)
                    _free(el)
                elif name == "Replace":
                    feature = next((c for c in el if isinstance(c.tag, str)
                                    and local_name(c.tag) != "Filter"), None)
                    targets = _targets(el)
                    if feature is None or len(targets) != 1:
                        self._fail(el, "Replace needs one feature and one ogc:FeatureId or "
                                       "fes:ResourceId")
                    self.operations.append(ParsedOperation(
                        "replace", local_name(feature.tag), targets[0],
                        el.get("safeToIgnore") == "true", self.origin))
                    found = True
                    yield self._feature(feature)
                    _free(el)
                elif name == "Delete":
                    self.operations.extend(self._delete(el))
                    found = True
                    _free(el)
                elif name == "Update":
                    self.operations.extend(self._update(el))
                    found = True
                    _free(el)
                elif name == "Transaction":
                    for child in el:
                        if isinstance(child.tag, str) and local_name(child.tag) not in OPERATIONS:
                            self._fail(child, f"the update holds an operation "
                                              f"{local_name(child.tag)} that is not understood",
                                       hint="NBA operations are Insert, Delete, Replace and "
                                            "Update; nothing was imported")
                elif name == "Envelope":
                    if self.default_srs is None and el.get("srsName"):
                        self.default_srs = el.get("srsName")
                elif name == "AA_Koordinatenreferenzsystemangaben":
                    std = el.find("{*}standard")
                    ref = el.find("{*}crs")
                    if std is not None and (std.text or "").strip().lower() in ("true", "1") \
                            and ref is not None:
                        self.default_srs = ref.get(XLINK) or self.default_srs
                elif name == "AX_Portionskennung":
                    self.portion = {local_name(c.tag): (c.text or "").strip()
                                    for c in el if isinstance(c.tag, str)}
                    if self.portion.get("datum"):
                        self.portion_date = timestamp(self.portion["datum"], self.origin)
            root = context.root
            if root is not None:
                _refuse_dtd(root.getroottree(), self.origin)
            self.kind = local_name(root.tag) if root is not None else None
            if not found and root is not None and root.get(GML_ID) and ADV.match(root.tag):
                yield self._feature(root)     # a bare feature: the element is the document
        except etree.XMLSyntaxError as err:
            line, col = err.position if err.position else (err.lineno, 0)
            if self.piece is not None:
                line, col = self.piece.position_in_file(line, col)
            msg = re.sub(r", line \d+, column \d+$", "", err.msg)   # (said once, in front)
            raise SourceError(self.origin, f"not well-formed XML at line {line}, column {col}: "
                                           f"{msg}", hint="the file is truncated or damaged; "
                                                             "nothing was imported") from None
        finally:
            if not isinstance(source, str):
                source.close()

    def _named(self, el):
        """(type, target ids) of a Delete or Update; both are required."""
        objektart, targets = _type_name(el), _targets(el)
        if not objektart or not targets:
            self._fail(el, f"{local_name(el.tag)} needs a typeName (or typeNames) and at least one "
                           "ogc:FeatureId or fes:ResourceId")
        return objektart, targets

    def _delete(self, el):
        objektart, targets = self._named(el)
        return [ParsedOperation("delete", objektart, t, el.get("safeToIgnore") == "true", self.origin)
                for t in targets]

    def _update(self, el):
        """wfs:Update ends a version's life: it sets ``endet`` (and may give the ``anlass``)."""
        objektart, targets = self._named(el)
        endet = anlass = None
        for prop in el.iterfind("{*}Property"):
            ref = prop.find("{*}Name")
            if ref is None:
                ref = prop.find("{*}ValueReference")
            value = prop.find("{*}Value")
            path = _strip_prefixes(ref.text if ref is not None else "")
            text = (value.text or "").strip() if value is not None else ""
            if path.endswith(UPDATE_ENDET) or path == "endet":
                endet = timestamp(text, f"{self.origin}: Update at line "
                                        f"{self._line(prop.sourceline)}")
            elif path == "anlass":
                anlass = code(text) or None
            else:
                self._fail(prop, f"Update sets {path or '(no property name)'}, which is not "
                                 "understood (only lebenszeitintervall/endet and anlass are)")
        if endet is None:
            self._fail(el, "Update without a new lebenszeitintervall/endet")
        return [ParsedOperation("update", objektart, t, el.get("safeToIgnore") == "true", self.origin,
                          endet=endet, anlass=anlass) for t in targets]

    def _feature(self, el):
        record = parse_feature(el, self.default_srs, self.max_dev, self.origin, self._line)
        self.counts[record.objektart] += 1
        return record


def _free(el):
    el.clear()
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


# -- pieces: large documents parsed in several processes ---------------------------------------------
CONTAINER_START = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?(?:featureMember|member))[\s>]")
HEAD_MAX = 1 << 20


@dataclass(frozen=True)
class Piece:
    """A byte range of a NAS file that parses as a document of its own.

    A piece after the first is preceded by ``head`` (the file's bytes up to its first feature
    container: declaration, root element, namespaces, envelope); a piece before the last is
    followed by ``tail`` (the closing tags of the elements the head leaves open). Ranges start
    at a container's start tag, so every feature lies in exactly one piece.
    """

    origin: str
    path: str
    start: int
    end: int
    head: bytes = b""
    tail: bytes = b""

    def position_in_file(self, line, col):
        """Line and column in the file for a position reported in this piece's document."""
        head_lines = self.head.count(b"\n")
        if self.head and line <= head_lines:
            return line, col                                # the head is the file's own head
        with open(self.path, "rb") as fh:
            before = _count_lines(fh, self.start) if self.head else 0
            fh.seek(max(0, self.start - HEAD_MAX))
            ahead = fh.read(self.start - max(0, self.start - HEAD_MAX))
            body = fh.read(self.end - self.start)
        line -= head_lines
        body_lines = body.count(b"\n")
        if line > body_lines + 1:                           # in the tail: where the range ends
            return before + body_lines + 1, len(body) - body.rfind(b"\n")
        if line == 1 and self.head:                         # shares a line with the head's end
            col += (len(ahead) - ahead.rfind(b"\n") - 1) - \
                (len(self.head) - self.head.rfind(b"\n") - 1)
        return before + line, col


def _count_lines(fh, end):
    fh.seek(0)
    n, left = 0, end
    while left > 0:
        chunk = fh.read(min(left, 1 << 24))
        if not chunk:
            break
        n += chunk.count(b"\n")
        left -= len(chunk)
    return n


class _PieceReader:
    """File-like object over head + byte range + tail (what lxml's iterparse reads)."""

    def __init__(self, piece):
        self.parts = [piece.head, None, piece.tail]
        self.fh = open(piece.path, "rb")
        self.fh.seek(piece.start)
        self.left = piece.end - piece.start

    def read(self, size=-1):
        size = 1 << 16 if size is None or size < 0 else size
        while self.parts:
            part = self.parts[0]
            if part is None:                                    # the range in the file
                data = self.fh.read(min(size, self.left)) if self.left > 0 else b""
                self.left -= len(data)
                if data:
                    return data
            elif part:
                self.parts[0] = part[size:]
                return part[:size]
            self.parts.pop(0)
        return b""

    def close(self):
        self.fh.close()


def _open_elements(head):
    """The elements ``head`` leaves open, outermost first (parsed with the safe settings)."""
    parser = etree.XMLPullParser(events=("start", "end"), resolve_entities=False,
                                 no_network=True, load_dtd=False)
    parser.feed(head)
    stack = []
    for event, el in parser.read_events():
        if event == "start":
            stack.append(el)
        else:
            stack.pop()
    return stack


def plan_pieces(origin, path, piece_bytes):
    """Cut a large extract (features in ``featureMember``/``member`` of a FeatureCollection)
    into pieces of about ``piece_bytes``; anything else is one piece.

    The cuts are made only where they are certain to fall between two features: before a
    container's start tag (with the container's prefix as in the head) that follows the
    closing tag of the previous one, in a document body without comments, CDATA sections or
    processing instructions (which could hide such text). NBA update files stay whole. The
    file is read in blocks (not mapped, which would count the whole file as our memory).
    """
    path = Path(path)
    size = path.stat().st_size
    whole = [Piece(str(origin), str(path), 0, size)]
    if size < 2 * piece_bytes:
        return whole
    with open(path, "rb") as fh:
        start = fh.read(HEAD_MAX)
        first = CONTAINER_START.search(start)
        if first is None or b":" not in first.group(1):
            return whole
        head = start[:first.start()]
        try:
            stack = _open_elements(head)
        except etree.XMLSyntaxError:
            return whole                   # the serial parse reports it with its position
        if len(stack) < 1 or local_name(stack[-1].tag) != "FeatureCollection" or \
                local_name(stack[0].tag) not in ("AX_Bestandsdatenauszug", "FeatureCollection"):
            return whole
        if _find(fh, (b"<!", b"<?"), first.start()) >= 0:
            return whole
        tag = b"<" + first.group(1)
        closing = b"</" + first.group(1) + b">"
        starts = [0]
        pos = first.start() + piece_bytes
        while pos < size - piece_bytes // 2:
            cut = _find(fh, (tag,), pos)
            while cut >= 0:
                fh.seek(max(0, cut - 256))
                around = fh.read(cut - max(0, cut - 256) + len(tag) + 1)
                if around[-1:] in (b">", b" ", b"\t", b"\n", b"\r") and \
                        around[:-len(tag) - 1].rstrip().endswith(closing):
                    break
                cut = _find(fh, (tag,), cut + 1)
            if cut < 0:
                break
            starts.append(cut)
            pos = cut + piece_bytes
    if len(starts) == 1:
        return whole
    tail = "".join(f"</{e.prefix + ':' if e.prefix else ''}{local_name(e.tag)}>"
                   for e in reversed(stack)).encode()
    ends = starts[1:] + [size]
    last = len(starts) - 1
    return [Piece(str(origin), str(path), a, b, head if k else b"", tail if k < last else b"")
            for k, (a, b) in enumerate(zip(starts, ends, strict=True))]


def _find(fh, patterns, start, block=1 << 24):
    """Offset of the first of ``patterns`` at or after ``start`` in the file, or -1."""
    overlap = max(map(len, patterns)) - 1
    pos = start
    while True:
        fh.seek(pos)
        data = fh.read(block)
        hits = [h for h in (data.find(p) for p in patterns) if h >= 0]
        if hits:
            return pos + min(hits)
        if len(data) < block:
            return -1
        pos += len(data) - overlap


@dataclass
class PieceResult:
    document: NasDocument
    encoded: list
    findings: list
    transformations: set
    kept: Counter


def encode_piece(piece, max_dev, forced, encoder):
    """Parse one piece and encode its batches (runs in a worker process)."""
    doc = NasDocument(piece.path, piece.origin, max_dev, piece=piece)
    findings, transformations, kept = [], set(), Counter()
    encoded = [encoder.encode(b)
               for b in _batches([doc], forced, findings, transformations, kept)]
    return PieceResult(doc, [e.portable() for e in encoded if e is not None], findings,
                       transformations, kept)


def _batches(documents, forced, findings, transformations, kept):
    """Batches of up to BATCH records per table from the documents' records."""
    pending = defaultdict(list)
    for doc in documents:
        for record in doc.records():
            table = table_for(record.objektart)
            pending[table].append(record)
            if len(pending[table]) >= BATCH:
                yield _batch(table, pending.pop(table), forced, findings, transformations, kept)
    for table, records in pending.items():
        yield _batch(table, records, forced, findings, transformations, kept)


# -- CRS -------------------------------------------------------------------------------------------------
def crs_of(srs, record, forced):
    """(NamedCRS, finding or None) for a record's geometry: ``--srs``, its srsName, or the
    state in its object id."""
    if forced:
        return crsmod.NamedCRS(f"EPSG:{forced}", "map", forced), None
    if srs:
        named = crsmod.named_crs(srs)
        if named is None:
            raise CRSError(record.src, f"unknown srsName {srs.strip()!r}",
                           feature=f"{record.objektart} {record.gml_id}",
                           hint="map it to an EPSG code, or give --srs")
        return named, None
    state = record.gml_id[2:4]
    if state in WEST:
        epsg = 25832
    elif state in EAST:
        epsg = 25833
    else:
        raise CRSError(record.src, f"{record.objektart} {record.gml_id} has no srsName and its "
                                   "id names no German state", hint="give --srs")
    return crsmod.NamedCRS(f"EPSG:{epsg}", "map", epsg), Finding(
        "crs.assumed", record.gml_id,
        f"{record.objektart} {record.gml_id}: geometry without srsName; "
        f"assumed EPSG:{epsg} from the state in its id ({state})")


# Documents that may legitimately hold nothing (an empty NBA portion, an empty WFS answer).
NAS_CONTAINERS = {"AX_Bestandsdatenauszug", "AX_NutzerbezogeneBestandsdatenaktualisierung_NBA",
                  "AX_Fortfuehrungsergebnis", "FeatureCollection", "Transaction"}


def check_documents(documents):
    """A document without objects or operations must at least be a NAS container: anything else
    (a producer's protocol, a report) is refused rather than committed as an empty run."""
    for doc in documents:
        if sum(doc.counts.values()) or doc.operations or doc.kind in NAS_CONTAINERS:
            continue
        raise SourceError(doc.origin, f"holds no NAS objects or update operations; its root "
                                      f"element is {doc.kind or 'missing'}, not a NAS "
                                      "Bestandsdatenauszug, NBA or WFS answer",
                          hint="is it a protocol or report of the producer? nothing was "
                               "imported")


def operations_of(documents):
    """The update operations of the documents as data for the core (``base.Operation``), in
    document order; a delete or update ends its version at the portion's date unless it gives
    its own ``endet``."""
    out = []
    for doc in documents:
        for op in doc.operations:
            table, gml_id, beginnt = _target(op)
            out.append(Operation(op.kind, op.objektart, table, op.target, gml_id, beginnt,
                                 op.safe, op.src, op.endet if op.endet is not None
                                 else doc.portion_date, op.anlass))
    return out


def kept_findings(kept):
    """One ``crs.kept`` info finding per CRS name whose positions were kept as written."""
    return [Finding("crs.kept", name,
                    f"{n} positions in {name} kept with their original coordinates as "
                    "attributes (_originale_position, _hoehe), without a map geometry: the "
                    "system is a height system or cannot be transformed reliably to "
                    "EPSG:25832")
            for name, n in sorted(kept.items())]


# -- the importer -----------------------------------------------------------------------------------
class NasImporter:
    """Importer ``nas``: ALKIS NAS (GID 6.0 and 7.1) extracts, NBA updates and WFS answers."""

    name = "nas"

    def detect(self, path):
        return sniff(path)

    def open(self, paths, options, config):
        files, unpacked = open_inputs(paths, SUFFIXES, config)
        # NBA portions are applied in delivery and part order (files without one first).
        portions = {}
        for origin, path in unpacked.files:
            try:
                portions[path] = read_portion(path)
            except (OSError, EOFError, ValueError) as err:
                unpacked.close()
                raise SourceError(origin, f"cannot be read: {err}",
                                  hint="nothing was imported") from None
        unpacked.files.sort(key=lambda op: (portions[op[1]] is not None,
                                            portion_key(portions[op[1]]) if portions[op[1]]
                                            else ("", "", -1)))
        max_dev = config["tolerances.arc_max_deviation"]
        forced = None
        if options.get("srs"):
            forced = crsmod.parse_crs(options["srs"], "--srs").to_epsg()
        findings, documents, transformations, kept = [], [], set(), Counter()
        operations = []

        def batches():
            try:
                documents.extend(NasDocument(path, origin, max_dev)
                                 for origin, path in unpacked.files)
                yield from _batches(documents, forced, findings, transformations, kept)
                check_documents(documents)
                operations.extend(operations_of(documents))
                findings.extend(kept_findings(kept))
            finally:
                unpacked.close()

        workers = config["import.workers"] or len(os.sched_getaffinity(0))
        piece_bytes = config["import.piece_bytes"]

        def encoded(encoder):
            """Encoded batches: large extracts are cut into pieces and the files of a large
            delivery go whole; worker processes (one per core) parse and encode them. A
            delivery under twice the piece size is read here (starting workers costs ~1 s)."""
            pieces = [piece for origin, path in unpacked.files
                      for piece in plan_pieces(origin, path, piece_bytes)]
            total = sum(piece.end - piece.start for piece in pieces)
            if workers < 2 or len(pieces) < 2 or total < 2 * piece_bytes:
                yield from pipelined(batches(), encoder.encode)
                return
            try:
                for result in in_processes(encode_piece, pieces, workers,
                                           max_dev=max_dev, forced=forced, encoder=encoder):
                    documents.append(result.document)
                    findings.extend(result.findings)
                    transformations.update(result.transformations)
                    kept.update(result.kept)
                    yield from result.encoded
                check_documents(documents)
                operations.extend(operations_of(documents))
                findings.extend(kept_findings(kept))
            finally:
                unpacked.close()

        source = ImportSource(
            importer=self.name, files=files, source="nas", versioned=True, batches=batches,
            findings=findings, tables=sorted(set(TYPED.values()) | {
                "kataster.ax_nutzung", "kataster.ax_katalog", "kataster.ax_objekt",
                "kataster_privat.ax_objekt"}),
            options={"srs": options.get("srs"), "ignored_files": unpacked.ignored,
                     "portions": [(str(origin), portions[path]) for origin, path in unpacked.files
                                  if portions[path] is not None]},
            cleanup=unpacked.close, encoded=encoded, operations=operations,
            steps=("check_operations", "apply_operations", "lage_text", "ownership"))
        source.describe_transformation = lambda: "; ".join(sorted(transformations)) or None
        return source


def _batch(table, records, forced, findings, transformations, kept):
    geoms = np.empty(len(records), dtype=object)
    by_crs = defaultdict(list)
    for i, r in enumerate(records):
        for h in r.attrs.get("_hoehe", ()):
            kept[h.get("crs") or "(no srsName)"] += 1
        if r.geom is None:
            continue
        named, finding = crs_of(r.srs, r, forced)
        if finding:
            findings.append(finding)
        if named.kind != "map":
            # Kept as written, never placed at its raw coordinates.
            r.attrs["_originale_position"] = {"crs": named.name, "wkt": shapely.to_wkt(
                r.geom, rounding_precision=-1)}
            kept[named.name] += 1
            continue
        by_crs[named].append(i)
    for named, idx in by_crs.items():
        src = records[idx[0]].src
        crs = crsmod.parse_crs(f"EPSG:{named.epsg}", src)
        tr, description = crsmod.transformer(crs, src)
        if named.name.startswith("urn:adv:crs:") and named.epsg in crsmod.DHDN_GK:
            description = f"{named.name} as {description}"
        transformations.add(description)
        raw = np.array([records[i].geom for i in idx], dtype=object)
        if named.lat_lon:
            raw = shapely.transform(raw, lambda xy: xy[:, ::-1])
        geoms[idx] = crsmod.to_target(raw, tr)
        crsmod.check_extent(geoms[idx], raw,
                            lambda k, idx=idx: f"{records[idx[k]].objektart} "
                                               f"{records[idx[k]].gml_id}",
                            src, named.name, named.epsg)
    rows = []
    for r, g in zip(records, geoms, strict=True):
        if r.geom is not None and g is None:
            r = Record(r.objektart, r.gml_id, r.beginnt, r.endet, r.attrs, None, r.srs, r.src,
                       r.refs)
        row = {"gml_id": r.gml_id, "beginnt": r.beginnt.isoformat(),
               "endet": r.endet.isoformat() if r.endet is not None else None,
               "attrs": r.attrs, "src": f"{r.src}: {r.objektart} {r.gml_id}"}
        typed = typed_columns(r) if table != "kataster.ax_objekt" and \
            table != "kataster_privat.ax_objekt" else {"objektart": r.objektart}
        for column, value in typed.items():
            if isinstance(value, dict) or (isinstance(value, list) and column not in LISTS):
                raise SourceError(r.src, f"the property for {column} holds elements where a "
                                         "single value belongs", feature=f"{r.objektart} "
                                                                          f"{r.gml_id}",
                                  hint="the file does not follow the NAS schema there; "
                                       "nothing was imported")
        row.update(typed)
        if table in POLYGON_TABLES or table in ("kataster.ax_objekt",
                                                "kataster_privat.ax_objekt"):
            row["geom"] = g
        rows.append(row)
    frame = pd.DataFrame(rows)
    if table in POLYGON_TABLES:
        polygonal = np.isin(shapely.get_type_id(frame["geom"].to_numpy()), [3, 6, -1]) | \
            frame["geom"].isna().to_numpy()
        if not polygonal.all():
            bad = frame.index[~polygonal][0]
            raise SourceError(records[bad].src, "geometry is not a polygon",
                              feature=f"{records[bad].objektart} {records[bad].gml_id}")
    if table == "kataster.ax_flurstueck":
        ids, geoms_ = frame["gml_id"].to_numpy(), frame["geom"].to_numpy()
        from pipeline.validation import checks

        findings.extend(checks.empty_geometries(ids, geoms_))
        findings.extend(checks.invalid_geometries(ids, geoms_))
    return Batch(table, records[0].objektart, frame)


LISTS = {"ist_gebucht", "weist_auf", "zeigt_auf", "an", "hat"}   # typed columns of text[]


def _target(op):
    """(table, gml_id, beginnt) an operation names."""
    fid = op.target or ""
    beginnt = timestamp(fid[16:], op.src) if len(fid) > 16 else None
    return table_for(op.objektart), fid[:16], beginnt
