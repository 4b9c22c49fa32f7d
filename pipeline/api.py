"""The Python API for analysts: public cadastre data as GeoDataFrames (EPSG:25832).

Every function takes an optional ``database``; without it, the configured database is used
(``KATASTER_DATABASE_URL``, or the embedded one, started if needed).

The examples below run in the test suite against the generated Mülheim-like sample.

Examples
--------
>>> from pipeline import api
>>> broich = api.parcels(gemarkung="3096")
>>> broich.crs.to_epsg(), bool(len(broich)), set(broich["gemarkung"])
(25832, True, {'Broich'})
>>> ax = broich.plot(column="amtliche_flaeche")
"""

from __future__ import annotations

import pandas as pd

from pipeline import views


def database(config=None):
    """The configured database, as the reading role (started if needed; ``kataster db up``
    makes it).

    Parameters
    ----------
    config : pipeline.config.Config, optional
        Default: ``kataster.yaml`` and ``KATASTER_*`` variables.
    """
    from pipeline.config import load_config
    from pipeline.db import open_database

    return open_database(config or load_config(), kind="reader")


def _db(db):
    return db if db is not None else database()


def parcels(gemarkung=None, flur=None, bbox=None, at=None, database=None):
    """Parcels (Flurstücke), current or as they were at a point in time.

    Parameters
    ----------
    gemarkung : str or int, optional
        Gemarkungsnummer, e.g. ``"3096"`` (Broich).
    flur : int, optional
        Flurnummer within the Gemarkung.
    bbox : tuple, optional
        ``(minx, miny, maxx, maxy)`` in EPSG:25832.
    at : str or datetime, optional
        A point in time, e.g. ``"2024-01-01"``: the parcels valid then.
    database : pipeline.db.Database, optional

    Returns
    -------
    geopandas.GeoDataFrame
        Columns of the view ``kataster.flurstueck`` (DESIGN.md), geometry ``geom``.

    Examples
    --------
    >>> flur1 = parcels(gemarkung=3096, flur=1)
    >>> sorted(set(flur1["flurnummer"]))
    [1]
    >>> list(flur1.columns[:3])
    ['id', 'gml_id', 'flurstueckskennzeichen']
    >>> len(parcels(at="1990-01-01"))          # nothing was imported before 1990
    0
    """
    return views.read(_db(database), "flurstueck", gemarkung=gemarkung, flur=flur, bbox=bbox,
                      at=at)


def buildings(gemarkung=None, bbox=None, database=None):
    """Current buildings (Gebäude) as a GeoDataFrame.

    Examples
    --------
    >>> inside = buildings(bbox=(344000, 5689000, 344500, 5689500))
    >>> bool((inside.geom_type == "MultiPolygon").all())
    True
    """
    return views.read(_db(database), "gebaeude", gemarkung=gemarkung, bbox=bbox)


def gemarkungen(database=None):
    """Gemarkung boundaries (imported, or derived from the parcels).

    Examples
    --------
    >>> gemarkungen()[["gemarkungsnummer", "gemarkung"]].head(3)
      gemarkungsnummer gemarkung
    0             3084   Mülheim
    1             3086   Dümpten
    2             3089    Heißen
    """
    return views.read(_db(database), "gemarkung")


def fluren(gemarkung=None, database=None):
    """Flur boundaries (imported, or derived from the parcels), optionally of one Gemarkung.

    Examples
    --------
    >>> fl = fluren(gemarkung="3084")
    >>> set(fl["gemarkung"]), set(fl["herkunft"])
    ({'Mülheim'}, {'importiert'})
    """
    return views.read(_db(database), "flur", gemarkung=gemarkung)


def import_runs(limit=20, database=None):
    """The newest import runs as a DataFrame (id, started, status, importer, counts, files).

    Examples
    --------
    >>> import_runs(5)[["status", "importer"]]
          status importer
    0  committed      ogr
    """
    from pipeline.runs import list_runs

    return pd.DataFrame(list_runs(_db(database), limit))


def maps(bbox=None, jahr=None, database=None):
    """The catalogue of scanned maps (``kataster.historische_karte``): one row per sheet with
    its footprint, year, transformation, RMS and the COG's path (relative to ``karten.dir``).

    Parameters
    ----------
    bbox : tuple, optional
        ``(minx, miny, maxx, maxy)`` in EPSG:25832: sheets whose footprint meets it.
    jahr : int, optional
        Only sheets of this year.

    Returns
    -------
    geopandas.GeoDataFrame
    """
    frame = views.read(_db(database), "historische_karte", bbox=bbox)
    if jahr is not None:
        frame = frame[frame["jahr"] == int(jahr)].reset_index(drop=True)
    return frame


def open_map(sheet, config=None, database=None):
    """Open a scanned map's Cloud-Optimized GeoTIFF with rasterio (EPSG:25832, bands: the
    scan's colours and an alpha band). Close it, or use it in a ``with`` block.

    Parameters
    ----------
    sheet : str
        The sheet's id (``id`` in :func:`maps`).
    config : pipeline.config.Config, optional
        For ``karten.dir``; default: ``kataster.yaml`` and ``KATASTER_*`` variables.
    """
    import rasterio

    from pipeline.config import load_config
    from pipeline.errors import UsageError
    from pipeline.rasters import karten_dir

    config = config or load_config()
    found = maps(database=database).query("id == @sheet")
    if found.empty:
        raise UsageError(f"no scanned map {sheet!r} in the catalogue (see api.maps())")
    return rasterio.open(karten_dir(config) / found["pfad"].iloc[0])
