"""Findings handed out: a GeoPackage for QGIS and a one-file HTML report (German labels).

Only public findings are written (owner-related ones live in ``kataster_privat`` and are not
passed here by default), so neither output contains personal data.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from exporters.files import write_gpkg_layer
from pipeline.validation.rules import RULES
from schemas import queries

REPORT = queries("report")

SEVERITY_DE = {"error": "Fehler", "warning": "Warnung", "info": "Hinweis"}
STATUS_DE = {"open": "offen", "accepted": "akzeptiert", "fixed": "behoben"}
COLOURS = {"error": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}


def findings_frame(findings):
    """Findings as a GeoDataFrame (EPSG:25832)."""
    rows = [{"id": f.id, "regel": f.rule, "schwere": f.severity, "status": f.status,
             "objekt": f.object_id, "bezug": ",".join(f.related), "meldung": f.message}
            for f in findings]
    geoms = [f.geom for f in findings]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=["id", "regel", "schwere", "status",
                                                        "objekt", "bezug", "meldung"]),
                            geometry=gpd.GeoSeries(geoms, crs=25832))


def write_gpkg(findings, out):
    """One layer per geometry kind (befund_punkt, befund_flaeche, befund_linie, befund_ohne_ort)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    frame = findings_frame(findings)
    dims = shapely.get_dimensions(frame.geometry.values)
    kinds = {"befund_punkt": dims == 0, "befund_linie": dims == 1, "befund_flaeche": dims == 2,
             "befund_ohne_ort": frame.geometry.isna().to_numpy()}
    written = {}
    for layer, mask in kinds.items():
        part = frame[mask]
        if layer == "befund_ohne_ort":
            if len(part):
                write_gpkg_layer(pd.DataFrame(part.drop(columns="geometry")), out, layer,
                                 append=out.exists())
        elif len(part):
            if layer == "befund_flaeche":
                part = part.set_geometry(part.geometry.apply(
                    lambda g: g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])))
            write_gpkg_layer(part, out, layer, append=out.exists(),
                             promote_to_multi=layer == "befund_linie")
        written[layer] = int(len(part))
    from exporters.qgis import embed_style

    for layer in ("befund_punkt", "befund_flaeche"):
        if written.get(layer):
            embed_style(out, layer, "geometry")
    return written


# The report stays one file that opens offline, also for a city of a million parcels: maps are
# small palette PNGs (one per Gemarkung), and the list of findings is embedded as data that the
# page shows 100 at a time, up to LIST_BYTES; beyond that the report says how many are only in
# the GeoPackage/JSON.
LIST_BYTES = 12_000_000
PAGE = 100


def _gemarkungen(db, findings):
    """{finding index: (Gemarkungsnummer, name)} for located findings, by the Gemarkung map
    (0006/0013) their point lies in; the Gemarkung outlines; the Flur lines of each Gemarkung
    (from the materialised ``flur_karte``, read once for all maps)."""
    located = [(k, shapely.point_on_surface(f.geom)) for k, f in enumerate(findings)
               if f.geom is not None and not f.geom.is_empty]
    with db.connect() as conn:
        rows = conn.execute(REPORT["gemarkung_maps"]).fetchall()
        lines = conn.execute(REPORT["flur_lines"]).fetchall()
    if not rows or not located:
        return {}, {}, {}
    fluren = {}
    for nummer, wkb in lines:
        fluren.setdefault(nummer, []).append(shapely.from_wkb(bytes(wkb)))
    outlines = gpd.GeoDataFrame({"nummer": [r[0] for r in rows], "name": [r[1] for r in rows]},
                                geometry=shapely.from_wkb([bytes(r[2]) for r in rows]),
                                crs=25832)
    points = gpd.GeoDataFrame({"k": [k for k, _ in located]},
                              geometry=[p for _, p in located], crs=25832)
    hits = gpd.sjoin(points, outlines, how="left", predicate="within")
    hits = hits[~hits.index.duplicated()]
    places = {int(k): ((n, name) if isinstance(n, str) else None)
              for k, n, name in zip(hits["k"], hits["nummer"], hits["name"], strict=True)}
    return places, dict(zip(outlines["nummer"], outlines.geometry, strict=True)), fluren


