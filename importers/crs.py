"""Coordinate reference systems: everything is stored in EPSG:25832 (ETRS89 / UTM 32N).

Transformations come from PROJ through pyproj, always with x = easting/longitude
(``always_xy``), so latitude/longitude axis order of EPSG:4258/4326 sources is handled once.
Debian's ``proj-data`` supplies the BETA2007 grid for Gauß-Krüger (DHDN) data; pyproj's wheel
does not ship grids, so its directory is added to PROJ's search path.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyproj
import shapely
from pyproj.transformer import TransformerGroup

from pipeline.coordinates import MARGIN_NOTE, outside
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
    grids = re.findall(r"[\w.-]*BETA2007[\w.-]*", str(best.definition))
    description = (f"{crs.name} (EPSG:{epsg}) → ETRS89 / UTM zone 32N: {best.description}"
                   + (f" (grid {grids[0]})" if grids else ""))
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


# -- CRS names in NAS files -------------------------------------------------------------------
# The AdV names (urn:adv:crs:NAME) whose meaning is documented in the GeoInfoDok's CRS
# catalogue, mapped to EPSG. State realisations of DHDN Gauß-Krüger (…_NW177, …_RP180,
# …_BY120) are the zone's DHDN system; they are transformed with BETA2007 and the
# transformation recorded says so.
ADV_EPSG = {"ETRS89_UTM32": 25832, "ETRS89_UTM33": 25833, "ETRS89_Lat-Lon": 4258,
            "ETRS89_Lat-Lon-h": 4937, "WGS84_Lat-Lon": 4326}
ADV_DHDN = re.compile(r"^DE_DHDN_3GK([2-5])(?:_[A-Z]{2}\d+)?$")
# Height systems: a position there is a height, never a map position.
ADV_HEIGHT = re.compile(r"^(DE_DHHN|DE_DHSN|DE_NN|DE_SNN|DE_HN|ETRS89_h$)")
# Known systems that cannot be transformed reliably to EPSG:25832 here: local systems, the
# geocentric ETRS89 (3-D), the GDR systems without a documented transformation.
ADV_KEPT = re.compile(r"^(LOKAL_|ETRS89_X-Y-Z$|DE_42/83_|DE_RD/83_|DE_PD/83_|DE_KRASSOWSKI)")
EPSG_NAME = re.compile(r"(?:^EPSG:|^urn:ogc:def:crs:EPSG:[\d.]*:|/def/crs/EPSG/[\d.]+/)(\d+)$",
                       re.I)


@dataclass(frozen=True)
class NamedCRS:
    """What a ``srsName`` means: a map system (EPSG code), a height system, or a system
    whose positions are kept as written (``kind`` map / height / kept)."""

    name: str
    kind: str
    epsg: int | None = None
    lat_lon: bool = False    # positions are written latitude first (EPSG URN/URL forms)


@lru_cache(maxsize=256)
def named_crs(value):
    """Classify a srsName; None if it is not known (the caller reports it)."""
    s = value.strip()
    name = s[len("urn:adv:crs:"):] if s.startswith("urn:adv:crs:") else None
    if name is not None:
        if name in ADV_EPSG:
            return NamedCRS(s, "map", ADV_EPSG[name], lat_lon="Lat-Lon" in name)
        m = ADV_DHDN.match(name)
        if m:
            return NamedCRS(s, "map", 31464 + int(m.group(1)))
        if ADV_HEIGHT.match(name):
            return NamedCRS(s, "height")
        if ADV_KEPT.match(name):
            return NamedCRS(s, "kept")
        return None
    m = EPSG_NAME.search(s)
    if m:
        epsg = int(m.group(1))
        try:
            crs = pyproj.CRS.from_epsg(epsg)
        except pyproj.exceptions.CRSError:
            return None
        if crs.is_vertical:
            return NamedCRS(s, "height")
        # The URN and URL forms use the EPSG axis order (latitude first for geographic
        # systems); the short form EPSG:nnnn is read as x = longitude, as GDAL does.
        return NamedCRS(s, "map", epsg, lat_lon=crs.is_geographic and not s.upper()
                        .startswith("EPSG:"))
    return None


# -- coordinate sanity (the extent itself is the core's: pipeline.coordinates) -----------------
def hint_for(crs_name, epsg, raw):
    """A guess at the cause of an absurd coordinate from the position as written."""
    x, y = raw
    if not (np.isfinite(x) and np.isfinite(y)):
        return "the file holds a coordinate that is not a finite number"
    if epsg in DHDN_GK:
        zone = {31466: 2, 31467: 3, 31468: 4, 31469: 5}.get(epsg)
        if zone and 100_000 <= x < 1_000_000:
            return (f"eastings look like Gauß-Krüger zone {zone} without the zone digit "
                    f"(expected {zone},xxx,xxx m); fix the file or ask its producer")
    if epsg in (25832, 25833) and 10_000_000 <= x < 100_000_000:
        return (f"eastings carry a zone prefix ({int(x // 1_000_000)}…): a system with "
                "zone-prefixed eastings is not ETRS89/UTM as declared")
    if epsg in (4258, 4326) and 45 <= x <= 57 and 4 <= y <= 17:
        return "latitude and longitude look swapped"
    return "check the coordinate system the file declares (or give the right one with --srs)"


def check_extent(geoms, raw_geoms, label, where, crs_name, epsg):
    """Refuse geometries whose stored coordinates are not finite or lie outside Germany.

    ``label(i)`` names the object, ``raw_geoms`` are the geometries as written (for the hint).
    """
    bad = outside(geoms)
    if bad is None:
        return
    i, (x, y) = bad
    raw = shapely.get_coordinates(raw_geoms[i])
    first = tuple(raw[0]) if len(raw) else (x, y)
    if len(raw):
        finite = np.isfinite(raw).all(axis=1)
        first = tuple(raw[np.argmin(finite)]) if not finite.all() else first
    named = f"{crs_name} (EPSG:{epsg})" if epsg and f"EPSG:{epsg}" not in crs_name else crs_name
    raise CRSError(where, f"coordinate ({x:.3f}, {y:.3f}) in EPSG:25832 (written as "
                          f"({first[0]:.3f}, {first[1]:.3f}) in {named}) is not finite or lies "
                          f"outside {MARGIN_NOTE}; nothing was imported",
                   feature=label(i), hint=hint_for(crs_name, epsg, first))
