"""The Python API for analysts: public cadastre data as GeoDataFrames (EPSG:25832).

Every function takes an optional ``database``; without it, the configured database is used
(``KATASTER_DATABASE_URL``, or the embedded one, started if needed).

Examples
--------
>>> from pipeline import api
>>> parcels = api.parcels(gemarkung="3096")            # doctest: +SKIP
>>> parcels.plot(column="amtliche_flaeche")             # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd

from pipeline import views


def database(config=None):
    """The configured database (started and migrated if needed).

    Parameters
    ----------
    config : pipeline.config.Config, optional
        Default: ``kataster.yaml`` and ``KATASTER_*`` variables.
    """
    from pipeline.config import load_config
    from pipeline.db import open_database

    return open_database(config or load_config())


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
    >>> broich = parcels(gemarkung=3096, flur=1)        # doctest: +SKIP
    >>> broich[["flurstueckskennzeichen", "amtliche_flaeche"]].head()   # doctest: +SKIP
    """
    return views.read(_db(database), "flurstueck", gemarkung=gemarkung, flur=flur, bbox=bbox,
                      at=at)


def buildings(gemarkung=None, bbox=None, database=None):
    """Current buildings (Gebäude) as a GeoDataFrame.

    Examples
    --------
    >>> buildings(bbox=(350000, 5700000, 351000, 5701000))   # doctest: +SKIP
    """
    return views.read(_db(database), "gebaeude", gemarkung=gemarkung, bbox=bbox)


def gemarkungen(database=None):
    """Gemarkung boundaries (imported, or derived from the parcels).

    Examples
    --------
    >>> gemarkungen()[["gemarkungsnummer", "gemarkung"]]     # doctest: +SKIP
    """
    return views.read(_db(database), "gemarkung")


def fluren(gemarkung=None, database=None):
    """Flur boundaries (imported, or derived from the parcels), optionally of one Gemarkung.

    Examples
    --------
    >>> fluren(gemarkung="3084")                              # doctest: +SKIP
    """
    return views.read(_db(database), "flur", gemarkung=gemarkung)


def import_runs(limit=20, database=None):
    """The newest import runs as a DataFrame (id, started, status, importer, counts, files).

    Examples
    --------
    >>> import_runs(5)[["id", "status", "importer"]]          # doctest: +SKIP
    """
    from pipeline.runs import list_runs

    return pd.DataFrame(list_runs(_db(database), limit))
