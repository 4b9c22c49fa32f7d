"""Scanned maps out: the sheets covering an area, mosaicked and clipped into one GeoTIFF.

Exporters only read: the catalogue (``kataster.historische_karte``) through the reading role
and the COGs under ``karten.dir``. Later years are drawn over earlier ones; outside the area
(a Flur, a Gemarkung or a box) and outside every sheet the result is transparent.
"""

from __future__ import annotations

from pathlib import Path

import shapely

from pipeline.errors import KatasterError, UsageError
from schemas import sql_text


def export_karte(db, layer, out, gemarkung=None, flur=None, bbox=None, karten=None, jahr=None):
    """Write the scanned maps of an area (``bbox``, or ``gemarkung`` [and ``flur``]) as one
    tiled GeoTIFF (deflate, alpha band) at the finest resolution of the sheets used."""
    import rasterio
    from rasterio.merge import merge

    from pipeline.rasters import mask_outside

    if bbox is None and gemarkung is None:
        raise UsageError("export karte needs --bbox or --gemarkung [--flur]")
    if karten is None:
        raise UsageError("export karte needs the directory of the maps (karten.dir)")
    with db.connect() as conn:
        if bbox is not None:
            area = shapely.box(*bbox)
        else:
            row = conn.execute(sql_text("exports/karte_bezirk.sql"),
                               {"gemarkung": str(gemarkung).zfill(4), "flur": flur}).fetchone()
            if row is None or row[0] is None:
                raise UsageError(f"Gemarkung {gemarkung}" + (f" Flur {flur}" if flur else "")
                                 + " is not in the database")
            area = shapely.from_wkb(row[0])
        sheets = conn.execute(sql_text("exports/karte_blaetter.sql"),
                              {"area": area.wkb, "jahr": jahr}).fetchall()
    if not sheets:
        raise KatasterError("no scanned map covers the area; nothing was written (see "
                            "'kataster export gpkg --layer historische_karte' for the catalogue)")
    paths = [Path(karten) / pfad for _, pfad, _ in sheets]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise KatasterError(f"the catalogue names maps that are not in karten.dir: "
                            f"{', '.join(missing[:5])}")
    datasets = [rasterio.open(p) for p in paths]
    try:
        counts = {d.count for d in datasets}
        if len(counts) > 1:
            raise KatasterError("the sheets of the area mix grey and colour scans; export them "
                                "one year at a time (jahr)")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Latest first: merge's "first" method keeps the first valid pixel.
        merge(datasets[::-1], bounds=area.bounds, res=min(abs(d.transform.a) for d in datasets),
              method="first", dst_path=out,
              dst_kwds={"driver": "GTiff", "tiled": True, "blockxsize": 512,
                        "blockysize": 512, "compress": "deflate", "predictor": 2,
                        "photometric": "rgb" if counts == {4} else "minisblack"})
        with rasterio.open(out, "r+") as dst:
            n = dst.count
            dst.colorinterp = [*dst.colorinterp[:-1], rasterio.enums.ColorInterp.alpha]
            if not area.equals(shapely.box(*area.bounds)):
                mask_outside(dst, n, area)
            width, height = dst.width, dst.height
    finally:
        for d in datasets:
            d.close()
    return {"format": "karte", "out": str(out), "features": len(sheets),
            "sheets": [s for s, _, _ in sheets], "width": width, "height": height}


export_karte.settings = ("karten",)
