"""QGIS styles and a QGIS project from the one style source (``exporters.layers``).

Both are XML that QGIS reads; no QGIS is needed to write them. The styles go into GeoPackage
exports (the ``layer_styles`` table QGIS reads as a layer's default style) and into the project
(``kataster export qgis``), whose layers read the public views through a pg_service entry
(``kataster db service``) or a GeoPackage written beside it.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from exporters.layers import LAYERS, QGIS_DASHES, Layer, condition, label_of
from schemas import queries

GPKG_STYLES = queries("gpkg_styles")

PX_TO_MM = 0.3528                 # MapServer widths are pixels at 72 dpi
QGIS_VERSION = "3.22.16-Białowieża"


def _rgba(rgb, alpha=255):
    return ",".join(rgb.split()) + f",{alpha}"


def _options(values):
    return "<Option type=\"Map\">" + "".join(
        f"<Option name={quoteattr(k)} type=\"QString\" value={quoteattr(str(v))}/>"
        for k, v in values.items()) + "</Option>"


def _symbol(number, style, kind, area_finding=False):
    if kind == "POINT":
        layer = ("SimpleMarker", {
            "name": "circle", "color": _rgba(style.fill or style.outline),
            "outline_color": _rgba(style.outline), "outline_width": style.width * PX_TO_MM,
            "outline_width_unit": "MM", "size": (style.size or 8) * PX_TO_MM,
            "size_unit": "MM", "outline_style": "solid"})
        kind_name = "marker"
    else:
        layer = ("SimpleFill", {
            "color": _rgba(style.fill, 77 if area_finding else 255) if style.fill
            else "0,0,0,0",
            "style": "solid" if style.fill else "no",
            "outline_color": _rgba(style.outline),
            "outline_style": QGIS_DASHES[style.dash],
            "outline_width": round(style.width * PX_TO_MM, 3), "outline_width_unit": "MM"})
        kind_name = "fill"
    return (f'<symbol type="{kind_name}" name="{number}" alpha="1" clip_to_extent="1" '
            f'force_rhr="0"><layer class="{layer[0]}" enabled="1" locked="0" pass="0">'
            f"{_options(layer[1])}</layer></symbol>")


def _renderer(layer: Layer, kind):
    if kind == "POINT" and not any(s.size for s in layer.styles):
        return '<renderer-v2 type="nullSymbol"/>'     # texts only
    rules = []
    for k, style in enumerate(layer.styles):
        expr = condition(style, "qgis") or "ELSE"
        rules.append(f"<rule key=\"{{r{k}}}\" label={quoteattr(style.title)} "
                     f"filter={quoteattr(expr)} symbol=\"{k}\"/>")
    symbols = "".join(_symbol(k, s, kind, area_finding=bool(layer.parts))
                      for k, s in enumerate(layer.styles))
    return ('<renderer-v2 type="RuleRenderer" symbollevels="0" forceraster="0" '
            'enableorderby="0" referencescale="-1"><rules key="{root}">' + "".join(rules)
            + f"</rules><symbols>{symbols}</symbols></renderer-v2>")


def _labeling(layer: Layer, kind):
    label = label_of(layer)
    if not label:
        return ""
    inside = "1" if kind == "POLYGON" and label.inside else "0"
    return ('<labeling type="simple"><settings calloutType="simple">'
            f"<text-style fieldName={quoteattr(label.qgis)} isExpression=\"1\" "
            f'fontFamily="DejaVu Sans" fontSize="{label.size}" fontSizeUnit="Point" '
            f'textColor="{_rgba(label.color)}" multilineHeight="0.85" '
            'textOpacity="1" fontWeight="50" fontItalic="0" namedStyle="Book"/>'
            '<text-format multilineAlign="1" wrapChar="" autoWrapLength="0"/>'
            f'<placement placement="1" priority="{label.priority}" dist="0" offsetType="0" '
            f'fitInPolygonOnly="{inside}"/>'
            f'<rendering scaleVisibility="1" scaleMin="{layer.label_min_scale}" '
            f'scaleMax="{layer.label_max_scale}" '
            'obstacle="1" displayAll="0" upsidedownLabels="0" limitNumLabels="0" '
            'fontLimitPixelSize="0" drawLabels="1"/></settings></labeling>')


def _scale_attrs(layer: Layer):
    return (f'hasScaleBasedVisibilityFlag="{1 if layer.max_scale else 0}" '
            f'minScale="{layer.max_scale or 0}" maxScale="0" '
            f'labelsEnabled="{1 if layer.label else 0}"')


def qml(layer: Layer, kind=None):
    """The QGIS style (QML) of a layer; ``kind`` picks a geometry type of a mixed layer."""
    kind = kind or layer.kind
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
            f'<qgis version="{QGIS_VERSION}" styleCategories="Symbology|Labeling|Rendering" '
            f"{_scale_attrs(layer)}>{_renderer(layer, kind)}{_labeling(layer, kind)}</qgis>")


def style_for(table):
    """(Layer, kind) for an exported or served table name, or None."""
    return next(((layer, kind) for layer in LAYERS
                 for name, _view, kind, _group in layer.served() if name == table), None)


def embed_style(gpkg, table, geometry_column="geom"):
    """Store the table's style in the GeoPackage's ``layer_styles`` (QGIS's default style for
    that layer); a style stored before for the table is replaced. Tables without a style in the
    style source are left alone."""
    import sqlite3

    found = style_for(table)
    if found is None:
        return False
    layer, kind = found
    with sqlite3.connect(gpkg) as conn:
        conn.execute(GPKG_STYLES["create_table"])
        conn.execute(GPKG_STYLES["register_table"])
        conn.execute(GPKG_STYLES["drop_style"], {"table": table})
        conn.execute(GPKG_STYLES["add_style"], {
            "table": table, "geometry_column": geometry_column, "name": layer.title,
            "qml": qml(layer, kind),
            "description": f"{layer.title}: Stil aus Kataster (exporters/layers.py)",
            "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")})
    return True


# -- the project -----------------------------------------------------------------------------
SRS = ("<spatialrefsys><wkt></wkt><proj4>+proj=utm +zone=32 +ellps=GRS80 "
       "+towgs84=0,0,0,0,0,0,0 +units=m +no_defs</proj4><srsid>2105</srsid><srid>25832</srid>"
       "<authid>EPSG:25832</authid><description>ETRS89 / UTM zone 32N</description>"
       "<projectionacronym>utm</projectionacronym><ellipsoidacronym>EPSG:7019"
       "</ellipsoidacronym><geographicflag>false</geographicflag></spatialrefsys>")
WKB = {"POLYGON": ("Polygon", "MultiPolygon"), "POINT": ("Point", "Point")}


def _project_layers():
    """(name, title, view table, layer, kind) in drawing order, top first (the reverse of the
    map service's order); ``name`` is also the layer's name in an export
    (``kataster export gpkg --layer NAME``)."""
    return [(name, layer.title_of(kind), view.split(".")[1], layer, kind)
            for layer in reversed(LAYERS) for name, view, kind, _group in layer.served()]


def project_xml(service=None, gpkg_name=None):
    """The QGIS project (.qgs XML) with every public layer, styled, reading through the
    pg_service entry ``service`` or from the GeoPackage ``gpkg_name`` beside the project."""
    tree, maplayers = [], []
    for name, title, table, layer, kind in _project_layers():
        geometry, wkb = WKB[kind]
        # QGIS keeps a layer id of the form name_suffix (it replaced plain names on reading,
        # and the layer tree then lost its layers).
        layer_id = f"{name}_kataster"
        if service:
            source = (f"service='{service}' key='{layer.key}' srid=25832 type={wkb} "
                      f"checkPrimaryKeyUnicity='0' table=\"kataster\".\"{table}\" (geom)")
            provider = "postgres"
        else:
            source = f"./{gpkg_name}|layername={name}"
            provider = "ogr"
        tree.append(f"<layer-tree-layer id={quoteattr(layer_id)} name={quoteattr(title)} "
                    f'checked="Qt::Checked" expanded="0" providerKey="{provider}" '
                    f"source={quoteattr(source)}><customproperties/></layer-tree-layer>")
        maplayers.append(
            f'<maplayer type="vector" geometry="{geometry}" wkbType="{wkb}" '
            f'styleCategories="AllStyleCategories" {_scale_attrs(layer)} readOnly="1">'
            f"<id>{escape(layer_id)}</id><datasource>{escape(source)}</datasource>"
            f"<layername>{escape(title)}</layername><srs>{SRS}</srs>"
            f'<provider encoding="UTF-8">{provider}</provider>'
            f"{_renderer(layer, kind)}{_labeling(layer, kind)}</maplayer>")
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
            f'<qgis projectname="Kataster" version="{QGIS_VERSION}">'
            '<homePath path=""/><title>Kataster (öffentliche Daten)</title>'
            f"<projectCrs>{SRS}</projectCrs>"
            '<layer-tree-group><customproperties/>' + "".join(tree) + "</layer-tree-group>"
            "<projectlayers>" + "".join(maplayers) + "</projectlayers>"
            '<properties><Paths><Absolute type="bool">false</Absolute></Paths></properties>'
            "</qgis>")


def write_project(out, service=None, gpkg_name=None):
    """Write ``out`` (.qgz: the zipped project; .qgs: plain XML)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = project_xml(service=service, gpkg_name=gpkg_name)
    if out.suffix.lower() == ".qgs":
        out.write_text(text, encoding="utf-8")
        return out
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(out.with_suffix(".qgs").name, text)
    out.write_bytes(buffer.getvalue())
    return out


def export_qgis(db, layer, out, service=None, **filters):
    """Exporter ``qgis``: a QGIS project of every public layer, styled like the map service.
    With ``service`` (a pg_service entry, see ``kataster db service``) its layers read the
    database; otherwise a GeoPackage beside the project holds them (with the filters)."""
    import time

    from exporters.files import export_gpkg

    started = time.monotonic()
    out = Path(out)
    features = 0
    if not service:
        gpkg = out.with_suffix(".gpkg")
        if gpkg.exists():
            gpkg.unlink()
        for name, *_ in _project_layers():
            features += export_gpkg(db, name, gpkg, **filters)["features"]
    write_project(out, service=service, gpkg_name=None if service else out.with_suffix(
        ".gpkg").name)
    return {"format": "qgis", "layer": "alle", "out": str(out), "features": features,
            "filters": {k: filters.get(k) for k in ("gemarkung", "flur", "bbox")},
            "seconds": round(time.monotonic() - started, 3)}


export_qgis.all_layers = True      # the command line asks for no --layer
