"""The AX_Portionskennung of an NBA file: which delivery (profile, date) and which part.

Read by the NAS importer to put the files of a delivery in order; the core
(``pipeline.portions``) checks the order against what was applied.
"""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from pathlib import Path

_KENNUNG = re.compile(rb"<(?:[\w.-]+:)?AX_Portionskennung\b[^>]*>(.*?)</(?:[\w.-]+:)?"
                      rb"AX_Portionskennung>", re.S)
_FIELD = re.compile(rb"<(?:[\w.-]+:)?(\w+)\b[^>]*>([^<]*)</")
WINDOW = 1 << 20


def read_portion(path):
    """The AX_Portionskennung of a NAS file as a dict (None if it has none). NBA files carry it
    in the header or at the very end; only those parts of the file are read."""
    path = Path(path)
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        head = fh.read(WINDOW)
        tail = b""
        if len(head) == WINDOW:
            if opener is open:
                fh.seek(max(WINDOW, path.stat().st_size - WINDOW))
                tail = fh.read()
            else:
                while chunk := fh.read(WINDOW):
                    tail = (tail + chunk)[-WINDOW:]
    m = _KENNUNG.search(head) or _KENNUNG.search(tail)
    if not m:
        return None
    fields = {k.decode(): v.decode("utf-8", "replace").strip()
              for k, v in _FIELD.findall(m.group(1))}
    if "datum" not in fields:
        return None
    try:
        portion_time(fields["datum"])
    except ValueError:
        raise ValueError(f"AX_Portionskennung/datum {fields['datum'][:40]!r} is not a date "
                         "and time") from None
    return fields


def portion_key(p):
    """(profilkennung, datum, part) of a portion dict; part -1 where it is not numbered."""
    try:
        nr = int(p.get("laufendeNummerVonGesamtzahl", "-1"))
    except ValueError:
        nr = -1
    return (p.get("profilkennung") or "", p["datum"], nr)


def portion_time(text):
    """A portion's datum as an aware datetime."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
