"""Opening source paths safely: directories, zip and gzip with bomb guards.

Only importers touch files. This module turns the paths a user gave into plain files on disk
that a reader can open, unpacking archives into a private temporary directory with limits on
the decompressed size and the compression ratio.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from pipeline.errors import SourceError

CHUNK = 1 << 20


class Unpacked:
    """Files ready to read, plus the temporary directory that holds unpacked ones."""

    def __init__(self):
        self._tmp = None
        self.files = []   # (original path, readable path)

    @property
    def tmpdir(self):
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kataster-")
        return Path(self._tmp.name)

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _copy_limited(src, dst, origin, compressed_size, max_bytes, max_ratio):
    """Copy a decompressing stream, refusing bombs before they fill the disk."""
    written = 0
    limit = min(max_bytes, max(compressed_size, 1) * max_ratio)
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            return written
        written += len(chunk)
        if written > limit:
            raise SourceError(
                origin,
                f"decompresses to more than {limit:,} bytes "
                f"({compressed_size:,} bytes compressed): refused as a possible "
                "decompression bomb",
                hint="raise import.max_uncompressed_bytes / import.max_compression_ratio "
                     "if the file is genuine",
            )
        dst.write(chunk)


def unpack(paths, usable_suffixes, max_bytes, max_ratio):
    """Expand directories and archives into readable files.

    Parameters
    ----------
    paths : list of Path
    usable_suffixes : set of str
        Lower-case suffixes a reader can use (``.gpkg``, ``.shp``, ...). Sidecar files
        (``.dbf``, ``.shx``, ``.prj``, ``.cpg``) are unpacked alongside.
    """
    out = Unpacked()
    sidecars = {".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".xsd", ".gfs"}
    try:
        for path in paths:
            path = Path(path)
            if not path.exists():
                raise SourceError(path, "file not found", hint="check the path")
            if path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.is_file()
                               and _suffix(p) in usable_suffixes)
                if not found:
                    raise SourceError(path, "directory contains no readable files "
                                            f"({', '.join(sorted(usable_suffixes))})")
                out.files.extend((p, p) for p in found)
            elif _suffix(path) == ".zip" or zipfile.is_zipfile(path) and path.suffix != ".gpkg":
                _unzip(path, out, usable_suffixes | sidecars, usable_suffixes, max_bytes,
                       max_ratio)
            elif path.suffix.lower() == ".gz":
                target = out.tmpdir / path.stem
                try:
                    with gzip.open(path, "rb") as src, open(target, "wb") as dst:
                        _copy_limited(src, dst, path, path.stat().st_size, max_bytes, max_ratio)
                except (OSError, EOFError, zlib.error) as err:
                    if isinstance(err, SourceError):
                        raise
                    raise SourceError(path, f"not a readable gzip file: {err}") from None
                out.files.append((path, target))
            else:
                out.files.append((path, path))
    except BaseException:
        out.close()
        raise
    return out


def _suffix(path):
    return Path(path).suffix.lower()


def _unzip(path, out, wanted, usable, max_bytes, max_ratio):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise SourceError(path, f"not a readable zip file: {err}") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        picked = [m for m in members if _suffix(m.filename) in wanted
                  and not Path(m.filename).name.startswith(".")]
        if not any(_suffix(m.filename) in usable for m in picked):
            names = ", ".join(m.filename for m in members[:10]) or "nothing"
            raise SourceError(path, f"zip contains no usable file (found: {names})",
                              hint=f"expected one of {', '.join(sorted(usable))}")
        total = 0
        dest = out.tmpdir / path.stem
        for member in picked:
            name = Path(member.filename)
            if name.is_absolute() or ".." in name.parts:
                raise SourceError(path, f"zip member {member.filename!r} points outside the "
                                        "archive; refused")
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as src, open(target, "wb") as dst:
                    total += _copy_limited(src, dst, f"{path}!{member.filename}",
                                           member.compress_size, max_bytes - total, max_ratio)
            except (zipfile.BadZipFile, zlib.error, EOFError) as err:
                raise SourceError(path, f"zip member {member.filename!r} is damaged: {err}") from None
            if _suffix(target) in usable:
                out.files.append((path, target))


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
