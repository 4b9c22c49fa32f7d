"""Who owns each current parcel: the ownership chain resolved into eigentum_aufgeloest.

Flurstück ─istGebucht→ Buchungsstelle ─istBestandteilVon→ Buchungsblatt ←istBestandteilVon─
Namensnummer ─benennt→ Person. A booking on a fictive sheet (blattart 5000) or a divided
property (buchungsart 1101, 1102, 2201) is owned through the bookings that point at it with
``an`` (e.g. Wohnungseigentum 1301, Miteigentum 1302), recursively, multiplying their shares.
Rights on a parcel (Erbbaurecht 2101, …) pointing at an ordinary booking are listed too, with
their own buchungsart, so they stay distinguishable from ownership. Shares are exact fractions.
Communities: a Namensnummer without ``benennt`` heads the members numbered below it (DIN 1421).

The chain is a graph walk over dictionaries (one pass per parcel), a chunk of parcels at a time,
each chunk reading only the records its chains can reach, so memory does not grow with the
delivery; reading and writing are set-based. Dangling references become findings, never crashes.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

import shapely

from pipeline.owner_rules import EDGES
from pipeline.rules import Finding

DIVIDED = {1101, 1102, 2201}
FICTIVE = 5000
RECHTSGEMEINSCHAFT = {1000: "Erbengemeinschaft", 2000: "Gütergemeinschaft",
                      3000: "BGB-Gesellschaft", 9999: "Sonstiges"}


def fraction(z, n):
    """An exact share from decimal strings such as ``1.000000000000`` / ``3``; None where the
    share is missing or its denominator is 0 (owner.shares reports that, the walk goes on)."""
    if z is None or n is None or Fraction(str(n)) == 0:
        return None
    return Fraction(str(z)) / Fraction(str(n))


@dataclass
class Stelle:
    id: str
    buchungsart: int | None
    anteil: Fraction | None
    blatt: str | None
    an: list


def din_path(number):
    """``0001.02.00.00.00`` → (1, 2)."""
    parts = [int(p) for p in (number or "").replace(" ", "").split(".") if p.isdigit()]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def sheet_owners(namensnummern):
    """Owners of one sheet: list of (person, share or None, rechtsgemeinschaft)."""
    rows = sorted(namensnummern, key=lambda r: din_path(r["nr"]))
    headers = {din_path(r["nr"]): r for r in rows if not r["benennt"]}
    out = []
    for r in rows:
        if not r["benennt"]:
            continue
        path = din_path(r["nr"])
        share = r["anteil"]
        community = None
        for k in range(len(path) - 1, 0, -1):
            head = headers.get(path[:k])
            if head is None:
                continue
            if community is None:
                community = RECHTSGEMEINSCHAFT.get(head["art"], head.get("beschrieb")) or \
                    "Rechtsgemeinschaft"
            if head["anteil"] is not None:
                share = head["anteil"] * share if share is not None else None
        out.append((r["benennt"], share, community))
    return out


# The walk reads, per chunk of parcels, only the bookings that can lie on their chains. The
# an edges (owner_rules.EDGES: owner_an) and this copy of the Namensnummern, both temporary
# (dropped with the import's transaction) and indexed, make those look-ups cheap.
NAMES = """
    CREATE TEMPORARY TABLE ownership_names ON COMMIT DROP AS
    SELECT gml_id, laufende_nummer_din1421 AS nr, anteil_zaehler AS z, anteil_nenner AS n,
           art_der_rechtsgemeinschaft AS art, ist_bestandteil_von AS blatt, benennt,
           attrs->>'beschriebDerRechtsgemeinschaft' AS beschrieb
    FROM kataster_privat.ax_namensnummer WHERE endet IS NULL"""
CHUNK = 20_000      # parcels per step: memory stays bounded whatever the size of the delivery


def resolve(conn, run_id, chunk=CHUNK):
    """Recompute ``kataster_privat.eigentum_aufgeloest`` for the import run ``run_id``;
    returns the findings of the walk (recorded with the run; validation has its own
    set-based rules in :mod:`pipeline.owner_rules`).

    Parcels are walked ``chunk`` at a time (ordered by gml_id); each step reads only the
    bookings, sheets and Namensnummern its parcels' chains can reach, and writes its rows.
    """
    conn.execute(EDGES)
    conn.execute("CREATE INDEX ON owner_an (dst)")
    conn.execute(NAMES)
    conn.execute("CREATE INDEX ON ownership_names (blatt)")
    conn.execute("ANALYZE owner_an")
    conn.execute("ANALYZE ownership_names")
    findings = []
    last = ""
    while True:
        # Only parcels from sources that carry bookings (NAS); open products have no owners.
        parcels = conn.execute(
            "SELECT gml_id, flurstueckskennzeichen, ist_gebucht,"
            " ST_AsBinary(ST_PointOnSurface(geom)) FROM kataster.ax_flurstueck"
            " WHERE endet IS NULL AND source = 'nas' AND gml_id > %s ORDER BY gml_id LIMIT %s",
            (last, chunk)).fetchall()
        if not parcels:
            return findings
        last = parcels[-1][0]
        stellen = {gid: Stelle(gid, art, fraction(z, n), blatt, an or [])
                   for gid, art, z, n, blatt, an in conn.execute(
                       "SELECT gml_id, buchungsart, anteil_zaehler, anteil_nenner,"
                       " ist_bestandteil_von, an FROM kataster_privat.ax_buchungsstelle"
                       " WHERE endet IS NULL AND gml_id = ANY(%s)", (_reachable(conn, parcels),))}
        sheets = sorted({st.blatt for st in stellen.values() if st.blatt})
        blaetter = {gid: (kz, art) for gid, kz, art in conn.execute(
            "SELECT gml_id, buchungsblattkennzeichen, blattart FROM kataster_privat.ax_buchungsblatt"
            " WHERE endet IS NULL AND gml_id = ANY(%s)", (sheets,))}
        names = defaultdict(list)
        for gid, nr, z, n, art, blatt, benennt, beschrieb in conn.execute(
                "SELECT gml_id, nr, z, n, art, blatt, benennt, beschrieb FROM ownership_names"
                " WHERE blatt = ANY(%s)", (sheets,)):
            names[blatt].append({"id": gid, "nr": nr, "anteil": fraction(z, n), "art": art,
                                 "benennt": benennt, "beschrieb": beschrieb})
        rows = _walk(parcels, stellen, blaetter, names, findings)
        _write(conn, rows, {gid: fsk for gid, fsk, _, _ in parcels}, run_id)


def _reachable(conn, parcels):
    """The bookings the chains of these parcels can lie on: their own bookings and, level by
    level, every booking that points (an) at one of them; so each one's referrers too. (Level by
    level with ``= ANY`` on the indexed edges: a recursive query was planned as a full scan of
    the edges per level.)"""
    seen = {sid for _, _, gebucht, _ in parcels for sid in gebucht or []}
    frontier = sorted(seen)
    while frontier:
        found = {src for (src,) in conn.execute(
            "SELECT DISTINCT src FROM owner_an WHERE dst = ANY(%s)", (frontier,))}
        frontier = sorted(found - seen)
        seen |= found
    return sorted(seen)


def _walk(parcels, stellen, blaetter, names, findings):
    """The owners of these parcels as rows (parcel, sheet, buchungsart, person, share,
    community); dangling references are appended to ``findings``."""
    referrers = defaultdict(list)
    for st in stellen.values():
        for target in st.an:
            referrers[target].append(st)
    owners_cache = {}
    rows = []

    def owners_of_sheet(blatt):
        if blatt not in owners_cache:
            owners_cache[blatt] = sheet_owners(names.get(blatt, []))
        return owners_cache[blatt]

    def walk(sid, factor, seen, parcel):
        if sid in seen:
            findings.append(Finding("owner.chain", sid, f"booking {sid}: the an chain of parcel "
                                    f"{parcel} returns to itself ({' → '.join([*seen, sid])})",
                                    related=[parcel]))
            return
        st = stellen.get(sid)
        if st is None:
            findings.append(Finding("owner.chain", sid, f"booking {sid} reached from parcel "
                                    f"{parcel} is not stored (dead end)", related=[parcel]))
            return
        kz, blattart = blaetter.get(st.blatt, (None, None))
        refs = referrers.get(sid, [])
        if blattart == FICTIVE or st.buchungsart in DIVIDED:
            if not refs:
                findings.append(Finding("owner.chain", sid, f"divided booking {sid} of parcel "
                                        f"{parcel}: no booking points at it (dead end)",
                                        related=[parcel]))
            for r in refs:
                walk(r.id, factor * (r.anteil if r.anteil is not None else 1), seen + [sid],
                     parcel)
            return
        for person, share, community in owners_of_sheet(st.blatt):
            total = share * factor if share is not None else (factor if factor != 1 else None)
            rows.append((parcel, kz, st.buchungsart, person, total, community))
        for r in refs:    # rights on this booking (Erbbaurecht …), listed with their buchungsart
            walk(r.id, Fraction(1), seen + [sid], parcel)

    for gid, fsk, gebucht, wkb in parcels:
        if not gebucht:
            findings.append(Finding("owner.unbooked", gid, f"parcel {fsk} has no booking "
                                    "(istGebucht missing)",
                                    geom=shapely.from_wkb(bytes(wkb)) if wkb else None))
            continue
        for sid in gebucht:
            if sid not in stellen:
                findings.append(Finding("owner.unbooked", gid, f"parcel {fsk}: its booking {sid}"
                                        " is not stored", related=[sid],
                                        geom=shapely.from_wkb(bytes(wkb)) if wkb else None))
                continue
            walk(sid, Fraction(1), [], gid)
    return rows


def _write(conn, rows, fsk_of, run_id):
    """COPY resolved rows into eigentum_aufgeloest (kept per run: change lists compare them;
    the view shows the newest)."""
    buf = io.StringIO()
    for parcel, kz, art, person, share, community in rows:
        z = n = r"\N"
        if share is not None:
            z, n = str(share.numerator), str(share.denominator)
        fields = [parcel, fsk_of[parcel], kz, art, person, z, n, community, run_id]
        buf.write("\t".join(r"\N" if v is None else str(v).replace("\t", " ").replace("\n", " ")
                            for v in fields) + "\n")
    with conn.cursor().copy(
            "COPY kataster_privat.eigentum_aufgeloest (flurstueck_gml_id, flurstueckskennzeichen,"
            " buchungsblatt, buchungsart, person_gml_id, anteil_zaehler, anteil_nenner,"
            " rechtsgemeinschaft, run_id) FROM STDIN") as copy:
        copy.write(buf.getvalue())
