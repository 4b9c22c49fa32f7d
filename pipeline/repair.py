"""Explicit repair of invalid parcel geometries (never automatic).

A proposal is GEOS ``make_valid`` of the delivered geometry. It is refused when it changes the
area by more than ``validation.repair_max_area_change`` (relative) or splits the parcel into
more pieces than were delivered. Applying keeps the delivered geometry in
``kataster.repair_log`` with both areas, makes the repaired one current (views, exports),
and marks the finding ``fixed``. Identifiers are never changed and no parcel is dropped: the
number of distinct current Flurstückskennzeichen is checked before commit.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

import shapely

from pipeline.errors import KatasterError
from pipeline.runs import Run
from pipeline.validation import findings
from pipeline.views import refresh_derived
from schemas import queries

QUERIES = queries("repair")


@dataclass
class Proposal:
    finding_id: int
    gml_id: str
    beginnt: object
    flurstueckskennzeichen: str
    delivered: object
    repaired: object
    ok: bool
    reason: str

    @property
    def area_change(self):
        a = self.delivered.area
        return (self.repaired.area - a) / a if a else float("inf")


def _polygonal(geom):
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    for p in shapely.get_parts(geom):
        if p.geom_type in ("MultiPolygon", "GeometryCollection"):
            parts += [q for q in shapely.get_parts(p) if q.geom_type == "Polygon"]
    return shapely.MultiPolygon(parts)


def propose(db, max_area_change, finding_ids=None):
    """Repair proposals for open ``geometry.invalid`` findings of current parcels."""
    with db.connect() as conn:
        rows = conn.execute(QUERIES["candidates"], {
            "ids": list(finding_ids) if finding_ids else None}).fetchall()
    out = []
    for fid, gml_id, beginnt, fsk, wkb in rows:
        delivered = shapely.from_wkb(bytes(wkb))
        repaired = _polygonal(shapely.make_valid(delivered))
        parts_before = len(shapely.get_parts(delivered))
        parts_after = len(shapely.get_parts(repaired))
        p = Proposal(fid, gml_id, beginnt, fsk, delivered, repaired, True, "")
        if repaired.is_empty:
            p.ok, p.reason = False, "nothing polygonal remains"
        elif parts_after > parts_before:
            p.ok, p.reason = False, (f"would split the parcel into {parts_after} pieces "
                                     f"(delivered: {parts_before})")
        elif abs(p.area_change) > max_area_change:
            p.ok, p.reason = False, (f"would change the area by {p.area_change:+.2%} "
                                     f"(allowed ±{max_area_change:.2%})")
        else:
            p.reason = f"area {delivered.area:.2f} → {repaired.area:.2f} m² ({p.area_change:+.3%})"
        out.append(p)
    return out


def apply(db, proposals, lock_timeout=60.0):
    """Apply the acceptable proposals in one transaction; returns the repair run id.

    A repair changes parcels: it takes the import lock like an import."""
    good = [p for p in proposals if p.ok]
    with db.connect(autocommit=True) as conn, \
            Run(conn, "repair", {"findings": [p.finding_id for p in good]}, lock_timeout) as run:
        with conn.transaction():
            run_id = run.id
            before = conn.execute(QUERIES["parcel_count"]).fetchone()
            for p in good:
                row = {"gml_id": p.gml_id, "beginnt": p.beginnt, "finding": p.finding_id,
                       "delivered": shapely.to_wkb(p.delivered),
                       "repaired": shapely.to_wkb(p.repaired), "area_delivered": p.delivered.area,
                       "area_repaired": p.repaired.area, "run": run_id}
                log_id = conn.execute(QUERIES["log"], row).fetchone()[0]
                conn.execute(QUERIES["replace_geometry"], row)
                findings.set_status(conn, "fixed", getpass.getuser(),
                                    f"repaired (repair_log {log_id})", ids=[p.finding_id])
            after = conn.execute(QUERIES["parcel_count"]).fetchone()
            if after != before:
                raise KatasterError(f"repair would change the parcels ({before} → {after}); "
                                    "nothing was changed")
            # A repaired parcel is valid now: the derived district maps include it.
            refresh_derived(conn)
            # Last in the transaction: a failure before it leaves the run to be marked failed.
            run.finish("committed", counts={"repaired": len(good)})
    return run_id
