"""The mapfiles: the style source's layers as MapServer layers (one mapfile per drawing CRS,
see ``settings.MAP_CRS``), the scanned maps' raster layer, and MapServer's templates and font
list."""

from __future__ import annotations

import os

from exporters.layers import DASHES, LAYERS, class_case, label_of
from exporters.serving.settings import (
    SRS,
    STATEMENT_TIMEOUT_MS,
    Publisher,
    conninfo,
    transform_extent,
)


def _q(text):
    return '"' + str(text).replace('"', '\\"') + '"'


def mapfile(url, base_url, extent, pub=None, karten=None, crs=25832):
    """The mapfile: the layers of the style source and, with ``karten`` (the directory of the
    scanned maps' COGs), the raster layer ``historische_karte``.

    ``crs`` is the map's CRS: 25832 (the data's own) or 3857 (the web map's tiles, see
    MAP_CRS). In a mapfile of 3857, PostGIS hands out the geometries transformed, filtered on the
    stored ones through the request's box (``!BOX!``), so MapServer projects nothing."""
    pub = pub or Publisher()
    ci = conninfo(url)
    # Every service query ends after STATEMENT_TIMEOUT_MS, whatever a request asks for.
    conn = " ".join(f"{k}={v}" for k, v in ci.items()) + \
        f" options='-c statement_timeout={STATEMENT_TIMEOUT_MS}'"
    # The extent in the map's CRS (the scanned maps' layers keep EPSG:25832, their own).
    map_extent = extent if crs == 25832 else transform_extent(extent, crs)
    layers = []
    for lay in LAYERS:
        for name, view, kind, group in lay.served():
            layers.append(_map_layer(lay, name, view, kind, group, conn, map_extent, pub, crs))
        if lay.name == "nutzung" and karten is not None:
            layers.append(_scan_layers(conn, extent, pub, crs))   # under the parcels
    return f"""MAP
  NAME "kataster"
  EXTENT {' '.join(str(v) for v in map_extent)}
  SIZE 800 600
  MAXSIZE 4096
  UNITS METERS
  IMAGECOLOR 255 255 255
  FONTSET "fonts.txt"
  {f'SHAPEPATH "{karten}"' if karten is not None else ""}
  PROJECTION "init=epsg:{crs}" END
  LEGEND
    KEYSIZE 24 14
    KEYSPACING 6 4
    LABEL FONT "sans" SIZE 9 COLOR 0 0 0 END
  END
  SYMBOL NAME "circle" TYPE ELLIPSE FILLED TRUE POINTS 1 1 END END
  OUTPUTFORMAT NAME "png" DRIVER AGG/PNG MIMETYPE "image/png" IMAGEMODE RGBA EXTENSION "png"
    TRANSPARENT ON END
  OUTPUTFORMAT NAME "jpeg" DRIVER AGG/JPEG MIMETYPE "image/jpeg" IMAGEMODE RGB EXTENSION "jpg" END
  OUTPUTFORMAT NAME "geojson" DRIVER "OGR/GEOJSON" MIMETYPE "application/json"
    FORMATOPTION "FORM=SIMPLE" FORMATOPTION "STORAGE=memory" FORMATOPTION "LCO:RFC7946=YES" END
  WEB
    METADATA
      "ows_title" "Kataster – Liegenschaftskataster (öffentliche Daten)"
      "ows_abstract" "Flurstücke, Gebäude, Fluren, Gemarkungen, tatsächliche Nutzung und öffentliche Befunde aus dem Kataster der Stadt. Keine Eigentümerdaten. Quelle: {pub.attribution}, {pub.licence}."
      "ows_onlineresource" "{base_url}/wms?"
      "ows_srs" "{SRS}"
      "ows_enable_request" "*"
      "ows_contactorganization" {_q(pub.organisation)}
      "ows_contactperson" {_q(pub.contact_name)}
      {f'"ows_contactelectronicmailaddress" {_q(pub.contact_email)}' if pub.contact_email else ""}
      "ows_fees" {_q(pub.licence)}
      "ows_accessconstraints" {_q("Quelle: " + pub.attribution + ", " + pub.licence)}
      "wms_attribution_title" {_q(pub.attribution)}
      "wms_feature_info_mime_type" "text/html"
      "wms_getfeatureinfo_formatlist" "text/plain,text/html,application/json,application/vnd.ogc.gml"
      "wfs_getfeature_formatlist" "geojson"
      "ows_language" "ger"
      "wms_sld_enabled" "false"
    END
  END
{''.join(layers)}
END
"""


