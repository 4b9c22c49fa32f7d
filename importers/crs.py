"""Coordinate reference systems: everything is stored in EPSG:25832 (ETRS89 / UTM 32N).

Transformations come from PROJ through pyproj, always with x = easting/longitude
(``always_xy``), so latitude/longitude axis order of EPSG:4258/4326 sources is handled once.
Debian's ``proj-data`` supplies the BETA2007 grid for Gauß-Krüger (DHDN) data; pyproj's wheel
does not ship grids, so its directory is added to PROJ's search path.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import pyproj
import shapely
from pyproj.transformer import TransformerGroup

from pipeline.errors import CRSError

TARGET = "EPSG:25832"
SYSTEM_PROJ_DATA = Path("/usr/share/proj")
DHDN_GK = {31466, 31467, 31468, 31469, 31462, 31463, 31464, 31465, 5677, 5678}

if SYSTEM_PROJ_DATA.is_dir():
    pyproj.datadir.append_data_dir(str(SYSTEM_PROJ_DATA))
pyproj.network.set_network_enabled(False)


def parse_crs(value, where):
    """A pyproj CRS from user input or file metadata; errors name ``where``."""
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as err:
        raise CRSError(where, f"unknown coordinate system {value!r}: {err}") from None


@lru_cache(maxsize=32)
def _best(src_wkt):
    src = pyproj.CRS.from_wkt(src_wkt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        group = TransformerGroup(src, TARGET, always_xy=True)
    return group


def transformer(crs, where):
    """(callable or None, description) turning coordinates in ``crs`` into EPSG:25832."""
    if crs.to_epsg() == 25832:
        return None, "none (source is EPSG:25832)"
    group = _best(crs.to_wkt())
    if not group.transformers:
        raise CRSError(where, f"no transformation from {crs.name} to {TARGET} is available")
    epsg = crs.to_epsg()
    best = group.transformers[0]
    if epsg in DHDN_GK or "DHDN" in crs.name:
        if "BETA2007" not in str(best.definition) and "BETA2007" not in str(
                getattr(best, "to_json", lambda: "")()):
            raise CRSError(
                where,
                f"{crs.name}: the BETA2007 grid for DHDN → ETRS89 is not installed",
                hint="install Debian's proj-data package (make setup does)",
            )
    if not group.best_available:
        missing = [g.short_name for op in group.unavailable_operations[:1] for g in op.grids]
        raise CRSError(where, f"the best transformation from {crs.name} needs grids that are "
                              f"not installed: {missing}", hint="install proj-data")
    description = f"{crs.name} (EPSG:{epsg}) → ETRS89 / UTM zone 32N: {best.description}"
    return best, description


def to_target(geoms, tr):
    """Transform a shapely geometry array with a transformer from :func:`transformer`."""
    if tr is None:
        return geoms
    return shapely.transform(geoms, lambda xy: _apply(tr, xy))


def _apply(tr, xy):
    import numpy as np

    x, y = tr.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])
