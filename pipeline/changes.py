"""Changes between two runs: parcels added, removed, with changed geometry or official area, and
(for the owner-data role only) with changed owners.

The state after run R is every version with ``run_id <= R`` that no run up to R closed
(``closed_run_id``) and that was not delivered already closed.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from pipeline.errors import UsageError
from schemas import queries, sql_text

KINDS = ("hinzugefuegt", "entfernt", "geometrie", "flaeche", "eigentum")

QUERIES = queries("changes")


def changes(db, run_a, run_b, private=False):
    """Parcel changes from the state after ``run_a`` to the state after ``run_b``.

    Returns
    -------
    dict
        ``{"run_a", "run_b", "counts": {kind: n}, "changes": GeoDataFrame}``; the frame has
        ``gml_id``, ``flurstueckskennzeichen``, ``art``, ``flaeche_vorher``, ``flaeche_nachher``
        and the parcel geometry (EPSG:25832).
    """
    from pipeline.validation.findings import may_see_owners

    if run_a >= run_b:
        raise UsageError(f"RUN_A ({run_a}) must be an earlier run than RUN_B ({run_b})")
    with db.connect() as conn:
        known = {r for (r,) in conn.execute(QUERIES["known_runs"], {"runs": [run_a, run_b]})}
        if known != {run_a, run_b}:
            raise UsageError(f"unknown run(s): {sorted({run_a, run_b} - known)} "
                             "(see 'kataster runs')")
        rows = conn.execute(QUERIES["parcel_changes"], {"a": run_a, "b": run_b}).fetchall()
        if private:
            if not may_see_owners(conn):
                raise UsageError("--private shows owner changes: it needs the role "
                                 "kataster_eigentum or kataster_admin")
            rows += conn.execute(sql_text("exports/eigentum_aenderungen.sql"),
                                 {"a": run_a, "b": run_b}).fetchall()
    frame = pd.DataFrame(rows, columns=["gml_id", "flurstueckskennzeichen", "art", "wkb",
                                        "flaeche_vorher", "flaeche_nachher"])
    geom = shapely.from_wkb([bytes(b) if b is not None else None for b in frame.pop("wkb")])
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geom, crs=25832))
    counts = {k: int((gdf["art"] == k).sum()) for k in KINDS if private or k != "eigentum"}
    return {"run_a": run_a, "run_b": run_b, "counts": counts, "changes": gdf}


def as_json(result):
    out = []
    for row in result["changes"].itertuples():
        p = shapely.point_on_surface(row.geometry) if row.geometry is not None else None
        out.append({"gml_id": row.gml_id, "flurstueckskennzeichen": row.flurstueckskennzeichen,
                    "art": row.art, "flaeche_vorher": row.flaeche_vorher,
                    "flaeche_nachher": row.flaeche_nachher,
                    "location": [round(p.x, 3), round(p.y, 3)] if p is not None else None})
    return {"run_a": result["run_a"], "run_b": result["run_b"], "counts": result["counts"],
            "changes": out}


def previous_import(db, run_id):
    """The committed import run before ``run_id`` (None if there is none)."""
    with db.connect() as conn:
        row = conn.execute(QUERIES["previous_import"], {"run": run_id}).fetchone()
    return row[0]
