"""The served layers and their styles, defined once.

This is the one style source: MapServer's mapfile classes and legends (``exporters.serving.mapfile``),
the QGIS styles embedded in GeoPackage exports and the QGIS project (``exporters.qgis``), the
map page and the tests are all made from it. Only public views are served, and only the
attributes listed in ``fields`` leave the server (``gml_include_items``/``ows_include_items``),
so no personal data can be served.

The cartography follows the Liegenschaftskarte as far as the AdV's presentation rules are
described in public references (the Signaturenkatalog itself is not at hand): black parcel
boundaries with the Flurstücksnummer as Zähler over a fraction bar over Nenner, buildings by
function class with house numbers, street names, dashed Flur and dash-dotted Gemarkung
boundaries with their names, boundary points at large scales, pale land-use areas at small
scales. DESIGN.md lists what differs from the official map.

Colours are "R G B" strings; widths are in pixels at MapServer's 72 dpi (QGIS gets the same
widths in millimetres: 1 px = 0.3528 mm).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Style:
    """One class of a layer: the rows it draws and how, with its German legend text.

    ``where`` is a tuple of conditions ``(field, operator, value)`` that must all hold
    (operators ``=``, ``>=``, ``<``); empty: every row the classes before it did not take.
    Lines and outlines are solid, or ``dash`` ("dash": Flurgrenze, "dashdot": Gemarkungsgrenze).
    Points are circles of ``size`` pixels; size 0 draws no symbol (a layer of texts only)."""

    title: str
    where: tuple = ()
    outline: str = "0 0 0"
    fill: str | None = None
    width: float = 0.6
    size: float = 0
    dash: str = ""


# Dash patterns in pixels (MapServer PATTERN); QGIS draws its pen styles of the same names.
DASHES = {"dash": (8, 4), "dashdot": (10, 3, 2, 3)}
QGIS_DASHES = {"": "solid", "dash": "dash", "dashdot": "dash dot"}


@dataclass(frozen=True)
class Part:
    """A geometry type of a layer that mixes them (the findings): its own view and kind."""

    name: str
    view: str
    kind: str


@dataclass(frozen=True)
class Label:
    """The text a layer prints. ``mapserver`` is a MapServer text expression, or for the
    parcel number a dict: the text with Nenner (``with_nenner``) and without; ``qgis`` the
    same as a QGIS expression; ``columns`` are (name, SQL) the served query adds for it.
    Lines of a text are separated by "|" for MapServer (WRAP) and by a newline in QGIS."""

    mapserver: object
    qgis: str
    size: float
    color: str
    columns: tuple = ()
    priority: int = 5         # 1-10: which text stays where texts would collide
    inside: bool = True       # polygons: only where the text fits inside


@dataclass(frozen=True)
class Layer:
    """One served layer: its name and title, the view it reads, its fields and key, its
    classes, lines and labels at which scales, and where it is clipped on the web map."""

    name: str
    title: str
    view: str
    kind: str                 # POLYGON | LINE | POINT
    key: str                  # unique id column
    fields: tuple             # attributes that may leave the server
    styles: tuple             # Style classes, first match wins; legends show each
    max_scale: int = 0        # 0: no limit; otherwise shown only at larger scales
    label: str | None = None  # which label (LABELS)
    label_max_scale: int = 0
    label_min_scale: int = 0
    opacity: int = 100
    parts: tuple = field(default_factory=tuple)   # per geometry type (served as a group)
    # Few large polygons (the district maps): where no text is placed, the web map's tiles
    # get them clipped to the tile (bench/README.md, "serve.py").
    clip: bool = False

    def served(self):
        """(name, view, kind, group) of what this layer becomes in a service, an export or a
        project: itself, or one per geometry type grouped under its name."""
        if not self.parts:
            return [(self.name, self.view, self.kind, None)]
        return [(p.name, p.view, p.kind, self.name) for p in self.parts]

    def title_of(self, kind):
        """The title of this layer's part of geometry type ``kind``."""
        if not self.parts:
            return self.title
        return f"{self.title}: " + ("Flächen" if kind == "POLYGON" else "Punkte")


SEVERITY = (Style("Fehler", (("severity", "=", "error"),), "160 0 0", "230 40 40", 1.0, 9),
            Style("Warnung", (("severity", "=", "warning"),), "170 90 0", "255 165 0", 1.0, 8),
            Style("Hinweis", (), "0 70 150", "80 150 230", 1.0, 7))


def _nutzung(title, art, fill):
    return Style(title, (("nutzungsart", "=", art),), fill, fill, 0.2)


# Land use in pale versions of the Liegenschaftskarte's colours (settlement reddish, industry
# grey-violet, green spaces and forest green, farmland pale yellow, traffic grey, water blue).
NUTZUNG = (
    _nutzung("Wohnbaufläche", "Wohnbauflaeche", "250 232 225"),
    _nutzung("Fläche gemischter Nutzung", "FlaecheGemischterNutzung", "248 236 222"),
    _nutzung("Industrie- und Gewerbefläche", "IndustrieUndGewerbeflaeche", "236 230 240"),
    _nutzung("Sport-, Freizeit- und Erholungsfläche", "SportFreizeitUndErholungsflaeche",
             "232 245 222"),
    _nutzung("Wald", "Wald", "215 235 205"),
    _nutzung("Landwirtschaft", "Landwirtschaft", "252 248 222"),
    _nutzung("Straßenverkehr", "Strassenverkehr", "242 242 242"),
    _nutzung("Fließgewässer", "Fliessgewaesser", "220 235 250"),
    _nutzung("Stehendes Gewässer", "StehendesGewaesser", "220 235 250"),
    Style("Sonstige Nutzung", (), "240 244 236", "240 244 236", 0.2),
)

