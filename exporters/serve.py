"""``kataster serve``: MapServer 8 (WMS 1.3.0, WFS 2.0) as a FastCGI pool behind nginx, pygeoapi
(OGC API Features) under gunicorn, and the map page, all behind one port.

Everything is generated into a run directory from the layer definitions in
``exporters/layers.py``: the mapfile, ``mapserver.conf``, the nginx configuration, the pygeoapi
configuration and the map page. The launcher owns its children and stops them TERM → wait →
KILL by pid, so no process is left behind.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pyproj import Transformer

from exporters.layers import DASHES, LAYERS, class_case, label_of
from pipeline import kennzeichen
from pipeline.errors import KatasterError
from pipeline.processes import free_port, service_child
from schemas import sql_text

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parent / "web"
MAPSERV = "/usr/lib/cgi-bin/mapserv"


@dataclass(frozen=True)
class Publisher:
    """Who publishes the services, under which licence (configuration section ``serve``)."""

    organisation: str = "Stadtverwaltung, Vermessung und Kataster"
    contact_name: str = "GIS-Team Kataster"
    contact_email: str | None = None
    licence: str = "Datenlizenz Deutschland – Zero – Version 2.0 (dl-de/zero-2.0)"
    licence_url: str = "https://www.govdata.de/dl-de/zero-2-0"
    attribution: str = "Geobasis NRW"

    @classmethod
    def from_config(cls, config):
        return cls(**{f: config[f"serve.{f}"] for f in cls.__dataclass_fields__})


SRS = "EPSG:25832 EPSG:4258 EPSG:4326 EPSG:3857"
STATEMENT_TIMEOUT_MS = 10_000      # no map or feature request holds the database longer
TILE_LAYERS = "gemarkung,flur,gebaeude,flurstueck"     # the OGC API pages' base map
# The mapfiles, by the CRS they draw in: nginx sends a request in EPSG:3857 (the map page's and
# the OGC API pages' tiles) to kataster_3857, every other one to kataster (EPSG:25832, the
# data's CRS, which QGIS uses). Each is free of projection work in its own CRS.
MAP_CRS = {"kataster": 25832, "kataster_3857": 3857}
WEB_MAP = next(name for name, crs in MAP_CRS.items() if crs == 3857)


def _conninfo(url):
    """libpq keyword conninfo (MapServer and pygeoapi take the pieces)."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    info = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 5432,
            "dbname": parts.path.lstrip("/"), "user": parts.username or ""}
    if parts.password:
        info["password"] = parts.password
    elif "passfile" in query:
        with open(query["passfile"]) as fh:     # MapServer/pygeoapi need the password itself
            for line in fh:
                host, port, _db, user, pw = line.rstrip("\n").split(":", 4)
                if user == info["user"] and port in (str(info["port"]), "*"):
                    info["password"] = pw
    return info


def _q(text):
    return '"' + str(text).replace('"', '\\"') + '"'


def mapfile(url, base_url, extent, pub=Publisher(), karten=None, crs=25832):
    """The mapfile: the layers of the style source and, with ``karten`` (the directory of the
    scanned maps' COGs), the raster layer ``historische_karte``.

    ``crs`` is the map's CRS: 25832 (the data's own) or 3857 (the web map's tiles, see
    MAP_CRS). In a mapfile of 3857, PostGIS hands out the geometries transformed, filtered on the
    stored ones through the request's box (``!BOX!``), so MapServer projects nothing."""
    ci = _conninfo(url)
    # Every service query ends after STATEMENT_TIMEOUT_MS, whatever a request asks for.
    conn = " ".join(f"{k}={v}" for k, v in ci.items()) + \
        f" options='-c statement_timeout={STATEMENT_TIMEOUT_MS}'"
    # The extent in the map's CRS (the scanned maps' layers keep EPSG:25832, their own).
    map_extent = extent if crs == 25832 else _transform_extent(extent, crs)
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


def _templates(run):
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


def _check_port_free(host, port):
    """Refuse a port something already listens on, naming the process where it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            holder = _port_holder(port)
            raise KatasterError(f"port {port} on {host} is in use"
                                + (f" by {holder}" if holder else "")
                                + f" ({err.strerror}); stop it or choose another with "
                                  "--port") from None


def _port_holder(port):
    """'process PID (command)' listening on ``port``, found through /proc, or ''."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    cmd = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
                    return f"process {proc.name} ({cmd})"
        except OSError:
            continue
    return ""


