"""The one rule registry.

Every finding names a rule by its stable dotted id. Each rule says how it is checked: by a
vectorised stage (``stage``: the stage's name), by a SQL file (``sql``: the file in
``schemas/sql/rules/``), by the owner rules (``owner``) or only while importing (``import``:
importers and import steps record it). This one list drives ``--rules``, the dispatch of
:func:`pipeline.validation.run.validate`, the report's rule table and the documentation test.
Importers record findings with the same ids as the validation, so a problem found while
importing and one found by ``kataster validate`` are the same finding (same stable key).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PluginError

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Rule:
    """A rule: its stable id, severity, English title (for developers and logs), German title
    and explanation for the people who read reports and the map page (no configuration keys
    there), how it is checked (``kind``: stage, sql, owner or import; ``source``: the stage's
    name or the SQL file), its parameters (keys of the ``validation`` configuration section)
    and whether its findings are owner data."""

    id: str
    severity: str
    title: str
    kind: str
    source: str | None = None
    params: tuple = ()
    private: bool = False
    titel: str = ""
    erklaerung: str = ""


RULES = {
    r.id: r
    for r in (
        Rule("geometry.invalid", "error", "Geometry is not valid (GEOS reason and location)",
             kind="stage", source="geometry"),
        Rule("geometry.empty", "error", "Geometry is empty or missing",
             kind="stage", source="geometry"),
        Rule("geometry.sliver", "warning",
             "Parcel is a sliver: smaller than validation.sliver_max_area or thinner than "
             "validation.sliver_min_width",
             kind="stage", source="sliver", params=("sliver_max_area", "sliver_min_width")),
        Rule("coverage.overlap", "error",
             "Two current parcels overlap by more than validation.overlap_min_area",
             kind="stage", source="overlap", params=("overlap_min_area",)),
        Rule("coverage.gap", "error",
             "A hole enclosed by parcels (any size), or an open gap narrower than "
             "validation.gap_max_width",
             kind="stage", source="gap", params=("gap_max_width",)),
        Rule("coverage.precision", "info",
             "Gaps and overlaps below the data's coordinate precision (smaller than "
             "validation.precision_min_area or narrower than validation.precision_min_width), "
             "counted in one finding per run (by the overlap and the gap stage)",
             kind="stage", source="gap", params=("precision_min_area", "precision_min_width")),
        Rule("district.outside", "warning",
             "Parcel lies mainly inside another Flur or Gemarkung than its identifier says",
             kind="stage", source="district", params=("outside_min_share",)),
        Rule("id.syntax", "error",
             "Flurstückskennzeichen malformed or disagreeing with land/Gemarkung/Flur/Zähler/Nenner",
             kind="sql", source="id_syntax.sql"),
        Rule("id.duplicate", "error", "Two current parcels carry one Flurstückskennzeichen",
             kind="sql", source="id_duplicate.sql"),
        Rule("history.open_versions", "error", "More than one open version of an object",
             kind="sql", source="history_open_versions.sql"),
        Rule("history.order", "error", "A version ends before it begins, or lifetimes overlap",
             kind="sql", source="history_order.sql"),
        Rule("area.deviation", "warning",
             "amtliche Fläche and computed area differ by more than "
             "validation.area_abs + validation.area_rel × amtliche Fläche",
             kind="sql", source="area_deviation.sql", params=("area_abs", "area_rel", "area_utm_correction")),
        Rule("crs.assumed", "info", "Coordinate system was not stated and had to be assumed",
             kind="import"),
        Rule("crs.kept", "info",
             "Positions in a height system or a system that cannot be transformed reliably "
             "were kept as attributes, without a map geometry (count per system)",
             kind="import"),
        Rule("update.target_missing", "warning", "An update names an object that is not stored",
             kind="import"),
        Rule("nba.missing_parts", "warning",
             "A later NBA delivery arrives while parts of an earlier one of the same profile "
             "are still missing",
             kind="import"),
        Rule("karte.lage", "warning",
             "A scanned map's footprint does not meet the Flur or Gemarkung it claims",
             kind="import"),
        Rule("karte.genauigkeit", "warning",
             "A scanned map's ground control points fit with an RMS above karten.rms_warning",
             kind="import"),
        Rule("owner.unbooked", "error", "Parcel without a booking, or its booking not found",
             private=True,
             kind="owner"),
        Rule("owner.chain", "error", "Cycle or dead end in the an chain of bookings",
             private=True,
             kind="owner"),
        Rule("owner.no_parcel", "error", "Booking that reaches no parcel", private=True,
             kind="owner"),
        Rule("owner.sheet_without_owner", "error", "Sheet (not fictive) without any owner",
             private=True,
             kind="owner"),
        Rule("owner.orphan", "warning",
             "Namensnummer, Person or Anschrift reached from nothing", private=True,
             kind="owner"),
        Rule("owner.shares", "error",
             "Shares of a sheet, community or divided property do not add up to 1",
             private=True,
             kind="owner"),
    )
}


# What the people reading reports and the map page see: a German title and an explanation of
# what was found and what to do (tests/validation/test_validation.py checks that every rule has both).
DEUTSCH = {
    "geometry.invalid": ("Ungültige Geometrie",
                         "Die Fläche ist geometrisch ungültig (z. B. sich selbst schneidend); "
                         "sie wurde so gespeichert, wie sie geliefert wurde. Ort und Grund "
                         "stehen in der Meldung; die Berichtigung veranlasst die Katasterbehörde "
                         "oder ein Reparaturvorschlag (kataster repair)."),
    "geometry.empty": ("Geometrie fehlt",
                       "Das Objekt hat keine oder eine leere Geometrie."),
    "geometry.sliver": ("Splitterfläche",
                        "Das Flurstück ist sehr klein oder sehr schmal; oft ein Rest einer "
                        "Digitalisierung. Prüfen, ob es ein echtes Flurstück ist."),
    "coverage.overlap": ("Überlappung",
                         "Zwei aktuelle Flurstücke überdecken sich; die überlappende Fläche ist "
                         "markiert."),
    "coverage.gap": ("Lücke",
                     "Zwischen Flurstücken liegt eine Fläche, die zu keinem Flurstück gehört "
                     "(ein Loch oder ein schmaler Spalt)."),
    "coverage.precision": ("Abweichungen unter der Koordinatengenauigkeit",
                           "Winzige Lücken und Überlappungen, kleiner als die Genauigkeit der "
                           "Koordinaten; zusammengefasst in einem Hinweis je Prüflauf."),
    "district.outside": ("Flurstück außerhalb seiner Flur oder Gemarkung",
                         "Das Flurstück liegt überwiegend in einer anderen Flur oder Gemarkung, "
                         "als sein Kennzeichen angibt."),
    "id.syntax": ("Fehlerhaftes Flurstückskennzeichen",
                  "Das Flurstückskennzeichen ist nicht richtig aufgebaut oder passt nicht zu "
                  "Land, Gemarkung, Flur, Zähler und Nenner des Flurstücks."),
    "id.duplicate": ("Flurstückskennzeichen doppelt",
                     "Zwei aktuelle Flurstücke tragen dasselbe Flurstückskennzeichen; beide "
                     "wurden übernommen."),
    "history.open_versions": ("Mehrere gültige Fassungen",
                              "Von einem Objekt sind mehrere Fassungen zugleich gültig."),
    "history.order": ("Fassungen in falscher Reihenfolge",
                      "Eine Fassung endet, bevor sie beginnt, oder Lebenszeiten überlappen."),
    "area.deviation": ("Flächenabweichung",
                       "Amtliche Fläche und aus der Geometrie berechnete Fläche weichen mehr "
                       "als zulässig voneinander ab."),
    "crs.assumed": ("Koordinatensystem angenommen",
                    "Die Lieferung nannte kein Koordinatensystem; es wurde angenommen."),
    "crs.kept": ("Positionen ohne Kartengeometrie übernommen",
                 "Positionen in einem Höhensystem oder einem nicht sicher umrechenbaren System "
                 "wurden als Attribute übernommen, ohne Kartengeometrie."),
    "update.target_missing": ("Aktualisierung ohne Ziel",
                              "Eine Aktualisierung (NBA) nennt ein Objekt, das nicht gespeichert "
                              "ist; sie wurde übergangen, weil die Lieferung das erlaubt."),
    "nba.missing_parts": ("NBA-Lieferung unvollständig",
                          "Von einer früheren NBA-Lieferung desselben Profils fehlen noch Teile, "
                          "während eine spätere eintrifft."),
    "karte.lage": ("Historische Karte außerhalb ihres Bezirks",
                   "Die georeferenzierte Karte berührt die Flur oder Gemarkung nicht, die sie "
                   "darstellen soll: Passpunkte oder Angaben zum Blatt prüfen."),
    "karte.genauigkeit": ("Historische Karte ungenau eingepasst",
                          "Die Passpunkte der Karte weichen im Mittel (RMS) mehr als die "
                          "Warnschwelle von der gewählten Transformation ab."),
    "owner.unbooked": ("Flurstück ohne Buchung",
                       "Das Flurstück ist nicht gebucht, oder seine Buchungsstelle fehlt."),
    "owner.chain": ("Buchungskette unterbrochen",
                    "Die Kette der Buchungsstellen (an) hat einen Kreis oder endet ins Leere."),
    "owner.no_parcel": ("Buchung ohne Flurstück",
                        "Eine Buchungsstelle erreicht kein Flurstück."),
    "owner.sheet_without_owner": ("Buchungsblatt ohne Eigentümer",
                                  "Ein Buchungsblatt (nicht fiktiv) hat keinen Eigentümer."),
    "owner.orphan": ("Unverbundene Eigentümerangaben",
                     "Eine Namensnummer, Person oder Anschrift wird von nichts erreicht."),
    "owner.shares": ("Anteile ergeben nicht 1",
                     "Die Anteile eines Buchungsblatts, einer Gemeinschaft oder eines "
                     "aufgeteilten Grundstücks ergeben zusammen nicht 1."),
}
RULES = {rule_id: Rule(r.id, r.severity, r.title, r.kind, r.source, r.params, r.private,
                       *DEUTSCH[rule_id])
         for rule_id, r in RULES.items()}


def rule(rule_id):
    """The registered rule ``rule_id``; unknown ids raise an error listing the valid ones."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise PluginError(f"unknown rule {rule_id!r}; known rules: {', '.join(sorted(RULES))}") from None



def of_kind(*kinds):
    """The ids of the rules checked in these ways (``stage``, ``sql``, ``owner``, ``import``)."""
    return [r.id for r in RULES.values() if r.kind in kinds]