LAYERS = (
    Layer("nutzung", "Tatsächliche Nutzung", "kataster.nutzung", "POLYGON", "id",
          ("id", "gml_id", "nutzungsart"), NUTZUNG, max_scale=100000),
    Layer("flurstueck", "Flurstücke", "kataster.flurstueck", "POLYGON", "id",
          ("id", "gml_id", "flurstueckskennzeichen", "gemarkung", "gemarkungsnummer",
           "flurnummer", "zaehler", "nenner", "amtliche_flaeche", "lage"),
          (Style("Flurstücksgrenze", outline="0 0 0", width=0.6),),
          max_scale=25000, label="flurstuecksnummer", label_max_scale=2500),
    Layer("gebaeude", "Gebäude", "kataster.gebaeude", "POLYGON", "id",
          ("id", "gml_id", "gebaeudefunktion", "bezeichnung", "lage"),
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
    Layer("grenzpunkt", "Grenzpunkte", "kataster.grenzpunkt", "POINT", "id",
          ("id", "punktkennung", "abmarkung_marke", "abgemarkt"),
          (Style("Grenzpunkt, abgemarkt", (("abgemarkt", "=", True),), "0 0 0", "0 0 0", 0.6,
                 5),
           Style("Grenzpunkt, ohne Marke", (), "0 0 0", "255 255 255", 0.6, 4)),
          max_scale=1500),
    Layer("hausnummer", "Hausnummern", "kataster.hausnummer", "POINT", "id",
          ("id", "hausnummer", "herkunft"), (Style("Hausnummer"),), max_scale=2500,
          label="hausnummer", label_max_scale=2500),
    Layer("strassenname", "Straßennamen", "kataster.strassenname", "POINT", "id",
          ("id", "strasse", "gemarkungsnummer", "flurnummer", "herkunft"),
          (Style("Straßenname"),), max_scale=2500, label="strassenname",
          label_max_scale=2500),
    Layer("flur", "Fluren", "kataster.flur_karte", "POLYGON", "id",
          ("id", "gemarkungsnummer", "gemarkung", "flurnummer", "herkunft"),
          (Style("Flurgrenze", outline="0 90 200", width=1.4, dash="dash"),), max_scale=25000,
          label="flur", label_max_scale=10000, label_min_scale=2500, clip=True),
    Layer("gemarkung", "Gemarkungen", "kataster.gemarkung_karte", "POLYGON", "id",
          ("id", "gemarkungsnummer", "gemarkung", "herkunft"),
          (Style("Gemarkungsgrenze", outline="200 0 0", width=2.2, dash="dashdot"),),
          label="gemarkung", label_min_scale=10000, clip=True),
    Layer("befund", "Befunde (öffentlich)", "kataster.befund", "POINT", "id",
          ("id", "rule", "severity", "status", "object_id", "message"), SEVERITY,
          max_scale=50000,
          parts=(Part("befund_flaeche", "kataster.befund_flaeche", "POLYGON"),
                 Part("befund_punkt", "kataster.befund_punkt", "POINT"))),
)


# The Flurstücksnummer as on the Liegenschaftskarte: Zähler over a fraction bar over Nenner
# where a Nenner exists, the Zähler alone otherwise; the bar is as long as the longer number.
LABELS = {
    "flurstuecksnummer": Label(
        {"with_nenner": '("[zaehler]" + "|" + "[bruchstrich]" + "|" + "[nenner]")',
         "without": '"[zaehler]"'},
        "CASE WHEN coalesce(\"nenner\", '') <> '' THEN concat(\"zaehler\", '\\n', "
        "rpad('', max(length(to_string(\"zaehler\")), length(\"nenner\")), '─'), '\\n', "
        "\"nenner\") ELSE to_string(\"zaehler\") END", 8, "0 0 0",
        columns=(("bruchstrich",
                  "repeat('─', greatest(length(zaehler::text), length(nenner)))"),),
        priority=6),
    "hausnummer": Label('"[hausnummer]"', '"hausnummer"', 6.5, "0 0 0", priority=4,
                        inside=False),
    "strassenname": Label('"[strasse]"', '"strasse"', 9, "60 60 60", priority=7,
                          inside=False),
    "flur": Label('("Flur " + "[flurnummer]")', "'Flur ' || to_string(\"flurnummer\")", 9,
                  "0 70 170", priority=8),
    "gemarkung": Label('"[gemarkung]"', '"gemarkung"', 11, "170 0 0", priority=9),
}


def label_of(layer):
    """The layer's Label, or None for a layer without texts."""
    return LABELS[layer.label] if layer.label else None


def condition(style, dialect):
    """A class's condition as SQL (for MapServer's DATA: NULLs fall to the last class) or as a
    QGIS expression; None: all remaining rows."""
    if not style.where:
        return None
    quote = (lambda n: f'"{n}"') if dialect == "qgis" else (lambda n: n)
    return " AND ".join(f"{quote(name)} {op} {_literal(value)}"
                        for name, op, value in style.where)


def _literal(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def class_case(layer):
    """SQL giving each row the number of its class (first match wins), or None for layers of
    one class."""
    if len(layer.styles) < 2:
        return None
    whens = " ".join(f"WHEN {condition(s, 'sql')} THEN {k}"
                     for k, s in enumerate(layer.styles) if s.where)
    return f"CASE {whens} ELSE {len(layer.styles) - 1} END"
