"""The scope of a validation after an import: what the run touched, and which findings can
depend on it.

An update names its objects (``touched``: every gml_id it delivered or ended). A finding can
change only if it is about one of them or lies where one of them lies or lay:

- per-object rules (``id.*``, ``area.deviation``, ``history.*``): findings naming a touched
  object, as object or related (``id.duplicate`` names the other parcels of its key);
- per-parcel stages (``geometry.*``, ``geometry.sliver``, ``district.outside``): also every
  current parcel whose extent meets the extent of a version of a touched parcel (``near``:
  the Flur maps a parcel is compared with change only there);
- coverage (``coverage.overlap``, ``coverage.gap``): also every finding whose place meets such
  an extent (``boxes``);
- owner rules: findings about the owner objects the touched ones reach (``owner``: parcels
  booked on touched bookings, the booking chains leading to touched bookings or to those
  touched parcels and bookings name, touched sheets and the sheets of touched Namensnummern,
  the Persons and Anschriften they name; :func:`pipeline.validation.owner.owner_findings_in_scope`).

A scoped validation computes exactly the findings inside the scope (each computed as a full
validation computes it) and marks fixed exactly the stored findings inside it that it did not
find again; findings outside keep their status. :meth:`Scope.contains` and the query
``mark_fixed_in_scope`` are the one predicate, in Python and in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from psycopg import sql

from pipeline.validation.findings import SCHEMAS, Finding
from pipeline.validation.rules import of_kind
from schemas import queries

QUERIES = queries("scope")
PER_PARCEL = ("geometry.invalid", "geometry.empty", "geometry.sliver", "district.outside")
SPATIAL = ("coverage.overlap", "coverage.gap")
OWNER = tuple(of_kind("owner"))
# Counted over the whole city in one finding: only a full validation refreshes it.
UNSCOPED = ("coverage.precision",)


@dataclass
class Scope:
    """What an import run touched.

    Attributes
    ----------
    ids : list of str
        Every object the run delivered or ended (all tables).
    parcels : list of str
        The parcels among them.
    boxes : numpy.ndarray
        (n, 4) extents (minx, miny, maxx, maxy) of every stored version of those parcels.
    near : set of str
        Current parcels whose extent meets a box (set by the stage run, which reads them).
    owner : set of str
        The owner objects the touched ones reach (set by the owner rules, which find them).
    """

    ids: list[str]
    parcels: list[str]
    boxes: np.ndarray
    near: set[str] = field(default_factory=set)
    owner: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, conn, ids):
        """The scope of the objects ``ids``, read from the database."""
        rows = conn.execute(QUERIES["parcel_extents"], {"ids": list(ids)}).fetchall()
        boxes = np.array([r[1:] for r in rows if r[1] is not None], dtype=float).reshape(-1, 4)
        return cls(sorted(ids), sorted({r[0] for r in rows}), boxes)

    def args(self):
        """Query parameters: the ids, the near parcels, the boxes (as arrays of their sides)."""
        return {"ids": self.ids, "near": sorted(self.near), "owner": sorted(self.owner),
                **{k: list(self.boxes[:, i]) for i, k in enumerate(("x0", "y0", "x1", "y1"))}}

    def meets(self, geoms):
        """True where the extent of a geometry meets a box of the scope (the meaning of
        PostGIS's ``&&``; None and empty geometries meet nothing)."""
        geoms = np.asarray(geoms, dtype=object)
        out = np.zeros(len(geoms), dtype=bool)
        placed = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms))) \
            if len(geoms) else np.empty(0, dtype=int)
        if not len(self.boxes) or not len(placed):
            return out
        tree = shapely.STRtree(shapely.box(*self.boxes.T))
        out[placed[np.unique(tree.query(geoms[placed])[0])]] = True   # envelopes only
        return out

    def contains(self, findings):
        """A mask: which of ``findings`` lie inside the scope."""
        ids = set(self.ids)
        spatial = self.meets([f.geom for f in findings])
        return np.array([
            f.object_id in ids or bool(ids.intersection(f.related))
            or (f.rule in OWNER and f.object_id in self.owner)
            or (f.rule in PER_PARCEL and f.object_id in self.near)
            or (f.rule in SPATIAL and bool(spatial[i]))
            for i, f in enumerate(findings)], dtype=bool)

    def stored_inside(self, conn, rules):
        """The keys of the stored findings of ``rules`` (not fixed) that lie inside the scope."""
        args = {**self.args(), "rules": list(rules), "per_parcel": list(PER_PARCEL),
                "spatial": list(SPATIAL), "owner_rules": list(OWNER)}
        keys = []
        for schema in SCHEMAS:
            rows = conn.execute(sql.SQL(QUERIES["candidates"]).format(
                schema=sql.Identifier(schema)), args).fetchall()
            stored = [Finding(rule, obj, "", related=list(related or []),
                              geom=shapely.from_wkb(bytes(wkb)) if wkb is not None else None)
                      for _, rule, obj, related, wkb in rows]
            keys += [r[0] for r, inside in zip(rows, self.contains(stored), strict=True)
                     if inside]
        return keys