def nginx_conf(run, host, port, pygeoapi_port):  # noqa: W605
    # Started by root, nginx would hand its workers to an unprivileged user that cannot enter
    # the (mode 700) run directory; the services listen on loopback only by default.
    user = "user root root;" if os.geteuid() == 0 else ""
    return f"""daemon off;
{user}
worker_processes 2;
pid {run}/nginx.pid;
error_log {run}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {run}/tmp/body;
  fastcgi_temp_path {run}/tmp/fastcgi;
  proxy_temp_path {run}/tmp/proxy;
  uwsgi_temp_path {run}/tmp/uwsgi;
  scgi_temp_path {run}/tmp/scgi;
  types {{ text/html html; application/javascript js; text/css css; image/png png;
          application/json json; }}
  # MapServer 8.0 answers an unknown CRS with InvalidSRS; WMS 1.3.0 says InvalidCRS.
  map $args $wms_crs_code {{
    "~*(^|&)version=1[.]3[.]0" 'code="InvalidCRS"';
    default 'code="InvalidSRS"';
  }}
  # The mapfile drawing a GetMap in the request's CRS (MAP_CRS); WMS 1.3.0 names it CRS,
  # 1.1.1 SRS. Every other request (feature info, legends, capabilities, WFS) goes to the
  # first: the web map's mapfile clips large polygons to the box (_clip_token).
  map "$arg_request:$arg_crs$arg_srs" $kataster_map {{
    "~*^getmap:epsg:3857$" {WEB_MAP};
    default kataster;
  }}
  server {{
    listen {host}:{port};
    location /wms {{
      set $args "$args&map=$kataster_map";
      sub_filter 'code="InvalidSRS"' $wms_crs_code;
      sub_filter_once off;
      sub_filter_types text/xml application/vnd.ogc.se_xml;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME {MAPSERV};
      fastcgi_pass unix:{run}/mapserv.sock;
    }}
    # XYZ tiles of the WMS for the OGC API pages' maps (MapServer's tile mode); a path without
    # '&', which the pages' templates would escape.
    location ~ "^/kacheln/([0-9]+)/([0-9]+)/([0-9]+)[.]png$" {{
      set $args "mode=tile&tilemode=gmap&tile=$2+$3+$1&layers={TILE_LAYERS}&map={WEB_MAP}";
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME {MAPSERV};
      fastcgi_pass unix:{run}/mapserv.sock;
    }}
    location = /ogcapi {{ return 301 /ogcapi/; }}
    location /ogcapi/ {{
      proxy_pass http://127.0.0.1:{pygeoapi_port}/;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto http;
    }}
    location / {{ root {run}/www; index index.html; }}
  }}
}}
"""


# pygeoapi's HTML pages load their scripts and styles from CDNs; on a city network without
# internet they were unstyled, with blank maps, and the service made outbound requests. The
# templates are copied with these addresses pointing at local copies (npm, exporters/web).
VENDOR = {
    "https://unpkg.com/bootstrap@5.1.3/dist/": "bootstrap/dist/",
    "https://unpkg.com/leaflet@1.3.1/dist/": "leaflet/dist/",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet/1.3.1/": "leaflet/dist/",
    "https://unpkg.com/leaflet.markercluster/dist/": "leaflet.markercluster/dist/",
    "https://unpkg.com/swagger-ui-dist/": "swagger-ui-dist/",
}
DROPPED = re.compile(r'[^\n]*(fonts\.googleapis\.com|html5shiv)[^\n]*\n')
# Empty values are blank on the pages (Jinja's ``string`` filter wrote "None").
BLANK = {
    "{{ ft.properties.get(prop, '') | string | truncate( 35 ) }}":
        "{{ (ft.properties.get(prop) if ft.properties.get(prop) is not none else '')"
        " | string | truncate( 35 ) }}",
    "{{ render_item_value(v, 80) }}": "{{ render_item_value(v, 80) if v is not none else '' }}",
}


def pygeoapi_pages(target):
    """Copies of pygeoapi's templates and static files under ``target`` whose pages load
    nothing from outside and show empty values blank, and their German texts (compiled from
    ``web/pygeoapi.de.po``): returns (templates, static, locale directory) for the
    configuration."""
    import pygeoapi
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    source = Path(pygeoapi.__file__).resolve().parent
    templates, static = target / "templates", target / "static"
    shutil.copytree(source / "templates", templates)
    shutil.copytree(source / "static", static)
    for package in {v.split("/")[0] for v in VENDOR.values()}:
        shutil.copytree(WEB / "node_modules" / package, static / "vendor" / package)
    local = "{{ config['server']['url'] }}/static/vendor/"
    for page in templates.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new = DROPPED.sub("", text)
        for cdn, path in VENDOR.items():
            new = new.replace(cdn, local + path)
        for shown, blank in BLANK.items():
            new = new.replace(shown, blank)
        if new != text:
            page.write_text(new, encoding="utf-8")
    locale = target / "locale"
    (locale / "de" / "LC_MESSAGES").mkdir(parents=True)
    with open(WEB / "pygeoapi.de.po", "rb") as po, \
            open(locale / "de" / "LC_MESSAGES" / "messages.mo", "wb") as mo:
        write_mo(mo, read_po(po))
    return templates, static, locale


