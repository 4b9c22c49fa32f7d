"""The served layers, defined once: MapServer's mapfile, the map page and the tests use them.

Only public views are served, and only the attributes listed in ``fields`` leave the server
(``gml_include_items``/``ows_include_items``), so no personal data can be served.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    name: str
    title: str
    view: str
    kind: str                 # POLYGON | LINE | POINT
    key: str                  # unique id column
    fields: tuple             # attributes that may leave the server
    outline: str              # "R G B"
    fill: str | None = None
    width: float = 0.6
    max_scale: int = 0        # 0: no limit; otherwise shown only at larger scales
    label: str | None = None  # MapServer label expression
    label_max_scale: int = 0
    opacity: int = 100
    geometry_sql: str = "geom"  # expression for the served geometry


LAYERS = (
    Layer("nutzung", "Tatsächliche Nutzung", "kataster.nutzung", "POLYGON", "gml_id",
          ("gml_id", "nutzungsart"), "160 190 160", fill="225 240 220", width=0.2,
          max_scale=25000, opacity=60),
    Layer("flurstueck", "Flurstücke", "kataster.flurstueck", "POLYGON", "gml_id",
          ("gml_id", "flurstueckskennzeichen", "gemarkung", "gemarkungsnummer", "flurnummer",
           "zaehler", "nenner", "amtliche_flaeche", "lage"), "40 40 40", width=0.6,
          max_scale=25000,
          label="(\"[zaehler]\" + \"/\" + \"[nenner]\")", label_max_scale=2500),
    Layer("gebaeude", "Gebäude", "kataster.gebaeude", "POLYGON", "gml_id",
          ("gml_id", "gebaeudefunktion", "bezeichnung", "lage"), "120 60 60", fill="200 160 160",
          width=0.3, max_scale=10000),
    Layer("flur", "Fluren", "kataster.flur_karte", "POLYGON", "id",
          ("id", "gemarkungsnummer", "gemarkung", "flurnummer", "herkunft"), "0 90 200", width=1.2,
          max_scale=100000),
    Layer("gemarkung", "Gemarkungen", "kataster.gemarkung_karte", "POLYGON", "id",
          ("id", "gemarkungsnummer", "gemarkung", "herkunft"), "200 0 0", width=2.0),
    Layer("befund", "Befunde (öffentlich)", "kataster.befund", "POINT", "id",
          ("id", "rule", "severity", "status", "object_id", "message"), "230 120 0",
          fill="255 200 0", width=1.5, max_scale=50000,
          geometry_sql="ST_PointOnSurface(geom)"),
)
