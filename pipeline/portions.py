"""NBA portions: delivery order, missing parts, and the acknowledgement for the authority.

One NBA delivery is (profilkennung, datum); its parts (``laufendeNummerVonGesamtzahl`` of
``gesamtzahl``) are spatial pieces that may arrive together or separately. Schleswig-Holstein
numbers parts from 1, Rheinland-Pfalz from 0: a delivery whose part 0 has been seen counts from
0, any other from 1.

The importer reads each file's ``AX_Portionskennung`` (``importers.nas_portion.read_portion``,
cheap: head and tail of the file); the run checks the order against what was applied (:func:`check`), records
the applied parts (:func:`record`) and, committed or failed, writes one ``AX_NBAQuittierung``
per delivery (:func:`acknowledge`).
"""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path
from xml.sax.saxutils import escape

from importers.nas_portion import portion_key, portion_time
from pipeline.errors import SourceError
from pipeline.validation.findings import Finding
from schemas import queries

QUERIES = queries("portions")


def _total(p):
    try:
        return int(p.get("gesamtzahl", ""))
    except ValueError:
        return None


def _missing(parts, total):
    """Part numbers of a delivery not in ``parts`` (numbered from 0 if part 0 exists)."""
    if not total:
        return []
    start = 0 if 0 in parts else 1
    return [n for n in range(start, start + total) if n not in parts]


def check(conn, portions, allow_older=False):
    """Refuse a delivery older than the newest applied delivery of its profile (unless
    ``allow_older``); warn where an earlier delivery of the profile still misses parts.
    ``portions``: (file, portion dict) of this run. Returns findings."""
    findings = []
    for profil in sorted({portion_key(p)[0] for _, p in portions}):
        ours = [(f, p) for f, p in portions if portion_key(p)[0] == profil]
        oldest = min(portion_time(portion_key(p)[1]) for _, p in ours)
        newest = conn.execute(QUERIES["newest_delivery"], {"profil": profil}).fetchone()
        if newest[0] is not None and oldest < newest[0] and not allow_older:
            first = min(ours, key=lambda fp: portion_time(portion_key(fp[1])[1]))[0]
            raise SourceError(first, f"NBA delivery {profil} of {_iso(oldest)} is older than "
                                     f"the newest applied delivery of that profile "
                                     f"({_iso(newest[0])}, {newest[1]})",
                              hint="deliveries are applied in order; after a human decision, "
                                   "--allow-older imports it anyway. Nothing was imported")
        rows = conn.execute(QUERIES["deliveries"], {"profil": profil}).fetchall()
        for datum, total, parts in rows:
            missing = _missing(set(parts), total)
            if missing and datum < oldest:
                findings.append(Finding(
                    "nba.missing_parts", f"{profil}@{_iso(datum)}",
                    f"NBA delivery {profil} of {_iso(datum)} still misses parts "
                    f"{', '.join(map(str, missing))} of {total}, and a later delivery of the "
                    "profile arrives"))
    return findings


def record(conn, run_id, portions):
    """Record the applied parts (a re-delivered part keeps its first run)."""
    with conn.cursor() as cur:
        cur.executemany(QUERIES["record"], [
            dict(zip(("profil", "datum", "teil"), portion_key(p), strict=True),
                 gesamtzahl=_total(p), datei=str(f), run=run_id) for f, p in portions])


def missing_parts(conn, profil=None):
    """{(profilkennung, datum): [missing part numbers]} of the recorded deliveries."""
    rows = conn.execute(QUERIES["all_deliveries"], {"profil": profil}).fetchall()
    out = {}
    for prof, datum, total, parts in rows:
        missing = _missing(set(parts), total)
        if missing:
            out[(prof, _iso(datum))] = missing
    return out


def _iso(moment):
    """An aware datetime as ISO 8601 in UTC (whatever the session's time zone)."""
    return moment.astimezone(UTC).isoformat()


def acknowledge(directory, run_id, portions, ok, message, missing):
    """Write one AX_NBAQuittierung per delivery of this run; returns the paths written.

    ``missing``: {(profilkennung, datum): [parts]} as :func:`missing_parts` gives it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    deliveries = {}
    for f, p in portions:
        deliveries.setdefault((portion_key(p)[0], p["datum"]), []).append((f, p))
    written = []
    ns = "http://www.adv-online.de/namespaces/adv/gid/6.0"
    for (profil, datum), parts in sorted(deliveries.items()):
        stamp = re.sub(r"[^0-9T]", "", datum)[:15]
        path = directory / f"{profil or 'ohne-profil'}_{stamp}_NBA_Quittierung_Lauf_{run_id}.xml"
        status = "true" if ok else "false"
        lines = ['<?xml version="1.0" encoding="UTF-8"?>',
                 f'<AX_NBAQuittierung xmlns="{ns}" xmlns:gml="http://www.opengis.net/gml/3.2">',
                 "  <ausgabeform>application/xml</ausgabeform>",
                 f"  <profilkennung>{escape(profil)}</profilkennung>",
                 f"  <gesamtNBAErfolgreich>{status}</gesamtNBAErfolgreich>",
                 f"  <uebernahmeprotokoll>{escape(message)}</uebernahmeprotokoll>"]
        for k, (f, p) in enumerate(sorted(parts, key=lambda fp: portion_key(fp[1]))):
            fields = "".join(f"<{k_}>{escape(v)}</{k_}>" for k_, v in p.items())
            text = ("Portion ohne Fehlermeldung übernommen" if ok else
                    "Portion nicht übernommen: " + message)
            lines += ["  <portionNBAErfolgreich>",
                      f'    <AX_Portion_Erfolgreich gml:id="Lauf{run_id}_{k}">',
                      f"      <portionskennung><AX_Portionskennung>{fields}"
                      "</AX_Portionskennung></portionskennung>",
                      f"      <erfolgreich>{status}</erfolgreich>",
                      f"      <uebernahmeprotokoll>{escape(text)} ({escape(Path(f).name)})"
                      "</uebernahmeprotokoll>",
                      "    </AX_Portion_Erfolgreich>",
                      "  </portionNBAErfolgreich>"]
        gaps = missing.get((profil, _iso(portion_time(datum))))
        if gaps:
            lines.append(f"  <!-- fehlende Portionen dieser Lieferung: "
                         f"{', '.join(map(str, gaps))} -->")
        lines.append("</AX_NBAQuittierung>")
        tmp = path.with_suffix(".part")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
