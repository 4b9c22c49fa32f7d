"""Coordinate sanity: every stored coordinate is finite and lies in Germany (plus a margin).

Checked by the importers after their transformation (with a hint at the cause) and again by
the loader for every batch, so nothing infinite or absurd is ever committed.
"""

from __future__ import annotations

import numpy as np
import shapely

# Germany (5.87–15.04° E, 47.27–55.06° N) in EPSG:25832, plus a margin of about 40 km (the
# eastern border lies in UTM zone 33 and reaches easting ~ 930 km in zone 32).
GERMANY = (240_000.0, 5_190_000.0, 960_000.0, 6_150_000.0)
MARGIN_NOTE = "Germany's extent plus about 40 km (EPSG:25832: E 240–960 km, N 5190–6150 km)"


def outside(geoms):
    """(index of the first geometry with a non-finite coordinate or one outside Germany, that
    coordinate) or None. Vectorised over all coordinates of ``geoms``."""
    geoms = np.asarray(geoms, dtype=object)
    present = ~shapely.is_missing(geoms)
    if not present.any():
        return None
    coords, index = shapely.get_coordinates(geoms[present], return_index=True)
    if not len(coords):
        return None
    x, y = coords[:, 0], coords[:, 1]
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(x) & np.isfinite(y) & (x >= GERMANY[0]) & (x <= GERMANY[2])
                & (y >= GERMANY[1]) & (y <= GERMANY[3]))
    if not bad.any():
        return None
    k = int(np.argmax(bad))
    return int(np.flatnonzero(present)[index[k]]), (float(x[k]), float(y[k]))