def _map_png(findings, outline=None, fluren=()):
    """A map of one Gemarkung (its ``outline`` and Flur lines ``fluren``; neither for the
    findings outside every Gemarkung): Flur lines grey, every finding in its severity's colour (areas filled, and a marker on each
    so that small ones stay visible), errors on top; the legend below the map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots(figsize=(7, 7), dpi=80)
    if fluren:
        gpd.GeoSeries(fluren).plot(ax=ax, color="#aaaaaa", linewidth=0.4)
    if outline is not None:
        gpd.GeoSeries([outline]).boundary.plot(ax=ax, color="#555555", linewidth=1.0)
    handles = []
    for severity in ("info", "warning", "error"):
        own = [f.geom for f in findings if f.severity == severity]
        if not own:
            continue
        areas = [g for g in own if g.geom_type in ("Polygon", "MultiPolygon")]
        if areas:
            gpd.GeoSeries(areas).plot(ax=ax, color=COLOURS[severity], alpha=0.5)
        points = gpd.GeoSeries(shapely.point_on_surface(own))
        handles.append(ax.scatter(points.x, points.y, s=30, color=COLOURS[severity],
                                  edgecolors="black", linewidths=0.4, zorder=3,
                                  label=f"{SEVERITY_DE[severity]} ({len(own)})"))
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.legend(handles=handles[::-1], loc="upper center", bbox_to_anchor=(0.5, -0.01),
              ncol=3, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    small = io.BytesIO()
    Image.open(buf).convert("RGB").quantize(palette=_palette(),
                                           dither=Image.Dither.NONE).save(
        small, format="PNG", optimize=True)
    return base64.b64encode(small.getvalue()).decode()


def _palette():
    """A fixed palette for the maps: greys, and each severity's colour with its lighter tones
    (for areas and anti-aliased edges), so that quantising keeps the colours exact."""
    from PIL import Image

    colours = [(255, 255, 255), (0, 0, 0)] + [(v, v, v) for v in range(17, 255, 17)]
    for hexa in COLOURS.values():
        rgb = tuple(int(hexa[i:i + 2], 16) for i in (1, 3, 5))
        for t in (0.0, 0.25, 0.5, 0.75):
            colours.append(tuple(round(c + (255 - c) * t) for c in rgb))
        colours.append(tuple(round(c * 0.6) for c in rgb))
    flat = [v for c in colours for v in c]
    image = Image.new("P", (1, 1))
    image.putpalette(flat + flat[:3] * (256 - len(colours)))
    return image


def write_report(db, result, out, gemarkung=None, findings=None):
    """Write the HTML report (one file, no external resources).

    ``findings`` defaults to the public findings of the run (owner-related ones only when the
    caller passes them, after checking the role)."""
    findings = [f for f in result.findings if not f.private] if findings is None else findings
    # Errors first, then by rule: what the list shows first (and keeps, for very long lists).
    order = {"error": 0, "warning": 1, "info": 2}
    findings = sorted(findings, key=lambda f: (order[f.severity], f.rule,
                                               f.id if f.id is not None else 0))
    e = html.escape
    by_rule = Counter((f.rule, f.severity) for f in findings)
    by_sev = Counter(f.severity for f in findings)
    ids = [f.object_id for f in findings if f.object_id]
    with db.connect() as conn:
        where = conn.execute(REPORT["parcels_named"], {"ids": ids}).fetchall()
    district = {g: (num or "–", name or "–", flur if flur is not None else "–")
                for g, num, name, flur, *_ in where}
    # Objects as surveyors name them: Gemarkung Flur Zähler/Nenner and the
    # Flurstückskennzeichen; the object id only beside them.
    named = {g: (f"{name or num or '–'} Flur {flur if flur is not None else '–'} "
                 f"{z if z is not None else '–'}{'/' + n if n else ''}", fsk or "")
             for g, num, name, flur, fsk, z, n in where}
    top = Counter(district[f.object_id] for f in findings if f.object_id in district)
    rows_rules = "".join(
        f"<tr><td>{e(RULES[rule].titel)}<br><code>{e(rule)}</code></td>"
        f"<td class='{sev}'>{SEVERITY_DE[sev]}</td><td class='n'>{n}</td>"
        f"<td>{e(RULES[rule].erklaerung)}</td></tr>"
        for (rule, sev), n in sorted(by_rule.items()))
    rows_sev = "".join(f"<tr><td class='{s}'>{SEVERITY_DE[s]}</td><td class='n'>{by_sev.get(s, 0)}"
                       f"</td></tr>" for s in SEVERITY_DE)
    rows_top = "".join(f"<tr><td>{e(str(name))} ({e(str(num))})</td><td class='n'>{flur}</td>"
                       f"<td class='n'>{n}</td></tr>" for (num, name, flur), n in top.most_common(15))
    places, outlines, fluren = _gemarkungen(db, findings)
    groups = {}
    for k, f in enumerate(findings):
        if k in places or (f.geom is not None and not f.geom.is_empty):
            groups.setdefault(places.get(k), []).append(f)
    maps = []
    for key, own in sorted(groups.items(), key=lambda kv: (kv[0] is None, -len(kv[1]))):
        counts = Counter(f.severity for f in own)
        summary = ", ".join(f"{counts[s]} {SEVERITY_DE[s]}" for s in SEVERITY_DE if counts[s])
        title = (f"Gemarkung {key[1]} ({key[0]})" if key else "Außerhalb der Gemarkungen")
        anchor = f"karte-{key[0] if key else 'ausserhalb'}"
        png = (_map_png(own, outlines.get(key[0]), fluren.get(key[0], ())) if key
               else _map_png(own))
        maps.append((anchor, title, summary, len(own), png))
    index = "".join(f"<li><a href='#{a}'>{e(t)}</a>: {n} Befunde ({e(su)})</li>"
                    for a, t, su, n, _ in maps)
    figures = "".join(
        f"<figure id='{a}'><img class='karte' alt='Karte der Befunde: {e(t)}' "
        f"src='data:image/png;base64,{png}'><figcaption>{e(t)}: {n} Befunde ({e(su)})"
        "</figcaption></figure>" for a, t, su, n, png in maps)

    def gemarkung_of(k):
        return f"{places[k][1]} ({places[k][0]})" if places.get(k) else "–"

    # The list as data (escaped when the page shows it), 100 rows a page.
    import json

    rows, size = [], 0
    for k, f in enumerate(findings):
        label, fsk = named.get(f.object_id, ("", ""))
        row = [f.id if f.id is not None else "–", RULES[f.rule].titel, f.severity,
               STATUS_DE[f.status], label, fsk, f.object_id or "–", f.message,
               gemarkung_of(k)]
        size += len(json.dumps(row, ensure_ascii=False)) + 1
        if size > LIST_BYTES:
            break
        rows.append(row)
    data = json.dumps(rows, ensure_ascii=False).replace("</", "<\\/")
    more = (f"<p id='weitere'>Die Liste zeigt {len(rows)} von {len(findings)} Befunden (nach "
            "Schweregrad und Regel); alle stehen im GeoPackage und im JSON der Prüfung.</p>"
            if len(rows) < len(findings) else "")
    scope = f"Gemarkung {gemarkung}" if gemarkung else "alle Gemarkungen"
    stamp = datetime.now(UTC).strftime("%d.%m.%Y %H:%M UTC")
    doc = f"""<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8"><title>Prüfbericht Kataster</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #eee; }} td.n {{ text-align: right; }}
