"""The one small interface every importer implements.

An importer turns source files into :class:`Batch` objects: pandas frames whose columns are
the target table's columns, geometries already in EPSG:25832, and the delivery's update
operations into :class:`Operation` records. It never touches a database: the loading core
(``pipeline.loader``) stages and merges, and runs the named steps the source asks for
(``pipeline.steps``), for every importer the same way.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import SourceError


@dataclass
class Batch:
    """Rows for one target table.

    Attributes
    ----------
    table : str
        Target table, ``schema.name`` (e.g. ``kataster.ax_flurstueck``).
    objektart : str
        ALKIS type name for counting (``AX_Flurstueck``); a frame column ``objektart`` wins.
    frame : pandas.DataFrame
        One row per object. ``geom`` holds shapely geometries in EPSG:25832; ``src`` names the
        feature in the source (file, layer, feature id) for messages.
    """

    table: str
    objektart: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class Operation:
    """One update operation of a delivery (NBA: wfs:Delete, wfs:Replace, wfs:Update), as data
    for the core's steps ``check_operations`` and ``apply_operations``.

    Attributes
    ----------
    kind : str
        ``delete``, ``replace`` or ``update`` (an update ends the version's life).
    objektart, table : str
        The ALKIS type named and its target table.
    target : str
        The id as written (object id, or object id and ``beginnt``).
    gml_id : str
        The object id (16 characters).
    beginnt : datetime or None
        The version named; None: the open version.
    safe : bool
        ``safeToIgnore``: a missing target is a finding, not an error.
    src : str
        The file, for messages.
    ends_at : datetime or None
        When the version ends: an update's ``endet``, else the portion's date; None: the run's
        time.
    anlass : str or None
        The reason an update gives for the end.
    """

    kind: str
    objektart: str
    table: str
    target: str
    gml_id: str
    beginnt: datetime | None
    safe: bool
    src: str
    ends_at: datetime | None = None
    anlass: str | None = None


SHAPEFILE_PARTS = (".dbf", ".shx", ".prj", ".cpg")


@dataclass
class SourceFile:
    """A file named on the command line: its path, size and content hash (the run's record)."""

    path: Path
    size: int
    sha256: str

    @classmethod
    def of(cls, path):
        """The file and its content hash. A Shapefile's hash covers its sidecars (``.dbf``,
        ``.shx``, ``.prj``, ``.cpg``), so a delivery that changes only its attributes is not
        taken for one already imported."""
        path = Path(path)
        parts = [path]
        if path.suffix.lower() == ".shp":
            parts += [s for ext in SHAPEFILE_PARTS for s in (path.with_suffix(ext),
                                                              path.with_suffix(ext.upper()))
                      if s.is_file()]
        try:
            h = hashlib.sha256()
            for part in parts:
                with open(part, "rb") as fh:
                    for chunk in iter(functools.partial(fh.read, 1 << 20), b""):
                        h.update(chunk)
        except FileNotFoundError:
            raise SourceError(path, "file not found", hint="check the path") from None
        except IsADirectoryError:
            raise SourceError(path, "is a directory, not a file") from None
        except PermissionError:
            raise SourceError(path, "cannot read the file (permission denied)") from None
        return cls(path, path.stat().st_size, h.hexdigest())


@dataclass
class ImportSource:
    """What an importer opened: its files, how to merge, and a batch iterator factory."""

    importer: str
    files: list
    source: str                 # label stored with every row, e.g. "ogr:alkis-vereinfacht"
    versioned: bool             # True: objects carry beginnt; False: flat files (see DESIGN.md)
    batches: Callable[[], Iterator[Batch]]
    tables: list = field(default_factory=list)  # target tables the batches write to
    findings: list = field(default_factory=list)
    transformation: str | None = None
    options: dict = field(default_factory=dict)
    steps: tuple = ()           # names of the core's steps this delivery needs (pipeline.steps)
    operations: list = field(default_factory=list)  # Operation records, complete once the
                                                    # batches have been read
    cleanup: Callable[[], None] | None = None    # releases temporary files
    describe_transformation: Callable[[], str | None] | None = None   # for sources that learn
                                                                      # their CRSs late
    # encoder -> iterator of loader.Encoded, for sources that read and encode in worker
    # processes (NAS pieces)
    encoded: Callable[[Any], Iterator[Any]] | None = None
    rasters: list = field(default_factory=list)  # scans for the core's step karte_cog

    def close(self):
        """Release what the source holds (temporary files)."""
        if self.cleanup is not None:
            self.cleanup()
            self.cleanup = None