def pygeoapi_config(url, base_url, pages=None, bbox_wgs84=None, pub=Publisher()):
    """pygeoapi's configuration: every served layer as a collection reading its view (through
    our provider), the pages from ``pages`` (see :func:`pygeoapi_pages`), their map drawn from
    our own WMS, the collections' extent ``bbox_wgs84`` (the data's)."""
    ci = _conninfo(url)
    resources = {}
    # Every layer, and the parts of a mixed one (the findings as points and as areas).
    collections = [(lay, lay.name, lay.view, lay.title) for lay in LAYERS] + [
        (lay, name, view, lay.title_of(kind)) for lay in LAYERS if lay.parts
        for name, view, kind, _group in lay.served()]
    for lay, name, view, title in collections:
        schema, table = view.split(".")
        provider = {
            "type": "feature",
            "name": "exporters.ogcapi_provider.KatasterPostgreSQLProvider",
            "data": {"host": ci["host"], "port": ci["port"], "dbname": ci["dbname"],
                     "user": ci["user"], "password": ci.get("password", ""),
                     "search_path": [schema, "public"]},
            "options": {"options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
            "id_field": lay.key, "table": table, "geom_field": "geom",
            "storage_crs": "http://www.opengis.net/def/crs/EPSG/0/25832",
            "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                    "http://www.opengis.net/def/crs/EPSG/0/25832",
                    "http://www.opengis.net/def/crs/EPSG/0/4258"],
        }
        # The properties in the style source's order (the provider keeps it).
        properties = [f for f in lay.fields if f != lay.key]
        if properties:
            provider["properties"] = properties
        resources[name] = {
            "type": "collection", "title": title,
            "description": f"{title} (öffentliche Sicht {view}); keine Eigentümerdaten",
            "keywords": ["Kataster", "ALKIS"],
            "links": [{"type": "text/html", "rel": "license", "title": pub.licence,
                       "href": pub.licence_url}],
            "extents": {"spatial": {"bbox": list(bbox_wgs84 or (5.8, 47.2, 15.1, 55.1)),
                                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [provider],
        }
    return {
        "server": {"bind": {"host": "127.0.0.1", "port": 0}, "url": f"{base_url}/ogcapi",
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8",
                   "language": "de-DE", "limits": {"default_items": 100, "max_items": 10000},
                   # The pages' maps: our own WMS in MapServer's tile mode, no tile server
                   # on the internet.
                   "map": {"url": f"{base_url}/kacheln/{{z}}/{{x}}/{{y}}.png",
                           "attribution": pub.attribution},
                   **({"templates": {"path": str(pages[0]), "static": str(pages[1])},
                       "locale_dir": str(pages[2])} if pages else {})},
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "Kataster OGC API Features",
                               "description": "Öffentliche Katasterdaten; keine Eigentümerdaten",
                               "keywords": ["Kataster"], "keywords_type": "theme",
                               "terms_of_service": pub.licence, "url": base_url},
            "license": {"name": pub.licence, "url": pub.licence_url},
            "provider": {"name": pub.organisation, "url": base_url},
            "contact": {"name": pub.contact_name, "position": pub.organisation,
                        **({"email": pub.contact_email} if pub.contact_email else {})},
        },
        "resources": resources,
    }


def _transform_extent(extent, crs):
    box = Transformer.from_crs(25832, crs, always_xy=True).transform_bounds(*extent)
    return tuple(round(v, 1) for v in box)


def _extent(db):
    with db.connect() as conn:
        row = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
                           " (SELECT ST_Extent(geom) e FROM kataster.flurstueck) x").fetchone()
    if row[0] is None:
        return (340000.0, 5685000.0, 370000.0, 5710000.0)
    return tuple(round(v, 1) for v in row)


