"""The served layers and their styles, defined once.

This is the one style source: MapServer's mapfile classes and legends (``exporters.serve``),
the QGIS styles embedded in GeoPackage exports and the QGIS project (``exporters.qgis``), the
map page and the tests are all made from it. Only public views are served, and only the
attributes listed in ``fields`` leave the server (``gml_include_items``/``ows_include_items``),
so no personal data can be served.

Colours are "R G B" strings; widths are in pixels at MapServer's 72 dpi (QGIS gets the same
widths in millimetres: 1 px = 0.3528 mm).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Style:
    """One class of a layer: the rows it draws and how, with its German legend text.

    ``where`` is a tuple of conditions ``(field, operator, value)`` that must all hold
    (operators ``=``, ``>=``, ``<``); empty: every row the classes before it did not take."""

    title: str
    where: tuple = ()
    outline: str = "0 0 0"
    fill: str | None = None
    width: float = 0.6
    size: float = 0           # points only: the circle's diameter in pixels


@dataclass(frozen=True)
class Part:
    """A geometry type of a layer that mixes them (the findings): its own view and kind."""

    name: str
    view: str
    kind: str


@dataclass(frozen=True)
class Layer:
    name: str
    title: str
    view: str
    kind: str                 # POLYGON | LINE | POINT
    key: str                  # unique id column
    fields: tuple             # attributes that may leave the server
    styles: tuple             # Style classes, first match wins; legends show each
    max_scale: int = 0        # 0: no limit; otherwise shown only at larger scales
    label: str | None = None  # which label (LABELS; see label_text)
    label_max_scale: int = 0
    label_min_scale: int = 0
    opacity: int = 100
    parts: tuple = field(default_factory=tuple)   # per geometry type (served as a group)


SEVERITY = (Style("Fehler", (("severity", "=", "error"),), "160 0 0", "230 40 40", 1.0, 9),
            Style("Warnung", (("severity", "=", "warning"),), "170 90 0", "255 165 0", 1.0, 8),
            Style("Hinweis", (), "0 70 150", "80 150 230", 1.0, 7))

LAYERS = (
    Layer("nutzung", "Tatsächliche Nutzung", "kataster.nutzung", "POLYGON", "gml_id",
          ("gml_id", "nutzungsart"),
          (Style("Tatsächliche Nutzung", outline="160 190 160", fill="225 240 220", width=0.2),),
          max_scale=25000, opacity=60),
    Layer("flurstueck", "Flurstücke", "kataster.flurstueck", "POLYGON", "gml_id",
          ("gml_id", "flurstueckskennzeichen", "gemarkung", "gemarkungsnummer", "flurnummer",
           "zaehler", "nenner", "amtliche_flaeche", "lage"),
          (Style("Flurstücksgrenze", outline="40 40 40", width=0.6),),
          max_scale=25000, label="flurstuecksnummer", label_max_scale=2500),
    Layer("gebaeude", "Gebäude", "kataster.gebaeude", "POLYGON", "gml_id",
          ("gml_id", "gebaeudefunktion", "bezeichnung", "lage"),
          (Style("Wohngebäude", (("gebaeudefunktion", ">=", 1000),
                                 ("gebaeudefunktion", "<", 2000)), "120 60 60", "215 150 150",
                 0.3),
           Style("Gebäude für Wirtschaft oder Gewerbe", (("gebaeudefunktion", ">=", 2000),
                                                          ("gebaeudefunktion", "<", 3000)),
                 "90 90 90", "190 190 190", 0.3),
           Style("Gebäude für öffentliche Zwecke", (("gebaeudefunktion", ">=", 3000),
                                                     ("gebaeudefunktion", "<", 4000)),
                 "120 60 60", "230 120 120", 0.3),
           Style("Sonstiges Gebäude", (), "110 110 110", "215 215 215", 0.3)),
          max_scale=10000),
    Layer("flur", "Fluren", "kataster.flur_karte", "POLYGON", "id",
          ("id", "gemarkungsnummer", "gemarkung", "flurnummer", "herkunft"),
          (Style("Flurgrenze", outline="0 90 200", width=1.2),), max_scale=100000,
          label="flur", label_max_scale=10000, label_min_scale=2500),
    Layer("gemarkung", "Gemarkungen", "kataster.gemarkung_karte", "POLYGON", "id",
          ("id", "gemarkungsnummer", "gemarkung", "herkunft"),
          (Style("Gemarkungsgrenze", outline="200 0 0", width=2.0),),
          label="gemarkung", label_max_scale=100000, label_min_scale=10000),
    Layer("befund", "Befunde (öffentlich)", "kataster.befund", "POINT", "id",
          ("id", "rule", "severity", "status", "object_id", "message"), SEVERITY,
          max_scale=50000,
          parts=(Part("befund_flaeche", "kataster.befund_flaeche", "POLYGON"),
                 Part("befund_punkt", "kataster.befund_punkt", "POINT"))),
)


# Labels: the Flurstücksnummer is Zähler/Nenner where a Nenner exists, the Zähler alone
# otherwise (MapServer: two classes, see exporters.serve); districts carry their names in the
# overview scales. (text for MapServer, QGIS expression, size in points, colour)
LABELS = {
    "flurstuecksnummer": ({"with_nenner": '("[zaehler]" + "/" + "[nenner]")',
                           "without": '"[zaehler]"'},
                          "CASE WHEN coalesce(\"nenner\", '') <> '' THEN concat(\"zaehler\", "
                          "'/', \"nenner\") ELSE to_string(\"zaehler\") END", 8, "0 0 0"),
    "flur": ('("Flur " + "[flurnummer]")', "'Flur ' || to_string(\"flurnummer\")", 9,
             "0 70 170"),
    "gemarkung": ('"[gemarkung]"', '"gemarkung"', 11, "170 0 0"),
}


def label_text(layer, dialect):
    """The label of a layer for ``mapserver`` (for the parcels a dict: with and without
    Nenner) or ``qgis``, with its size and colour; None for layers without labels."""
    if not layer.label:
        return None
    mapserver, qgis, size, color = LABELS[layer.label]
    return (mapserver if dialect == "mapserver" else qgis), size, color


def condition(style, dialect):
    """A class's condition as SQL (for MapServer's DATA: NULLs fall to the last class) or as a
    QGIS expression; None: all remaining rows."""
    if not style.where:
        return None
    quote = (lambda n: f'"{n}"') if dialect == "qgis" else (lambda n: n)
    return " AND ".join(f"{quote(name)} {op} " + (f"'{value}'" if isinstance(value, str)
                                                   else str(value))
                        for name, op, value in style.where)


def class_case(layer):
    """SQL giving each row the number of its class (first match wins), or None for layers of
    one class."""
    if len(layer.styles) < 2:
        return None
    whens = " ".join(f"WHEN {condition(s, 'sql')} THEN {k}"
                     for k, s in enumerate(layer.styles) if s.where)
    return f"CASE {whens} ELSE {len(layer.styles) - 1} END"
