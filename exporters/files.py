"""File exports from the public views: GeoPackage, GeoJSON, CSV (WKT), GeoParquet.

Only the public views are exported (``kataster.flurstueck``, ``gebaeude``, ``gemarkung``,
``flur``, ``befund``), so no personal data can leave through a file export. Rows are read in
chunks and appended, so memory stays bounded (GeoParquet collects the chunks first).
"""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
from psycopg import sql

from pipeline.errors import UsageError

LAYERS = {
    "flurstueck": ("kataster", "flurstueck"),
    "gebaeude": ("kataster", "gebaeude"),
    "gemarkung": ("kataster", "gemarkung"),
    "flur": ("kataster", "flur"),
    "befund": ("kataster", "befund"),
}
DISTRICT_FILTERABLE = {"flurstueck", "gebaeude", "gemarkung", "flur"}
CHUNK = 50_000


def query(layer, gemarkung=None, flur=None, bbox=None):
    """SQL (composed, parameters bound) selecting a public view with filters."""
    if layer not in LAYERS:
        raise UsageError(f"unknown layer {layer!r}; choose one of: {', '.join(LAYERS)}")
    where, params = [], {}
    if gemarkung is not None or flur is not None:
        if layer not in DISTRICT_FILTERABLE:
            raise UsageError(f"layer {layer} cannot be filtered by Gemarkung/Flur; use --bbox")
    if gemarkung is not None:
        where.append(sql.SQL("gemarkungsnummer = %(gemarkung)s"))
        params["gemarkung"] = str(gemarkung).zfill(4)
    if flur is not None:
        if layer in ("gemarkung", "gebaeude"):
            raise UsageError(f"layer {layer} cannot be filtered by Flur")
        where.append(sql.SQL("flurnummer = %(flur)s"))
        params["flur"] = int(flur)
    if bbox is not None:
        minx, miny, maxx, maxy = bbox
        where.append(sql.SQL("geom && ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 25832)"
                             " AND ST_Intersects(geom, ST_MakeEnvelope(%(minx)s, %(miny)s,"
                             " %(maxx)s, %(maxy)s, 25832))"))
        params.update(minx=minx, miny=miny, maxx=maxx, maxy=maxy)
    q = sql.SQL("SELECT *, ST_AsBinary(geom) AS _wkb FROM {}").format(sql.Identifier(*LAYERS[layer]))
    if where:
        q += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    order = {"flurstueck": "flurstueckskennzeichen, gml_id", "gebaeude": "gml_id",
             "gemarkung": "land, gemarkungsnummer", "flur": "land, gemarkungsnummer, flurnummer",
             "befund": "id"}[layer]
    q += sql.SQL(" ORDER BY ") + sql.SQL(order)
    return q, params


def read_chunks(db, layer, gemarkung=None, flur=None, bbox=None, chunk=CHUNK):
    """Yield GeoDataFrames of a public view in EPSG:25832, ``chunk`` rows at a time."""
    q, params = query(layer, gemarkung, flur, bbox)
    with db.connect() as conn:
        with conn.cursor(name="kataster_export") as cur:
            cur.itersize = chunk
            cur.execute(q, params)
            cols = [d.name for d in cur.description]
            while True:
                rows = cur.fetchmany(chunk)
                if not rows:
                    break
                df = pd.DataFrame(rows, columns=cols).drop(columns=["geom"])
                geom = gpd.GeoSeries.from_wkb(df.pop("_wkb").map(
                    lambda b: None if b is None else bytes(b)), crs="EPSG:25832")
                yield _plain(gpd.GeoDataFrame(df, geometry=geom.rename("geom")))


def _plain(gdf):
    """Turn database types that files cannot hold into plain ones (arrays → text)."""
    for col in gdf.columns:
        if col == "geom":
            continue
        if gdf[col].map(lambda v: isinstance(v, (list, tuple))).any():
            gdf[col] = gdf[col].map(lambda v: ",".join(map(str, v)) if v is not None else None)
        elif pd.api.types.is_object_dtype(gdf[col]):
            sample = gdf[col].dropna()
            if len(sample) and not isinstance(sample.iloc[0], str):
                if hasattr(sample.iloc[0], "isoformat"):
                    gdf[col] = pd.to_datetime(gdf[col], utc=True)
                else:
                    gdf[col] = pd.to_numeric(gdf[col], errors="ignore")
    return gdf


def _export(db, layer, out, write, gemarkung=None, flur=None, bbox=None, fmt=None):
    started = time.monotonic()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    n = 0
    for i, chunk in enumerate(read_chunks(db, layer, gemarkung, flur, bbox)):
        write(chunk, out, i > 0)
        n += len(chunk)
    if n == 0:
        write(_empty(db, layer), out, False)
    return {"format": fmt, "layer": layer, "out": str(out), "features": n,
            "filters": {"gemarkung": gemarkung, "flur": flur, "bbox": bbox},
            "seconds": round(time.monotonic() - started, 3)}


def _empty(db, layer):
    q, _ = query(layer)
    with db.connect() as conn:
        cur = conn.execute(sql.SQL("SELECT * FROM ({}) q LIMIT 0").format(q))
        cols = [d.name for d in cur.description if d.name not in ("geom", "_wkb")]
    return gpd.GeoDataFrame(pd.DataFrame(columns=cols), geometry=gpd.GeoSeries([], crs=25832))


def _ogr_writer(driver, layer_name=None, **opts):
    def write(gdf, out, append):
        pyogrio.write_dataframe(gdf, out, driver=driver, layer=layer_name, append=append, **opts)
    return write


def export_gpkg(db, layer, out, **filters):
    """Export a public view to a GeoPackage layer named after it."""
    return _export(db, layer, out, _ogr_writer("GPKG", layer), fmt="gpkg", **filters)


def export_geojson(db, layer, out, **filters):
    """Export a public view to GeoJSON (RFC 7946: coordinates in WGS 84)."""
    def write(gdf, path, append):
        # RFC 7946 GeoJSON is WGS 84; GDAL reprojects when writing with RFC7946=YES.
        pyogrio.write_dataframe(gdf.to_crs(4326), path, driver="GeoJSON", append=append,
                                layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": 9})
    return _export(db, layer, out, write, fmt="geojson", **filters)


def export_csv(db, layer, out, **filters):
    """Export a public view to CSV: UTF-8, comma-separated, geometry as WKT (EPSG:25832)."""
    def write(gdf, path, append):
        frame = pd.DataFrame(gdf.drop(columns="geom"))
        frame["wkt"] = gdf.geometry.to_wkt()
        frame.to_csv(path, mode="a" if append else "w", header=not append, index=False,
                     encoding="utf-8")
    return _export(db, layer, out, write, fmt="csv", **filters)


def export_parquet(db, layer, out, **filters):
    """Export a public view to GeoParquet (EPSG:25832)."""
    parts = []

    def write(gdf, path, append):
        parts.append(gdf)

    summary = _export(db, layer, out, write, fmt="parquet", **filters)
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    gpd.GeoDataFrame(frame, geometry="geom", crs=25832).to_parquet(out)
    return summary
