"""The Python API: the facade over the core that the command line is a thin layer on.

What the commands do: :func:`import_files` (with the change list and the validation after a
committed import, exactly as ``kataster import``), :func:`validate`, :func:`export`. For
analysts: public cadastre data as GeoDataFrames (EPSG:25832).

Every function takes an optional ``database``; without it, the configured database is used
(``KATASTER_DATABASE_URL``, or the embedded one, started if needed): as the reading role for
reading, as the owner for imports and validations.

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

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import views

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    from rasterio.io import DatasetReader

    from pipeline.config import Config
    from pipeline.db import Database
    from pipeline.validation.run import ValidationResult

BBox = tuple[float, float, float, float]     # minx, miny, maxx, maxy in EPSG:25832


def database(config: Config | None = None) -> Database:
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


def _db(db: Database | None) -> Database:
    return db if db is not None else database()


def _config(config: Config | None) -> Config:
    from pipeline.config import load_config

    return config if config is not None else load_config()


def _owner_db(db: Database | None, config: Config) -> Database:
    from pipeline.db import open_database

    return db if db is not None else open_database(config, kind="owner")


def import_files(paths: Iterable[str | Path], fmt: str = "auto",
                 options: dict[str, Any] | None = None, force: bool = False,
                 history: bool | None = None, validate_after: bool | None = None,
                 config: Config | None = None, database: Database | None = None,
                 notify: Callable[[str], None] | None = None,
                 progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Import source files as one run (all or nothing), then, if the run committed, count the
    changes since the previous import and validate (``validation.after_import``).

    Parameters
    ----------
    paths : list of str or Path
        Files or directories.
    fmt : str
        Importer name (``kataster import --format``), or ``"auto"``.
    options : dict, optional
        Importer options: ``profile``, ``srs``, ``encoding``, ``allow_older``, the scans'
        ``gcps``, ``transformation`` and sheet data.
    force : bool
        Import even if every file was imported before.
    history : bool, optional
        Keep old versions (default: configuration ``history``).
    validate_after : bool, optional
        Validate after a committed import (default: ``validation.after_import``).
    config : pipeline.config.Config, optional
    database : pipeline.db.Database, optional
        Default: the configured database as its owner.
    notify, progress : callable, optional
        Progress messages (lock waits) and object counts.

    Returns
    -------
    dict
        The summary of ``schemas/import-summary.schema.json``; a failed import raises a
        :class:`pipeline.errors.KatasterError` whose ``summary`` is the same dict.
    """
    from pipeline.changes import changes, previous_import
    from pipeline.runs import run_import

    config = _config(config)
    db = _owner_db(database, config)
    summary = run_import(db, config, list(paths), fmt=fmt, options=options, force=force,
                         history=history, notify=notify, progress=progress)
    touched = summary.pop("touched", None)
    if summary["status"] != "committed":
        return summary
    before = previous_import(db, summary["run_id"])
    if before is not None:
        summary["changes"] = {"since_run": before,
                              **changes(db, before, summary["run_id"])["counts"]}
    if config["validation.after_import"] if validate_after is None else validate_after:
        # An update is validated where it can change findings; a first import, a flat
        # delivery and a change of district boundaries everywhere.
        result = validate(config=config, database=db,
                          touched=None if before is None else touched)
        summary["validation"] = {"run_id": result.run_id, **result.counts["by_severity"],
                                 "fixed": result.fixed, "seconds": result.seconds}
    return summary


def validate(rules: Sequence[str] | None = None, gemarkung: str | None = None,
             scheduler: str | None = None, private: bool = False, config: Config | None = None,
             database: Database | None = None,
             touched: Sequence[str] | None = None) -> ValidationResult:
    """Run validation rules (default: all) and store their findings, as ``kataster validate``;
    with ``touched`` (the gml_ids of an import run's objects), only where they can change a
    finding (:mod:`pipeline.validation.scope`).

    Returns
    -------
    pipeline.validation.run.ValidationResult
    """
    from pipeline.validation.run import validate as run

    config = _config(config)
    return run(_owner_db(database, config), config, rules=rules, gemarkung=gemarkung,
               scheduler=scheduler, private=private, touched=touched)


def rebuild(config: Config | None = None, database: Database | None = None) -> dict[str, Any]:
    """Recompute whole what imports keep scoped to their change, as ``kataster db rebuild``:
    the ownership resolution of every parcel (with the kept ``an`` references) and the
    derived maps (Flur map and its pieces, street names, house numbers), in one run.

    Returns
    -------
    dict
        ``run_id``, ``status``, ``counts`` (``eigentum_parcels``: parcels whose recorded
        owners the rebuild corrected) and ``seconds``.
    """
    from pipeline.runs import rebuild as run

    config = _config(config)
    return run(_owner_db(database, config), config["database.lock_timeout"])


