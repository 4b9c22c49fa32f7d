"""Opening source paths safely: directories, zip and gzip with bomb guards.

Only importers touch files. This module turns the paths a user gave into plain files on disk
that a reader can open, unpacking archives into a private temporary directory with limits on
the decompressed size and the compression ratio.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from importers.base import SourceFile
from pipeline.errors import SourceError

CHUNK = 1 << 20


class Unpacked:
    """Files ready to read, plus the temporary directory that holds unpacked ones.

    Unpacked copies live under ``workdir`` (the project's state directory), in a directory
    named after the process; directories of processes that no longer run (a killed import) are
    removed when the next one is made."""

    def __init__(self, workdir=None):
        self._tmp = None
        self.workdir = Path(workdir) if workdir else Path(tempfile.gettempdir()) / "kataster"
        self.files = []   # (original path, readable path)
        self.ignored = []  # files of a directory that no reader of this importer reads

    @property
    def tmpdir(self):
        if self._tmp is None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            remove_leftovers(self.workdir)
            self._tmp = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=self.workdir))
        return self._tmp

    def close(self):
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def remove_leftovers(workdir):
    """Remove the unpacked copies of processes that are gone (killed imports)."""
    for entry in Path(workdir).iterdir():
        pid = entry.name.split("-", 1)[0]
        if entry.is_dir() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(entry, ignore_errors=True)


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


def unpack(paths, usable_suffixes, max_bytes, max_ratio, workdir=None):
    """Expand directories and archives into readable files.

    A directory is read whole, in name order: every readable file, and every ``.gz`` and
    ``.zip`` in it (unpacked like a file given by itself). A symbolic link that leads out of the
    directory is refused. Files of other kinds are listed in ``ignored``, never dropped silently.

    Parameters
    ----------
    paths : list of Path
    usable_suffixes : set of str
        Lower-case suffixes a reader can use (``.gpkg``, ``.shp``, ...). Sidecar files
        (``.dbf``, ``.shx``, ``.prj``, ``.cpg``) are unpacked alongside.
    """
    out = Unpacked(workdir)
    try:
        for path in paths:
            path = Path(path)
            if not path.exists():
                raise SourceError(path, "file not found", hint="check the path")
            if path.is_dir():
                found = directory_files(path, usable_suffixes)
                if not found:
                    raise SourceError(path, "directory contains no readable files "
                                            f"({', '.join(sorted(usable_suffixes | ARCHIVES))})")
                for p in found:
                    _add(p, out, usable_suffixes, max_bytes, max_ratio)
                out.ignored.extend(str(p) for p in sorted(path.rglob("*"))
                                   if p.is_file() and p not in found and _suffix(p) not in SIDECARS)
            else:
                _add(path, out, usable_suffixes, max_bytes, max_ratio)
    except BaseException:
        out.close()
        raise
    return out


ARCHIVES = {".gz", ".zip"}
SIDECARS = {".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".xsd", ".gfs"}


def directory_files(path, usable_suffixes):
    """The files of a directory an import reads (readable ones and archives), in name order;
    a link that leads out of the directory is refused."""
    root = Path(path).resolve()
    found = []
    for p in sorted(Path(path).rglob("*")):
        if not p.is_file() or _suffix(p) not in usable_suffixes | ARCHIVES:
            continue
        if p.is_symlink() or any(parent.is_symlink() for parent in p.parents):
            if not p.resolve().is_relative_to(root):
                raise SourceError(p, f"is a link to {p.resolve()}, outside the imported "
                                     "directory; refused", hint="copy the file into the "
                                                                "delivery's directory")
        found.append(p)
    return found


def _add(path, out, usable_suffixes, max_bytes, max_ratio):
    """One file: readable as it is, or a zip/gzip archive unpacked into the private directory."""
    if _suffix(path) == ".zip" or zipfile.is_zipfile(path) and path.suffix != ".gpkg":
        _unzip(path, out, usable_suffixes | SIDECARS, usable_suffixes, max_bytes, max_ratio)
    elif path.suffix.lower() == ".gz":
        folder = out.tmpdir / f"{len(out.files):06d}"
        folder.mkdir()
        target = folder / path.stem
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
        dest = out.tmpdir / f"{len(out.files):06d}" / path.stem
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


_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s>/]")
_EXCEPTION_TEXT = re.compile(rb"<(?:[\w.-]+:)?ExceptionText>\s*(.*?)\s*</", re.S)


def _head(path, size=64 * 1024):
    """The first bytes of a file (of the file inside a .gz), or b'' if unreadable."""
    try:
        if _suffix(path) == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read(size)
        with open(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error):
        return b""


def refuse_non_data(paths):
    """Refuse files that are not data although they look like it: the error answer of a web
    service (an OWS ``ExceptionReport``) saved as a file."""
    for path in paths:
        path = Path(path)
        files = directory_files(path, {".xml", ".gml"}) if path.is_dir() else [path]
        for f in files:
            if _suffix(f) not in (".xml", ".gml", ".gz"):
                continue
            head = _head(f)
            body = re.sub(rb"<\?.*?\?>|<!--.*?-->", b"", head, flags=re.S)
            m = _ROOT.search(body)
            if m and m.group(1) in (b"ExceptionReport", b"ServiceExceptionReport"):
                text = _EXCEPTION_TEXT.search(head)
                said = b" ".join((text.group(1) if text else b"").replace(
                    b"<![CDATA[", b"").replace(b"]]>", b"").split())[:300]
                raise SourceError(f, "is not data but the error answer of a web service "
                                     "(an OWS ExceptionReport)"
                                     + (f": {said.decode('utf-8', 'replace')}" if said else ""),
                                  hint="repeat the download with a corrected request; nothing "
                                       "was imported")


def open_inputs(paths, usable_suffixes, config):
    """The files named on the command line (directories expanded), for the run's record, and
    their usable contents unpacked under the state directory (limits from the configuration)."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(SourceFile.of(f) for f in directory_files(p, usable_suffixes))
        else:
            files.append(SourceFile.of(p))
    unpacked = unpack(paths, usable_suffixes, config["import.max_uncompressed_bytes"],
                      config["import.max_compression_ratio"],
                      workdir=Path(config.state_dir) / "unpacked")
    return files, unpacked
