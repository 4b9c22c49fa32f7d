"""The map page (``exporters/web/index.html`` with Leaflet): filled in with the data's extent,
the key grammar for the search, the layers and their legends, and the scanned maps' years."""

from __future__ import annotations

import json
import shutil

from pyproj import Transformer

from exporters.layers import LAYERS
from exporters.serving.settings import WEB
from pipeline import kennzeichen
from pipeline.errors import KatasterError
from schemas import sql_text


def write(www, db, extent, karten=None):
    """Write the page and Leaflet into ``www`` (the data's ``extent`` in EPSG:25832; the years
    of the scanned maps are read when ``karten`` is served)."""
    leaflet = WEB / "node_modules" / "leaflet" / "dist"
    if not (leaflet / "leaflet.js").exists():
        raise KatasterError(f"Leaflet is not installed in {WEB}/node_modules "
                            "(run 'make setup', which runs npm install there)")
    shutil.copytree(leaflet, www / "leaflet")
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
    if karten is not None:
        with db.connect() as conn:
            sheets, years = conn.execute(sql_text("exports/karte_jahre.sql")).fetchone()
    html = html.replace("__KARTEN__", json.dumps({"blaetter": sheets, "jahre": years}))
    (www / "index.html").write_text(html, encoding="utf-8")