.error {{ color: #b00; font-weight: bold; }} .warning {{ color: #c60; }} .info {{ color: #036; }}
img.karte {{ max-width: 100%; border: 1px solid #ccc; }}
figure {{ margin: 1em 0; }} figcaption {{ font-weight: bold; }}
</style></head><body>
<h1>Prüfbericht Kataster</h1>
<p>Prüflauf {result.run_id} vom {stamp}, Umfang: {e(scope)}. {len(findings)} Befunde,
davon {by_sev.get('error', 0)} Fehler; {result.fixed} frühere Befunde sind behoben.</p>
<h2>Zusammenfassung nach Schweregrad</h2>
<table id="nach-schwere"><tr><th>Schweregrad</th><th>Anzahl</th></tr>{rows_sev}</table>
<h2>Zusammenfassung nach Regel</h2>
<table id="nach-regel"><tr><th>Regel</th><th>Schweregrad</th><th>Anzahl</th><th>Erklärung</th></tr>
{rows_rules}</table>
<h2>Gemarkungen und Fluren mit den meisten Befunden</h2>
<table id="nach-flur"><tr><th>Gemarkung</th><th>Flur</th><th>Befunde</th></tr>{rows_top}</table>
<h2>Karten der Befunde je Gemarkung</h2>
<ul id="karten">{index}</ul>
{figures}
<h2>Befunde</h2>
<p><label>Gemarkung <select id="filter-gemarkung"><option value="">alle</option></select></label>
<label>Schweregrad <select id="filter-schwere"><option value="">alle</option>
<option value="error">Fehler</option><option value="warning">Warnung</option>
<option value="info">Hinweis</option></select></label>
<button id="zurueck">‹ zurück</button> <span id="seite"></span>
<button id="weiter">weiter ›</button></p>
<table id="befunde"><thead><tr><th>Nr.</th><th>Regel</th><th>Schweregrad</th><th>Status</th>
<th>Objekt</th><th>Gemarkung</th><th>Meldung</th></tr></thead><tbody></tbody></table>{more}
<script id="befund-daten" type="application/json">{data}</script>
<script>
const SCHWERE = {{"error": "Fehler", "warning": "Warnung", "info": "Hinweis"}};
const alle = JSON.parse(document.getElementById("befund-daten").textContent);
const GROESSE = {PAGE};
let seite = 0, gezeigt = alle;
const wahl = document.getElementById("filter-gemarkung");
[...new Set(alle.map(r => r[8]))].sort().forEach(g => wahl.add(new Option(g, g)));
function text(s) {{ const d = document.createElement("div"); d.textContent = s; return d.innerHTML; }}
function zeige() {{
  const g = wahl.value, s = document.getElementById("filter-schwere").value;
  gezeigt = alle.filter(r => (!g || r[8] === g) && (!s || r[2] === s));
  const seiten = Math.max(1, Math.ceil(gezeigt.length / GROESSE));
  seite = Math.min(seite, seiten - 1);
  document.querySelector("#befunde tbody").innerHTML = gezeigt
    .slice(seite * GROESSE, (seite + 1) * GROESSE).map(r =>
      `<tr><td class="n">${{r[0]}}</td><td>${{text(r[1])}}</td>` +
      `<td class="${{r[2]}}">${{SCHWERE[r[2]]}}</td><td>${{r[3]}}</td>` +
      `<td>${{r[4] ? text(r[4]) + "<br><code>" + text(r[5]) + "</code><br><small>" +
                    text(r[6]) + "</small>" : "<code>" + text(r[6]) + "</code>"}}</td>` +
      `<td>${{text(r[8])}}</td><td>${{text(r[7])}}</td></tr>`).join("");
  document.getElementById("seite").textContent =
    `Seite ${{seite + 1}} von ${{seiten}} (${{gezeigt.length}} Befunde)`;
}}
wahl.onchange = document.getElementById("filter-schwere").onchange = () => {{ seite = 0; zeige(); }};
document.getElementById("zurueck").onclick = () => {{ seite = Math.max(0, seite - 1); zeige(); }};
document.getElementById("weiter").onclick = () => {{ seite += 1; zeige(); }};
zeige();
</script>
</body></html>"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out
