"""File exports from the public views: GeoPackage, GeoJSON, CSV (WKT), GeoParquet.

Only public views are exported (see ``pipeline.views``), so no personal data can leave through
a file export. Rows are read in chunks and appended, so memory stays bounded (GeoParquet
collects the chunks first).
"""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from pipeline.views import read_frames

# GeoPackage 1.2: what Debian's GDAL 3.6 and QGIS 3.22 open without a warning (the bundled GDAL
# of pyogrio writes 1.4 by default).
GPKG_VERSION = "1.2"


def write_gpkg_layer(frame, path, layer, append=False, **kwargs):
    """Write (or with ``append``, extend) one GeoPackage layer; other layers of the file are
    kept, and a new file is made as GeoPackage 1.2."""
    options = {} if Path(path).exists() else {"dataset_options": {"VERSION": GPKG_VERSION}}
    pyogrio.write_dataframe(frame, path, driver="GPKG", layer=layer, append=append,
                            **options, **kwargs)


def _plain(gdf):
    """Database types that files cannot hold become plain ones (arrays → comma lists)."""
    for col in gdf.columns:
        if col == "geom" or not pd.api.types.is_object_dtype(gdf[col]):
            continue
        values = gdf[col].dropna()
        if len(values) and isinstance(values.iloc[0], (list, tuple)):
            gdf[col] = gdf[col].map(lambda v: None if v is None else ",".join(map(str, v)))
    return gdf


def _export(db, layer, out, write, fmt, gemarkung=None, flur=None, bbox=None):
    started = time.monotonic()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, chunk in enumerate(read_frames(db, layer, gemarkung=gemarkung, flur=flur, bbox=bbox)):
        if i and not len(chunk):
            break
        write(_plain(chunk), out, i > 0)
        n += len(chunk)
    return {"format": fmt, "layer": layer, "out": str(out), "features": n,
            "filters": {"gemarkung": gemarkung, "flur": flur, "bbox": bbox},
            "seconds": round(time.monotonic() - started, 3)}


def export_gpkg(db, layer, out, **filters):
    """Export a public view to a GeoPackage layer named after it (other layers are kept), with
    its QGIS style from the style source as the layer's default style."""
    from exporters.qgis import embed_style
    from pipeline.views import GEOMETRY_TYPE

    def write(gdf, path, append):
        write_gpkg_layer(gdf, path, layer, append=append, geometry_type=GEOMETRY_TYPE[layer],
                         promote_to_multi=GEOMETRY_TYPE[layer].startswith("Multi"))
    summary = _export(db, layer, out, write, "gpkg", **filters)
    if Path(out).exists():
        embed_style(out, layer)
    return summary


def export_geojson(db, layer, out, **filters):
    """Export a public view to GeoJSON (RFC 7946: WGS 84 longitude/latitude)."""
    def write(gdf, path, append):
        if not append and Path(path).exists():
            Path(path).unlink()
        pyogrio.write_dataframe(gdf.to_crs(4326), path, driver="GeoJSON", append=append,
                                layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": 9})
    return _export(db, layer, out, write, "geojson", **filters)


def export_csv(db, layer, out, **filters):
    """Export a public view to CSV: UTF-8, comma-separated, geometry as WKT in EPSG:25832."""
    def write(gdf, path, append):
        frame = pd.DataFrame(gdf.drop(columns="geom"))
        frame["wkt"] = gdf.geometry.to_wkt()
        frame.to_csv(path, mode="a" if append else "w", header=not append, index=False,
                     encoding="utf-8")
    return _export(db, layer, out, write, "csv", **filters)


def export_parquet(db, layer, out, **filters):
    """Export a public view to GeoParquet (EPSG:25832)."""
    parts = []
    summary = _export(db, layer, out, lambda gdf, path, append: parts.append(gdf), "parquet",
                      **filters)
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    gpd.GeoDataFrame(frame, geometry="geom", crs=25832).to_parquet(out)
    return summary


# Shapefile field names have at most 10 characters: the mapping is fixed and documented
# (DESIGN.md, "File exports"), so the same column always gets the same short name.
SHAPEFILE_FIELDS = {
    "flurstueckskennzeichen": "fsk", "gemarkungsnummer": "gemarknr", "gemarkung": "gemarkung",
    "flurnummer": "flurnr", "amtliche_flaeche": "amtl_fl", "geometrie_flaeche": "geom_fl",
    "gebaeudefunktion": "gebfunkt", "bezeichnung": "bezeichng", "first_run_id": "erster_lf",
    "status_reason": "st_grund", "status_by": "st_von", "status_at": "st_am",
    "object_id": "objekt", "severity": "schwere", "message": "meldung", "related": "bezug",
}


def shapefile_name(column):
    """The ≤ 10-character Shapefile field name of a view column."""
    return SHAPEFILE_FIELDS.get(column, column[:10])


def export_shp(db, layer, out, **filters):
    """Export a public view to a Shapefile (UTF-8 with .cpg, field names fitted to 10 chars).

    A Shapefile holds one geometry type: the findings go to two files, ``<name>_punkt.shp`` and
    ``<name>_flaeche.shp`` (the views befund_punkt and befund_flaeche). The files are written
    in a temporary folder beside the target and moved into place only when complete, so an
    error never leaves a partial Shapefile."""
    out = Path(out)
    if layer == "befund":
        parts = [export_shp(db, f"befund_{kind}", out.with_name(f"{out.stem}_{kind}.shp"),
                            **filters) for kind in ("punkt", "flaeche")]
        return {**parts[0], "layer": layer, "out": [p["out"] for p in parts],
                "features": sum(p["features"] for p in parts),
                "seconds": round(sum(p["seconds"] for p in parts), 3)}

    def write(gdf, path, append):
        frame = gdf.rename(columns={c: shapefile_name(c) for c in gdf.columns if c != "geom"})
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]) or (
                    pd.api.types.is_object_dtype(frame[col]) and len(frame[col].dropna())
                    and hasattr(frame[col].dropna().iloc[0], "isoformat")):
                frame[col] = frame[col].map(lambda v: None if v is None or pd.isna(v)
                                            else v.isoformat())
        polygons = layer not in ("befund_punkt",)
        pyogrio.write_dataframe(frame, path, driver="ESRI Shapefile", append=append,
                                encoding="UTF-8", promote_to_multi=polygons or None)

    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.stem}.", dir=out.parent) as tmp:
        summary = _export(db, layer, Path(tmp) / out.name, write, "shp", **filters)
        for part in sorted(Path(tmp).iterdir()):
            shutil.move(str(part), out.with_suffix(part.suffix))
    summary["out"] = str(out)
    return summary
