"""Vectorised geometry checks shared by importers and validation stages.

An importer that meets an invalid polygon records exactly the finding that ``kataster
validate`` would record for it (same rule, object, location, hence the same stable key).
"""

from __future__ import annotations

import re

import numpy as np
import shapely

from pipeline.validation.findings import Finding

_POINT = re.compile(r"\[([-\d.eE+]+) ([-\d.eE+]+)")


def reason_point(reason, geom):
    """The location GEOS names in an invalidity reason, else the centroid."""
    m = _POINT.search(reason or "")
    if m:
        return shapely.Point(float(m.group(1)), float(m.group(2)))
    return shapely.centroid(geom)


def empty_geometries(ids, geoms, where=None):
    """``geometry.empty`` for missing or empty geometries."""
    missing = np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    return [Finding("geometry.empty", ids[i],
                    f"{_where(where, i)}parcel {ids[i]} has no geometry; kept without one")
            for i in missing]


def invalid_geometries(ids, geoms, where=None, valid=None):
    """``geometry.invalid`` with GEOS's reason and the location it names (``valid``: the
    geometries present and valid, if known)."""
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    bad = np.flatnonzero(present & ~(shapely.is_valid(geoms) if valid is None else valid))
    if not len(bad):
        return []
    reasons = shapely.is_valid_reason(geoms[bad])
    return [Finding("geometry.invalid", ids[i],
                    f"{_where(where, i)}parcel {ids[i]}: {reason}; kept as delivered",
                    geom=reason_point(reason, geoms[i]))
            for i, reason in zip(bad, reasons, strict=True)]


def _where(where, i):
    return f"{where[i]}: " if where is not None else ""
