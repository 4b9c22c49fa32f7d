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
from pipeline.rules import RULES

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


def _map_png(db, findings, gemarkung):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.views import read

    fluren = read(db, "flur", gemarkung=gemarkung)
    fig, ax = plt.subplots(figsize=(9, 9), dpi=90)
    if len(fluren):
        fluren.boundary.plot(ax=ax, color="#999999", linewidth=0.4)
    for severity, colour in COLOURS.items():
        pts = [shapely.point_on_surface(f.geom) for f in findings
               if f.severity == severity and f.geom is not None and not f.geom.is_empty]
        if pts:
            gpd.GeoSeries(pts).plot(ax=ax, color=colour, markersize=18,
                                    label=f"{SEVERITY_DE[severity]} ({len(pts)})")
    if findings:
        ax.legend(loc="lower right")
    ax.set_axis_off()
    ax.set_title("Befunde (Fluren grau)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(db, result, out, gemarkung=None, findings=None):
    """Write the HTML report (one file, no external resources).

    ``findings`` defaults to the public findings of the run (owner-related ones only when the
    caller passes them, after checking the role)."""
    findings = [f for f in result.findings if not f.private] if findings is None else findings
    e = html.escape
    by_rule = Counter((f.rule, f.severity) for f in findings)
    by_sev = Counter(f.severity for f in findings)
    ids = [f.object_id for f in findings if f.object_id]
    with db.connect() as conn:
        where = conn.execute(
            "SELECT f.gml_id, f.gemarkungsnummer, coalesce(v.gemarkung, f.gemarkungsnummer),"
            " f.flurnummer, f.flurstueckskennzeichen, f.zaehler, f.nenner"
            " FROM kataster.ax_flurstueck f LEFT JOIN kataster.flurstueck v USING (gml_id)"
            " WHERE f.endet IS NULL AND f.gml_id = ANY(%s)", (ids,)).fetchall()
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
    def objekt(object_id):
        if object_id in named:
            label, fsk = named[object_id]
            return (f"{e(label)}<br><code>{e(fsk)}</code><br>"
                    f"<small>{e(object_id)}</small>")
        return f"<code>{e(object_id or '–')}</code>"

    rows_f = "".join(
        f"<tr><td class='n'>{f.id if f.id is not None else '–'}</td>"
        f"<td>{e(RULES[f.rule].titel)}</td>"
        f"<td class='{f.severity}'>{SEVERITY_DE[f.severity]}</td><td>{STATUS_DE[f.status]}</td>"
        f"<td>{objekt(f.object_id)}</td><td>{e(f.message)}</td></tr>"
        for f in findings[:1000])
    more = f"<p>… und {len(findings) - 1000} weitere (siehe GeoPackage/JSON).</p>" \
        if len(findings) > 1000 else ""
    png = _map_png(db, findings, gemarkung)
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
img {{ max-width: 100%; border: 1px solid #ccc; }}
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
<h2>Karte der Befunde</h2>
<img id="karte" alt="Karte der Befunde" src="data:image/png;base64,{png}">
<h2>Befunde</h2>
<table id="befunde"><tr><th>Nr.</th><th>Regel</th><th>Schweregrad</th><th>Status</th>
<th>Objekt</th><th>Meldung</th></tr>{rows_f}</table>{more}
</body></html>"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out