def _setting(name: str, config: Config) -> Any:
    """What an exporter asks for from the configuration (names in its ``settings``)."""
    if name == "namespace":
        return config["exports.inspire_namespace"]
    if name == "karten":
        from pipeline.rasters import karten_dir

        return karten_dir(config)
    from pipeline.errors import PluginError

    raise PluginError(f"an exporter asks for the setting {name!r}; known: namespace, karten")


def export(fmt: str, out: str | Path, layer: str | None = None,
           gemarkung: str | int | None = None, flur: int | None = None, bbox: BBox | None = None,
           service: str | None = None, jahr: int | None = None, config: Config | None = None,
           database: Database | None = None) -> dict[str, Any]:
    """Export a public view to a file with the exporter ``fmt`` (any registered one), every
    layer as a QGIS project (``qgis``), or the scanned maps of an area (``karte``), as
    ``kataster export``.

    Returns
    -------
    dict
        The summary of ``schemas/export-summary.schema.json``.
    """
    from pipeline import registry
    from pipeline.errors import KatasterError, UsageError
    from pipeline.views import LAYERS

    writer = registry.load("exporter", fmt)
    all_layers = getattr(writer, "all_layers", False)
    settings = getattr(writer, "settings", ())
    if not all_layers and "karten" not in settings and layer is None:
        raise UsageError(f"export {fmt} needs --layer ({', '.join(LAYERS)})")
    if jahr is not None and "karten" not in settings:
        raise UsageError(f"--jahr is for the karte format, not {fmt}")
    if service and not all_layers:
        raise UsageError(f"--service is for the qgis format, not {fmt}")
    config = _config(config)
    extra = {name: _setting(name, config) for name in settings}
    if all_layers:
        extra["service"] = service
    if "karten" in settings:
        extra["jahr"] = jahr
    try:
        return writer(_db(database), layer, out, gemarkung=gemarkung, flur=flur, bbox=bbox,
                      **extra)
    except KatasterError:
        raise
    except Exception as err:                       # the output cannot be written
        import pyogrio.errors

        if not isinstance(err, (OSError, pyogrio.errors.DataSourceError,
                                pyogrio.errors.DataLayerError)):
            raise
        reason = getattr(err, "strerror", None) or str(err).split(":")[-1].strip()
        raise KatasterError(f"{out}: cannot write the export ({reason}); check the folder "
                            "and its permissions") from None


def parcels(gemarkung: str | int | None = None, flur: int | None = None,
            bbox: BBox | None = None, at: str | datetime | None = None,
            database: Database | None = None) -> gpd.GeoDataFrame:
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


def buildings(gemarkung: str | int | None = None, bbox: BBox | None = None,
              database: Database | None = None) -> gpd.GeoDataFrame:
    """Current buildings (Gebäude) as a GeoDataFrame.

    Examples
    --------
    >>> inside = buildings(bbox=(344000, 5689000, 344500, 5689500))
    >>> bool((inside.geom_type == "MultiPolygon").all())
    True
    """
    return views.read(_db(database), "gebaeude", gemarkung=gemarkung, bbox=bbox)


def gemarkungen(database: Database | None = None) -> gpd.GeoDataFrame:
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


def fluren(gemarkung: str | int | None = None,
           database: Database | None = None) -> gpd.GeoDataFrame:
    """Flur boundaries (imported, or derived from the parcels), optionally of one Gemarkung.

    Examples
    --------
    >>> fl = fluren(gemarkung="3084")
    >>> set(fl["gemarkung"]), set(fl["herkunft"])
    ({'Mülheim'}, {'importiert'})
    """
    return views.read(_db(database), "flur", gemarkung=gemarkung)


def import_runs(limit: int = 20, database: Database | None = None) -> pd.DataFrame:
    """The newest import runs as a DataFrame (id, started, status, importer, counts, files).

    Examples
    --------
    >>> import_runs(5)[["status", "importer"]]
          status importer
    0  committed      ogr
    """
    import pandas as pd

    from pipeline.runs import list_runs

    return pd.DataFrame(list_runs(_db(database), limit))


def maps(bbox: BBox | None = None, jahr: int | None = None,
         database: Database | None = None) -> gpd.GeoDataFrame:
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


def open_map(sheet: str, config: Config | None = None,
             database: Database | None = None) -> DatasetReader:
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