def _class_style(style, kind):
    """The STYLE blocks of a class (empty for a class of texts only)."""
    if kind == "POINT":
        if not style.size:
            return ""
        return (f'STYLE SYMBOL "circle" SIZE {style.size} COLOR {style.fill or style.outline} '
                f"OUTLINECOLOR {style.outline} WIDTH {style.width} END")
    line = f"OUTLINECOLOR {style.outline} WIDTH {style.width}"
    if style.dash:
        line += f" PATTERN {' '.join(map(str, DASHES[style.dash]))} END LINECAP BUTT"
    if not style.fill:
        return f"STYLE {line} END"
    if style.dash:
        return f"STYLE COLOR {style.fill} END STYLE {line} END"
    return f"STYLE COLOR {style.fill} {line} END"


def _map_layer(lay, name, view, kind, group, conn, extent, pub, crs=25832):
    fields = ", ".join(lay.fields)
    case = class_case(lay)
    # The class of each row comes from SQL (the style source's conditions; NULLs fall to the
    # last class), so MapServer compares one small value per feature.
    label = label_of(lay)
    extra = "".join(f"{sql} AS {name}, " for name, sql in (label.columns if label else ()))
    scaletoken = _clip_token(lay) if lay.clip and crs != 25832 else ""
    if crs == 25832:
        geom, where = "geom", "geom IS NOT NULL"
    else:
        drawn = "%umriss%" if scaletoken else "geom"
        geom, where = f"ST_Transform({drawn}, {crs}) AS geom", "geom && ST_Transform(!BOX!, 25832)"
    data = (f"geom FROM (SELECT {fields}, {f'{case} AS klasse, ' if case else ''}{extra}{geom}"
            f" FROM {view} WHERE {where}) AS t USING UNIQUE {lay.key} USING SRID={crs}")
    classes = []
    for number, style in enumerate(lay.styles):
        expr = f'"{number}"' if case else None
        styled = _class_style(style, kind)
        if kind == "POLYGON" and lay.parts and style.fill:
            # Findings as areas: a light fill under the outline, the map stays readable.
            styled = (f"STYLE COLOR {style.fill} OPACITY 30 END "
                      f"STYLE OUTLINECOLOR {style.outline} WIDTH {style.width} END")
        if label and isinstance(label.mapserver, dict):
            # Zähler over Nenner where a Nenner exists, the Zähler alone otherwise; the
            # legend shows the class once.
            for k, (text, test) in enumerate(((label.mapserver["with_nenner"],
                                               '("[nenner]" ne "")'),
                                              (label.mapserver["without"], None))):
                both = " AND ".join(x for x in (expr, test) if x)
                classes.append((style.title if k == 0 else None,
                                f"({both})" if expr and test else both or None, styled,
                                _label(text, lay, label, kind)))
        else:
            classes.append((style.title, expr, styled,
                            _label(label.mapserver, lay, label, kind) if label else ""))
    class_text = "".join(
        "    CLASS\n"
        + (f"      NAME {_q(title)}\n" if title else "")
        + (f"      EXPRESSION {expr}\n" if expr else "")
        + f"      {styled}\n      {label}\n    END\n"
        for title, expr, styled, label in classes)
    items = ",".join(lay.fields)
    title = lay.title_of(kind)
    # No per-layer PROJECTION: every layer is in the map's CRS. A request in the map's CRS
    # (written "init=epsg:N", the form MapServer gives a WMS request's CRS, so the two compare
    # equal) then costs no projection work; any other CRS makes MapServer copy the projection
    # into each layer, build a PROJ transformation per layer and project each layer's search
    # box: about half of a full-cartography tile (bench/README.md). COMPOSITE only where it
    # changes something (it renders the layer into a separate image first).
    return f"""
  LAYER
    NAME "{name}"
    {f'GROUP "{group}"' if group else ""}
    TYPE {kind}
    STATUS ON
    CONNECTIONTYPE POSTGIS
    CONNECTION "{conn}"
    PROCESSING "CLOSE_CONNECTION=DEFER"
    DATA "{data}"
    {scaletoken}
    {f"MAXSCALEDENOM {lay.max_scale}" if lay.max_scale else ""}
    {f"COMPOSITE OPACITY {lay.opacity} END" if lay.opacity < 100 else ""}
    {'CLASSITEM "klasse"' if case else ""}
    TEMPLATE "{lay.name}.html"
    HEADER "header.html"
    FOOTER "footer.html"
    METADATA
      "ows_title" {_q(title)}
      "ows_abstract" {_q(lay.title + " aus dem Kataster (öffentliche Sicht " + view + ")")}
      "ows_srs" "{SRS}"
      "ows_extent" "{' '.join(str(v) for v in extent)}"
      "ows_include_items" "{items}"
      "gml_include_items" "{items}"
      "gml_featureid" "{lay.key}"
      "gml_types" "auto"
      "ows_attribution_title" {_q(pub.attribution)}
      {f'"wms_group_title" {_q(lay.title)}' if group else ""}
      "wms_enable_request" "*"
      "wfs_enable_request" "*"
      "wfs_getfeature_formatlist" "geojson"
    END
{class_text}
  END"""