class Server:
    """The running services; use as a context manager or call :meth:`stop`."""

    def __init__(self, db, run_dir, host="127.0.0.1", port=8080, workers=2, with_ogcapi=True,
                 service=None, publisher=None, karten=None):
        # MapServer and pygeoapi connect as ``service`` (a read-only role), default ``db``.
        self.db = service or db
        self.publisher = publisher or Publisher()
        self.karten = Path(karten).resolve() if karten is not None else None
        self.run = Path(run_dir).resolve()
        self.host, self.port = host, port
        self.workers = workers
        self.with_ogcapi = with_ogcapi
        self.pids = []
        self.procs = []

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    def prepare(self):
        for need in (MAPSERV, shutil.which("spawn-fcgi"), shutil.which("nginx")):
            if not need or not os.path.exists(need):
                raise KatasterError("MapServer, spawn-fcgi or nginx is missing (run 'make setup', "
                                    "which installs cgi-mapserver, spawn-fcgi and nginx-light)")
        if self.run.exists():
            self._kill_stale_workers()
            shutil.rmtree(self.run)
        for d in ("tmp/body", "tmp/fastcgi", "tmp/proxy", "tmp/uwsgi", "tmp/scgi", "www"):
            (self.run / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.run, 0o700)
        self._check_read_only()
        extent = _extent(self.db)
        for name, crs in MAP_CRS.items():
            (self.run / f"{name}.map").write_text(mapfile(self.db.url, self.base_url, extent,
                                                          self.publisher, self.karten, crs),
                                                  encoding="utf-8")
            os.chmod(self.run / f"{name}.map", 0o600)
        _templates(self.run)
        (self.run / "mapserver.conf").write_text(
            f'CONFIG\n  ENV\n    MS_MAP_PATTERN "^{self.run}/"\n'
            f'    MS_MAPFILE "{self.run}/kataster.map"\n    PROJ_DATA "/usr/share/proj"\n'
            '  END\n  MAPS\n' + "".join(f'    "{name}" "{self.run}/{name}.map"\n'
                                          for name in MAP_CRS) + '  END\nEND\n',
            encoding="utf-8")
        self.ogc_port = free_port()
        (self.run / "nginx.conf").write_text(nginx_conf(self.run, self.host, self.port,
                                                        self.ogc_port), encoding="utf-8")
        self._page(extent)

    def _check_read_only(self):
        """The services should connect as a role that can change nothing: say so if not."""
        with self.db.connect() as conn:
            role, writes = conn.execute(
                "SELECT current_user, rolsuper OR has_schema_privilege('kataster', 'CREATE')"
                " OR has_table_privilege('kataster.ax_flurstueck', 'INSERT')"
                " FROM pg_roles WHERE rolname = current_user").fetchone()
        if writes:
            log.warning("the map services connect as %s, which may change the data; set "
                        "database.service_url to a read-only role (a member of kataster_leser, "
                        "see SECURITY.md)", role)

    def _page(self, extent):
        leaflet = WEB / "node_modules" / "leaflet" / "dist"
        if not (leaflet / "leaflet.js").exists():
            raise KatasterError(f"Leaflet is not installed in {WEB}/node_modules "
                                "(run 'make setup', which runs npm install there)")
        shutil.copytree(leaflet, self.run / "www" / "leaflet")
        html = (WEB / "index.html").read_text(encoding="utf-8")
        tr = Transformer.from_crs(25832, 4326, always_xy=True)
        lon0, lat0 = tr.transform(extent[0], extent[1])
        lon1, lat1 = tr.transform(extent[2], extent[3])
        html = html.replace("__BOUNDS__", json.dumps([[lat0, lon0], [lat1, lon1]]))
        html = html.replace("__FSK_PATTERN__", json.dumps(kennzeichen.PATTERN))
        html = html.replace("__LAYERS__", json.dumps([
            {"name": lay.name, "title": lay.title,
             "legend": [name for name, *_ in lay.served()]} for lay in LAYERS]))
        sheets, years = 0, []
        if self.karten is not None:
            with self.db.connect() as conn:
                sheets, years = conn.execute(sql_text("exports/karte_jahre.sql")).fetchone()
        html = html.replace("__KARTEN__", json.dumps({"blaetter": sheets, "jahre": years}))
        (self.run / "www" / "index.html").write_text(html, encoding="utf-8")

    def start(self):
        # Checked before anything is started or stopped: a busy port, or another instance
        # serving from this state directory, is refused without touching its processes.
        self._claim()
        _check_port_free(self.host, self.port)
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _claim(self):
        """Hold a lock on the state directory's serve lock file for the life of this process:
        a second `kataster serve` on the same state would replace the first one's run
        directory and stop its MapServer workers."""
        import fcntl

        lock = self.run.parent / (self.run.name + ".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(lock, "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "?"
            self._lock.close()
            raise KatasterError(f"another 'kataster serve' (process {holder}) serves from this "
                                f"state directory ({self.run.parent}); stop it first, or use "
                                "another --state-dir") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(str(os.getpid()))
        self._lock.flush()

    def _start(self):
        self.prepare()
        env = dict(os.environ, MAPSERVER_CONFIG_FILE=str(self.run / "mapserver.conf"),
                   PROJ_DATA="/usr/share/proj")
        out = subprocess.run(["spawn-fcgi", "-s", str(self.run / "mapserv.sock"),
                              "-F", str(self.workers), "-M", "0600", "--", MAPSERV],
                             env=env, capture_output=True, text=True, timeout=30)
        for line in (out.stdout + out.stderr).splitlines():
            if "PID:" in line:
                self.pids.append(int(line.rsplit("PID:", 1)[1].strip()))
        if out.returncode != 0 or not self.pids:
            self.stop()
            raise KatasterError(f"spawn-fcgi failed: {out.stderr.strip() or out.stdout.strip()}")
        # spawn-fcgi daemonises the workers, so they cannot die with a killed launcher; the
        # next start in this run directory stops them (see _kill_stale_workers).
        (self.run / "mapserv.pids").write_text("\n".join(map(str, self.pids)) + "\n")
        self.procs.append(subprocess.Popen(
            ["nginx", "-c", str(self.run / "nginx.conf"), "-p", str(self.run)],
            stdout=subprocess.DEVNULL, stderr=open(self.run / "nginx.out", "w"),
            preexec_fn=service_child))
        if self.with_ogcapi:
            self._start_pygeoapi()
        self._wait()
        return self

    def _start_pygeoapi(self):
        import yaml

        cfg = self.run / "pygeoapi.yml"
        pages = pygeoapi_pages(self.run / "pygeoapi")
        extent = _extent(self.db)
        tr = Transformer.from_crs(25832, 4326, always_xy=True)
        west, south = tr.transform(extent[0], extent[1])
        east, north = tr.transform(extent[2], extent[3])
        bbox = tuple(round(v, 6) for v in (west, south, east, north))
        cfg.write_text(yaml.safe_dump(pygeoapi_config(self.db.url, self.base_url, pages, bbox,
                                                      self.publisher),
                                      allow_unicode=True, sort_keys=False), encoding="utf-8")
        os.chmod(cfg, 0o600)
        openapi = self.run / "openapi.yml"
        env = dict(os.environ, PYGEOAPI_CONFIG=str(cfg), PYGEOAPI_OPENAPI=str(openapi))
        bindir = Path(sys.executable).parent
        with open(openapi, "w") as fh:
            gen = subprocess.run([str(bindir / "pygeoapi"), "openapi", "generate", str(cfg)],
                                 env=env, stdout=fh, stderr=subprocess.PIPE, text=True,
                                 timeout=120)
        if gen.returncode != 0:
            raise KatasterError(f"pygeoapi openapi generate failed: {gen.stderr[-500:]}")
        self.procs.append(subprocess.Popen(
            [str(bindir / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{self.ogc_port}",
             "--timeout", "120", "pygeoapi.flask_app:APP"], env=env,
            stdout=subprocess.DEVNULL, stderr=open(self.run / "pygeoapi.log", "w"),
            preexec_fn=service_child))

    def _wait(self, timeout=60):
        import urllib.request

        deadline = time.monotonic() + timeout
        urls = [f"{self.base_url}/wms?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0"]
        if self.with_ogcapi:
            urls.append(f"{self.base_url}/ogcapi/collections?f=json")
        for url in urls:
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=10) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    logs = ""
                    for name in ("nginx-error.log", "nginx.out", "pygeoapi.log"):
                        f = self.run / name
                        if f.exists():
                            logs += f"\n{name}: {f.read_text()[-800:]}"
                    self.stop()
                    raise KatasterError(f"the services did not come up at {url}{logs}")
                time.sleep(0.2)

    def _kill_stale_workers(self):
        """KILL MapServer workers left by a launcher that was killed (they carry our config)."""
        pidfile = self.run / "mapserv.pids"
        if not pidfile.exists():
            return
        marker = f"MAPSERVER_CONFIG_FILE={self.run / 'mapserver.conf'}".encode()
        for pid in map(int, pidfile.read_text().split()):
            try:
                with open(f"/proc/{pid}/environ", "rb") as fh:
                    if marker in fh.read().split(b"\0"):
                        os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass

    def stop(self, grace=5.0):
        """TERM every child, wait, then KILL what is left (by pid)."""
        pids = self.pids + [p.pid for p in self.procs]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for pid in pids:
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.pids, self.procs = [], []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # reap our own zombie children (spawn-fcgi's are reparented to init)
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
