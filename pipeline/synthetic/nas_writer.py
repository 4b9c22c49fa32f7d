"""Writing NAS documents (GeoInfoDok 6.0 or 7.1): Bestandsdatenauszug and NBA updates.

Used by the generator and by tests that need NAS input. Features are plain dicts:

``{"type": "AX_Flurstueck", "id": "DENW36AL00000001", "beginnt": "2020-01-01T00:00:00Z",
"props": [("flurstueckskennzeichen", "05…"), ("gemarkung", {"AX_Gemarkung_Schluessel":
{"land": "05", "gemarkungsnummer": "3096"}}), ("istGebucht", Ref("DENW36AL0000000B"))],
"geom": ("position", polygon), "arcs": [...]}``

Optional ``"head"`` properties follow ``modellart`` (``anlass``, ``zeigtAufExternes``, as real
files write them). Geometry is written like real extracts: rings of one ``gml:Curve`` per
boundary segment, with ``gml:Arc`` segments where the feature lists arcs (three points each).
With ``pretty`` the document is indented with tabs, one element per line, as the real files of
the corpus are (ibR DSIX and DHK indent with tabs, AED-SICAD with spaces); without it, compact
(the lean mode's files for very large cities).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import shapely

NS = {"6.0": "http://www.adv-online.de/namespaces/adv/gid/6.0",
      "7.1": "http://www.adv-online.de/namespaces/adv/gid/7.1"}
GML = "http://www.opengis.net/gml/3.2"
XLINK = "http://www.w3.org/1999/xlink"
GMD = "http://www.isotc211.org/2005/gmd"
GCO = "http://www.isotc211.org/2005/gco"
_TAG = re.compile(r"(<[^>]+>)")


def pretty(xml, depth):
    """``xml`` (a fragment of our own writing: no mixed content) one element per line,
    indented with tabs from ``depth``; leaves keep their text on their line."""
    out = []
    level = depth
    opened = False                  # the last tag was a start tag (a leaf closes on its line)
    parts = _TAG.split(xml)
    for k in range(1, len(parts), 2):
        tag = parts[k]
        if tag[1] == "/":
            level -= 1
            if not opened:
                out.append("\n" + "\t" * level)
            out.append(tag)
            opened = False
        elif tag[-2] == "/":
            out.append("\n" + "\t" * level + tag)
            opened = False
        else:
            out.append("\n" + "\t" * level + tag)
            level += 1
            opened = True
        text = parts[k + 1]
        if text and not text.isspace():
            out.append(text)
    return "".join(out)


@dataclass(frozen=True)
class Ref:
    """An xlink reference to another object (``urn:adv:oid:…``)."""

    oid: str


def _fmt(v):
    return f"{v:.3f}"


def _poslist(coords):
    return " ".join(f"{_fmt(x)} {_fmt(y)}" for x, y in coords)


class Writer:
    def __init__(self, version="6.0", srs="urn:adv:crs:ETRS89_UTM32", prefix=None,
                 pretty=False):
        self.version = version
        self.pretty = pretty
        self.srs = srs
        self.p = (prefix + ":") if prefix else ""
        self._gid = 0

    def _id(self):
        self._gid += 1
        return f"G{self._gid}"

    def ring(self, coords, arcs):
        """A gml:Ring of one curve per segment; ``arcs`` maps a segment start index to a
        middle point, making that segment a gml:Arc."""
        out = []
        n = len(coords) - 1
        for i in range(n):
            a, b = coords[i], coords[i + 1]
            if i in arcs:
                seg = f"<gml:Arc><gml:posList>{_poslist([a, arcs[i], b])}</gml:posList></gml:Arc>"
            else:
                seg = (f"<gml:LineStringSegment><gml:posList>{_poslist([a, b])}</gml:posList>"
                       "</gml:LineStringSegment>")
            out.append(f'<gml:curveMember><gml:Curve gml:id="{self._id()}"><gml:segments>{seg}'
                       "</gml:segments></gml:Curve></gml:curveMember>")
        return "<gml:Ring>" + "".join(out) + "</gml:Ring>"

    def _linear_ring(self, coords):
        return f"<gml:LinearRing><gml:posList>{_poslist(coords)}</gml:posList></gml:LinearRing>"

    def geometry(self, geom, arcs=None, srs=True, form="patches", pos_srs=None):
        """GML for ``geom``. ``form`` for surfaces: ``patches`` (GML 3.2, rings of curves, as
        current extracts write them), ``polygonPatches`` (the GML 3.1 form older extracts use)
        or ``polygon`` (gml:Polygon with LinearRing/posList). ``pos_srs``: a srsName written on
        the position itself (a point with its own CRS). A float is a height-only position."""
        arcs = arcs or {}
        srs_attr = f' srsName="{self.srs}"' if srs and self.srs and not pos_srs else ""
        if isinstance(geom, float):
            return (f'<gml:Point gml:id="{self._id()}"><gml:pos srsName="{pos_srs}" '
                    f'srsDimension="1">{geom:.3f}</gml:pos></gml:Point>')
        kind = geom.geom_type
        if kind in ("Polygon", "MultiPolygon") and form == "polygon" and kind == "Polygon":
            holes = "".join(f"<gml:interior>{self._linear_ring(r.coords)}</gml:interior>"
                            for r in geom.interiors)
            return (f'<gml:Polygon gml:id="{self._id()}"{srs_attr}><gml:exterior>'
                    f"{self._linear_ring(geom.exterior.coords)}</gml:exterior>{holes}"
                    "</gml:Polygon>")
        if kind in ("Polygon", "MultiPolygon"):
            patches = []
            for k, poly in enumerate(shapely.get_parts(geom)):
                ext = self.ring(list(poly.exterior.coords), arcs.get(k, {}))
                holes = "".join(f"<gml:interior>{self.ring(list(r.coords), {})}</gml:interior>"
                                for r in poly.interiors)
                patches.append(f"<gml:PolygonPatch><gml:exterior>{ext}</gml:exterior>{holes}"
                               "</gml:PolygonPatch>")
            container = "polygonPatches" if form == "polygonPatches" else "patches"
            return (f'<gml:Surface gml:id="{self._id()}"{srs_attr}><gml:{container}>'
                    + "".join(patches) + f"</gml:{container}></gml:Surface>")
        if kind == "Point":
            own = f' srsName="{pos_srs}"' if pos_srs else ""
            return (f'<gml:Point gml:id="{self._id()}"{srs_attr}><gml:pos{own}>{_fmt(geom.x)} '
                    f"{_fmt(geom.y)}</gml:pos></gml:Point>")
        if kind == "LineString":
            return (f'<gml:LineString gml:id="{self._id()}"{srs_attr}><gml:posList>'
                    f"{_poslist(geom.coords)}</gml:posList></gml:LineString>")
        if kind == "MultiPoint":               # as presentation objects (AP_PPO) write them
            members = "".join(f'<gml:pointMember><gml:Point gml:id="{self._id()}"><gml:pos>'
                              f"{_fmt(pt.x)} {_fmt(pt.y)}</gml:pos></gml:Point></gml:pointMember>"
                              for pt in shapely.get_parts(geom))
            return f'<gml:MultiPoint gml:id="{self._id()}"{srs_attr}>{members}</gml:MultiPoint>'
        if kind == "MultiLineString":          # as gml:MultiCurve of curves (AP_LPO)
            members = "".join(f'<gml:curveMember><gml:Curve gml:id="{self._id()}"><gml:segments>'
                              f"<gml:LineStringSegment><gml:posList>{_poslist(line.coords)}"
                              "</gml:posList></gml:LineStringSegment></gml:segments></gml:Curve>"
                              "</gml:curveMember>" for line in shapely.get_parts(geom))
            return f'<gml:MultiCurve gml:id="{self._id()}"{srs_attr}>{members}</gml:MultiCurve>'
        raise ValueError(f"cannot write {kind}")

    def value(self, name, v):
        p = "" if ":" in name else self.p          # gmd:/gco: metadata keep their prefix
        if isinstance(v, Ref):
            return f'<{p}{name} xlink:href="urn:adv:oid:{v.oid}"/>'
        if isinstance(v, dict):
            inner = "".join(self.value(k, x) for k, x in v.items())
            return f"<{p}{name}>{inner}</{p}{name}>"
        if isinstance(v, (list, tuple)):
            return "".join(self.value(name, x) for x in v)
        return f"<{p}{name}>{escape(str(v))}</{p}{name}>"

    def feature(self, f, srs=True):
        p = self.p
        fid = f.get("gml_id", f["id"])
        parts = [f'<{p}{f["type"]} gml:id="{fid}">',
                 f'<gml:identifier codeSpace="http://www.adv-online.de/">urn:adv:oid:{fid}'
                 "</gml:identifier>",
                 f"<{p}lebenszeitintervall><{p}AA_Lebenszeitintervall><{p}beginnt>{f['beginnt']}"
                 f"</{p}beginnt>"
                 + (f"<{p}endet>{f['endet']}</{p}endet>" if f.get("endet") else "")
                 + f"</{p}AA_Lebenszeitintervall></{p}lebenszeitintervall>",
                 f"<{p}modellart><{p}AA_Modellart><{p}advStandardModell>DLKM</{p}advStandardModell>"
                 f"</{p}AA_Modellart></{p}modellart>"]
        parts.extend(self.value(name, v) for name, v in f.get("head", ()))
        props = list(f.get("props", []))
        geom = f.get("geom")
        if geom is not None:
            name, shape = geom
            props.insert(0, (name, _Raw(self.geometry(shape, f.get("arcs"), srs=srs,
                                                      form=f.get("form", "patches"),
                                                      pos_srs=f.get("pos_srs")))))
        for name, v in props:
            if isinstance(v, _Raw):
                parts.append(f"<{p}{name}>{v.text}</{p}{name}>")
            elif isinstance(v, Amount):
                parts.append(f"<{p}{name} uom={quoteattr(v.uom)}>{escape(str(v.value))}</{p}{name}>")
            else:
                parts.append(self.value(name, v))
        parts.append(f"</{p}{f['type']}>")
        return "".join(parts)

    def member(self, f):
        """``f`` in its gml:featureMember (on one line, or indented as the third level of an
        extract), with a line break after it."""
        if not self.pretty:
            return f"<gml:featureMember>{self.feature(f)}</gml:featureMember>\n"
        return (f"\t\t\t<gml:featureMember>{pretty(self.feature(f), 4)}\n\t\t\t"
                "</gml:featureMember>\n")

    def _lay(self, xml, depth):
        return pretty(xml, depth) if self.pretty else xml

    def _open(self, root, extra=""):
        ns = NS[self.version]
        default = f'xmlns="{ns}"' if not self.p else f'xmlns:{self.p[:-1]}="{ns}"'
        # Real files name their schema; it is never fetched (and GDAL's NAS driver looks for it).
        location = (f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                    f'xsi:schemaLocation="{ns} NAS-Operationen.xsd"')
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- written by kataster -->\n'
                f'<{self.p}{root} {default} xmlns:gml="{GML}" xmlns:xlink="{XLINK}" '
                f'xmlns:gmd="{GMD}" xmlns:gco="{GCO}" {location} {extra}>')

    def extract(self, features, fh):
        """A Bestandsdatenauszug: enthaelt/wfs:FeatureCollection/gml:featureMember/…"""
        fh.write(self._open("AX_Bestandsdatenauszug",
                            'xmlns:wfs="http://www.adv-online.de/namespaces/adv/gid/wfs"'))
        fh.write(self.enthaelt())
        for f in features:
            fh.write(self.member(f))
        fh.write(self.close_extract())

    def enthaelt(self):
        p = self.p
        if self.pretty:
            return f'\n\t<{p}enthaelt>\n\t\t<wfs:FeatureCollection gml:id="FC1">\n'
        return f'<{p}enthaelt><wfs:FeatureCollection gml:id="FC1">'

    def close_extract(self):
        p = self.p
        if self.pretty:
            return (f"\t\t</wfs:FeatureCollection>\n\t</{p}enthaelt>\n"
                    f"</{p}AX_Bestandsdatenauszug>\n")
        return f"</wfs:FeatureCollection></{p}enthaelt></{p}AX_Bestandsdatenauszug>\n"

    def nba(self, inserts, replaces, deletes, datum, fh, srs=True, updates=(), portion=None):
        """An NBA update: wfs:Insert, Replace (feature, old versioned id, safeToIgnore),
        wfs:Delete (type, versioned id), wfs:Update (type, versioned id, endet, anlass), and
        the AX_Portionskennung (``portion``: profilkennung, laufendeNummerVonGesamtzahl,
        gesamtzahl; the date is ``datum``).

        GID 6.0 writes the operations as AdV's WFS 1.x profile does (``wfsext:Replace``,
        ``ogc:FeatureId/@fid``, ``typeName``, ``wfs:Property/wfs:Name``); GID 7.1 as WFS 2.0
        (``wfs:Replace``, ``fes:ResourceId/@rid``, ``typeNames``, ``wfs:ValueReference``)."""
        p = self.p
        new = self.version == "7.1"
        if new:
            ns = ('xmlns:wfs="http://www.opengis.net/wfs/2.0" '
                  'xmlns:fes="http://www.opengis.net/fes/2.0"')
        else:
            ns = ('xmlns:wfs="http://www.adv-online.de/namespaces/adv/gid/wfs" '
                  'xmlns:wfsext="http://www.adv-online.de/namespaces/adv/gid/wfsext" '
                  'xmlns:ogc="http://www.adv-online.de/namespaces/adv/gid/ogc"')
        fh.write(self._open("AX_NutzerbezogeneBestandsdatenaktualisierung_NBA", ns))
        lay = self._lay
        fh.write(lay(f"<{p}koordinatenangaben><{p}AA_Koordinatenreferenzsystemangaben>"
                     f'<{p}crs xlink:href="{self.srs}"/><{p}standard>true</{p}standard>'
                     f"</{p}AA_Koordinatenreferenzsystemangaben></{p}koordinatenangaben>", 1))
        fh.write(lay(f'<{p}geaenderteObjekte><wfs:Transaction '
                     f'version="{"2.0.0" if new else "1.0.0"}" service="WFS">', 1))

        def target(old):
            return (f'<fes:Filter><fes:ResourceId rid="{old}"/></fes:Filter>' if new
                    else f'<ogc:Filter><ogc:FeatureId fid="{old}"/></ogc:Filter>')

        def type_name(typ):
            return f'typeNames="{p}{typ}"' if new else f'typeName="{typ}"'

        if inserts:
            fh.write(lay("<wfs:Insert>" + "".join(self.feature(f, srs) for f in inserts)
                         + "</wfs:Insert>", 3))
        replace = "wfs:Replace" if new else 'wfsext:Replace vendorId="AdV"'
        for f, old, safe in replaces:
            fh.write(lay(f'<{replace} safeToIgnore="{str(safe).lower()}">'
                         + self.feature(f, srs) + target(old) + f"</{replace.split()[0]}>", 3))
        for typ, old in deletes:
            fh.write(lay(f"<wfs:Delete {type_name(typ)}>{target(old)}</wfs:Delete>", 3))
        name = "wfs:ValueReference" if new else "wfs:Name"
        for typ, old, endet, anlass in updates:
            fh.write(lay(f"<wfs:Update {type_name(typ)}><wfs:Property><{name}>"
                         f"{p}lebenszeitintervall/{p}AA_Lebenszeitintervall/{p}endet</{name}>"
                         f"<wfs:Value>{endet}</wfs:Value></wfs:Property>"
                         + (f"<wfs:Property><{name}>{p}anlass</{name}><wfs:Value>{anlass}"
                            "</wfs:Value></wfs:Property>" if anlass else "")
                         + f"{target(old)}</wfs:Update>", 3))
        fh.write(lay(f"</wfs:Transaction></{p}geaenderteObjekte>", 3))
        extra = "".join(f"<{p}{k}>{v}</{p}{k}>" for k, v in (portion or {}).items()
                        if k != "datum")
        fh.write(lay(f"<{p}portionskennung><{p}AX_Portionskennung>{extra}<{p}datum>{datum}"
                     f"</{p}datum></{p}AX_Portionskennung></{p}portionskennung>", 1))
        fh.write(("\n" if self.pretty else "")
                 + f"</{p}AX_NutzerbezogeneBestandsdatenaktualisierung_NBA>\n")


@dataclass(frozen=True)
class _Raw:
    text: str


@dataclass(frozen=True)
class Amount:
    value: object
    uom: str = "urn:adv:uom:m2"


def versioned_id(oid, beginnt):
    """OID + beginnt as YYYYMMDDThhmmssZ (the 32-character id updates use)."""
    return oid + beginnt.replace("-", "").replace(":", "")[:15] + "Z"


def open_output(path):
    """A text stream to ``path`` (gzip-compressed for ``.gz``)."""
    path = str(path)
    if path.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8")
    return open(path, "w", encoding="utf-8")