def _clip_token(lay):
    """The geometry a ``clip`` layer's web-map tiles draw: below the scale of its first text,
    the stored polygon cut to the request's box, widened by 16 pixels at that scale (72 dpi)
    so that the cut edges lie outside the image; at the text's scales the whole polygon, where
    MapServer places the text. A Flur's 130 and a Gemarkung's 600 vertices were transformed
    and drawn for every tile that touches them (bench/README.md). Only GetMap requests reach
    this mapfile (``nginx_conf``): GetFeatureInfo hands out the whole polygon."""
    below = lay.label_min_scale or lay.max_scale
    if not below:
        raise ValueError(f"layer {lay.name}: clip needs a label scale or a maximum scale")
    margin = round(below * 0.0254 / 72 * 16, 1)
    values = f'"0" "ST_ClipByBox2D(geom, ST_Expand(ST_Transform(!BOX!, 25832), {margin}))"'
    if lay.label_min_scale:
        values += f' "{lay.label_min_scale}" "geom"'
    return f'SCALETOKEN NAME "%umriss%" VALUES {values} END END'


def _scan_layers(conn, extent, pub, crs=25832):
    """The scanned maps: a raster layer over a tile index of the catalogue's current sheets
    (``kataster.historische_karte``, paths relative to SHAPEPATH = karten.dir). A request may
    choose one year with ``JAHR=1936`` (validated: digits only; default 0 = every year)."""
    data = ("geom FROM (SELECT id, pfad AS location, jahr, geom FROM kataster.historische_karte"
            " WHERE geom IS NOT NULL AND (%jahr% = 0 OR jahr = %jahr%)) AS t"
            " USING UNIQUE id USING SRID=25832")
    # The COGs are in EPSG:25832; in a mapfile of another CRS MapServer warps them.
    own = "" if crs == 25832 else 'PROJECTION "init=epsg:25832" END'
    return f"""
  LAYER
    NAME "karte_index"
    TYPE POLYGON
    STATUS OFF
    CONNECTIONTYPE POSTGIS
    CONNECTION "{conn}"
    PROCESSING "CLOSE_CONNECTION=DEFER"
    DATA "{data}"
    {own}
    VALIDATION "jahr" "^[0-9]{{1,4}}$" "default_jahr" "0" END   # where %jahr% is used
    METADATA "wms_enable_request" "!*" "wfs_enable_request" "!*" END
  END
  LAYER
    NAME "historische_karte"
    TYPE RASTER
    STATUS ON
    TILEINDEX "karte_index"
    TILEITEM "location"
    {own}
    PROCESSING "RESAMPLE=BILINEAR"
    METADATA
      "ows_title" "Historische Karten (Scans)"
      "ows_abstract" "Gescannte Flurkarten, Urkarten und Rahmenkarten, georeferenziert (Katalog: kataster.historische_karte). Ein Jahr wählt der Parameter JAHR, z. B. JAHR=1936."
      "ows_srs" "{SRS}"
      "ows_extent" "{' '.join(str(v) for v in extent)}"
      "ows_attribution_title" {_q(pub.attribution)}
      "wms_enable_request" "GetMap GetCapabilities"
      "wfs_enable_request" "!*"
    END
  END"""


def _label(text, lay, label, kind):
    # Plain texts as in the Liegenschaftskarte (no halo: it doubled the glyph rendering); on
    # polygons only where the text fits inside. PARTIALS FALSE: no text is cut at a tile's
    # edge, so none appears twice or halved on a tiled map. Lines split at "|".
    fits = "MINFEATURESIZE AUTO " if kind == "POLYGON" and label.inside else ""
    return (f'LABEL TEXT {text} FONT "sans" SIZE {label.size} COLOR {label.color} '
            f"POSITION CC PARTIALS FALSE {fits}PRIORITY {label.priority} "
            "WRAP '|' ALIGN CENTER "
            + (f"MAXSCALEDENOM {lay.label_max_scale} " if lay.label_max_scale else "")
            + (f"MINSCALEDENOM {lay.label_min_scale} " if lay.label_min_scale else "")
            + "END")


def templates(run):
    """MapServer's feature info templates (one per layer) and its font list."""
    (run / "header.html").write_text("<!-- MapServer Template -->\n<html><head><meta charset=\"utf-8\">"
                                     "<title>Auskunft</title></head><body>\n", encoding="utf-8")
    (run / "footer.html").write_text("<!-- MapServer Template -->\n</body></html>\n",
                                     encoding="utf-8")
    for lay in LAYERS:
        rows = "".join(f"<tr><th>{f}</th><td>[{f}]</td></tr>" for f in lay.fields)
        (run / f"{lay.name}.html").write_text(
            f"<!-- MapServer Template -->\n<table class=\"{lay.name}\"><caption>{lay.title}"
            f"</caption>{rows}</table>\n", encoding="utf-8")
    font = next((p for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                             "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")
                 if os.path.exists(p)), None)
    (run / "fonts.txt").write_text(f"sans {font}\n" if font else "", encoding="utf-8")
