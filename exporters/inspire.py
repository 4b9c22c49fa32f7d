"""INSPIRE Cadastral Parcels (CP 4.0) GML of the current parcels.

CadastralParcel with inspireId (localId = gml_id, namespace configurable as
``exports.inspire_namespace``), nationalCadastralReference = Flurstückskennzeichen,
label = Zähler/Nenner, areaValue = amtliche Fläche (m²), geometry (MultiSurface, EPSG:25832),
referencePoint, beginLifespanVersion; unknown voidable values are nil with nilReason.
The INSPIRE schemas cannot be fetched here: tests check the structure and read it back with GDAL.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import shapely

from pipeline.views import read_frames

NS = {
    "wfs": "http://www.opengis.net/wfs/2.0",
    "cp": "http://inspire.ec.europa.eu/schemas/cp/4.0",
    "base": "http://inspire.ec.europa.eu/schemas/base/3.3",
    "gml": "http://www.opengis.net/gml/3.2",
    "xlink": "http://www.w3.org/1999/xlink",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
SCHEMA_LOCATION = ("http://inspire.ec.europa.eu/schemas/cp/4.0 "
                   "https://inspire.ec.europa.eu/schemas/cp/4.0/CadastralParcels.xsd "
                   "http://www.opengis.net/wfs/2.0 http://schemas.opengis.net/wfs/2.0/wfs.xsd")
SRS = "http://www.opengis.net/def/crs/EPSG/0/25832"
NIL = ' xsi:nil="true" nilReason="http://inspire.ec.europa.eu/codelist/VoidReasonValue/Unpopulated"'


def _poslist(coords):
    return " ".join(f"{x:.3f} {y:.3f}" for x, y in coords)


def _surface(gid, geom):
    members = []
    for k, poly in enumerate(shapely.get_parts(geom)):
        rings = [f"<gml:exterior><gml:LinearRing><gml:posList>{_poslist(poly.exterior.coords)}"
                 "</gml:posList></gml:LinearRing></gml:exterior>"]
        rings += [f"<gml:interior><gml:LinearRing><gml:posList>{_poslist(r.coords)}"
                  "</gml:posList></gml:LinearRing></gml:interior>" for r in poly.interiors]
        members.append(f'<gml:surfaceMember><gml:Polygon gml:id="{gid}.p{k}">{"".join(rings)}'
                       "</gml:Polygon></gml:surfaceMember>")
    return f'<gml:MultiSurface gml:id="{gid}.g" srsName="{SRS}">{"".join(members)}</gml:MultiSurface>'


def parcel_xml(row, namespace):
    gid = "CP." + escape(row.gml_id)
    label = str(row.zaehler) if row.zaehler is not None else ""
    if row.nenner:
        label += "/" + str(row.nenner)
    ref = shapely.point_on_surface(row.geom) if row.geom is not None else None
    parts = [f'<cp:CadastralParcel gml:id="{gid}">']
    parts.append(f'<cp:areaValue uom="m2">{row.amtliche_flaeche:.0f}</cp:areaValue>'
                 if row.amtliche_flaeche is not None else f"<cp:areaValue{NIL}/>")
    parts.append(f"<cp:beginLifespanVersion>{row.beginnt.isoformat()}</cp:beginLifespanVersion>")
    parts.append(f"<cp:endLifespanVersion{NIL}/>")
    parts.append(f"<cp:geometry>{_surface(gid, row.geom)}</cp:geometry>")
    parts.append("<cp:inspireId><base:Identifier>"
                 f"<base:localId>{escape(row.gml_id)}</base:localId>"
                 f"<base:namespace>{escape(namespace)}</base:namespace>"
                 "</base:Identifier></cp:inspireId>")
    parts.append(f"<cp:label>{escape(label)}</cp:label>")
    parts.append("<cp:nationalCadastralReference>"
                 f"{escape(row.flurstueckskennzeichen)}</cp:nationalCadastralReference>")
    if ref is not None:
        parts.append(f'<cp:referencePoint><gml:Point gml:id="{gid}.r" srsName="{SRS}">'
                     f"<gml:pos>{ref.x:.3f} {ref.y:.3f}</gml:pos></gml:Point></cp:referencePoint>")
    parts.append(f"<cp:validFrom{NIL}/><cp:validTo{NIL}/>")
    parts.append("</cp:CadastralParcel>")
    return "".join(parts)


def export_inspire(db, layer, out, namespace="https://registry.gdi-de.org/id/de.nw.kataster",
                   **filters):
    """Write the current parcels as an INSPIRE CadastralParcel GML (WFS 2.0 FeatureCollection)."""
    if layer != "flurstueck":
        from pipeline.errors import UsageError

        raise UsageError("INSPIRE GML is written for the layer flurstueck (CadastralParcel)")
    started = time.monotonic()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    xmlns = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
    with open(out, "w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        fh.write(f'<wfs:FeatureCollection {xmlns} xsi:schemaLocation="{SCHEMA_LOCATION}" '
                 f'timeStamp="{stamp}" numberMatched="unknown" numberReturned="0">\n')
        for frame in read_frames(db, "flurstueck", **filters):
            for row in frame.itertuples():
                fh.write("<wfs:member>" + parcel_xml(row, namespace) + "</wfs:member>\n")
                n += 1
        fh.write("</wfs:FeatureCollection>\n")
    # numberReturned is known only at the end: patch the fixed-width header in place.
    text = out.read_text(encoding="utf-8")
    out.write_text(text.replace('numberReturned="0"', f'numberReturned="{n}"', 1),
                   encoding="utf-8")
    return {"format": "inspire", "layer": layer, "out": str(out), "features": n,
            "filters": filters, "seconds": round(time.monotonic() - started, 3)}
export_inspire.settings = ("namespace",)   # exports.inspire_namespace
