"""pygeoapi (OGC API Features): its configuration, every served layer a collection read through
our provider, and its pages made to load nothing from outside and to speak German."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from exporters.layers import LAYERS
from exporters.serving.settings import STATEMENT_TIMEOUT_MS, WEB, Publisher, conninfo

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


def pygeoapi_config(url, base_url, pages=None, bbox_wgs84=None, pub=None):
    """pygeoapi's configuration: every served layer as a collection reading its view (through
    our provider), the pages from ``pages`` (see :func:`pygeoapi_pages`), their map drawn from
    our own WMS, the collections' extent ``bbox_wgs84`` (the data's)."""
    pub = pub or Publisher()
    ci = conninfo(url)
    resources = {}
    # Every layer, and the parts of a mixed one (the findings as points and as areas).
    collections = [(lay, lay.name, lay.view, lay.title) for lay in LAYERS] + [
        (lay, name, view, lay.title_of(kind)) for lay in LAYERS if lay.parts
        for name, view, kind, _group in lay.served()]
    for lay, name, view, title in collections:
        schema, table = view.split(".")
        provider = {
            "type": "feature",
            "name": "exporters.serving.provider.KatasterPostgreSQLProvider",
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
