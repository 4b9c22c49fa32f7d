"""The Flurstückskennzeichen: one parser for every place that reads a parcel key.

The key has 20 characters: Land (2 digits), Gemarkung (4), Flur (3), Zähler (5), Nenner (4),
Folge (2). Where a state has no Flur (Bavaria, Saxony, Hamburg) the Flur is ``___``; a parcel
without Nenner has ``____``; the Folge is usually ``__``. Examples::

    05309600100001______   NRW: Land 05, Gemarkung 3096, Flur 1, Zähler 1, no Nenner
    020125___00128______   Hamburg: Land 02, Gemarkung 0125, no Flur, Zähler 128

People type keys without the trailing underscores (``0530960010000100``); :func:`parse`
accepts that too, :func:`canonical` gives the 20-character form.

The same grammar is used in SQL (``PATTERN``, by the rule ``id.syntax``), in Arrow (by the flat
importer) and here, so a key that one of them accepts, all accept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The canonical 20-character key. Groups: land, gemarkung, flur, zaehler, nenner, folge.
PATTERN = r"^([0-9]{2})([0-9]{4})([0-9]{3}|_{3})([0-9]{5})([0-9]{4}|_{4})([0-9]{2}|_{2})$"
_CANONICAL = re.compile(PATTERN)
# The same with named groups (for Arrow's extract_regex).
NAMED_PATTERN = (r"^(?P<land>[0-9]{2})(?P<gemarkung>[0-9]{4})(?P<flur>[0-9]{3}|_{3})"
                 r"(?P<zaehler>[0-9]{5})(?P<nenner>[0-9]{4}|_{4})(?P<folge>[0-9]{2}|_{2})$")


@dataclass(frozen=True)
class Kennzeichen:
    """The parts of a Flurstückskennzeichen (``flur`` and ``nenner`` None where absent)."""

    land: str
    gemarkung: str
    flur: int | None
    zaehler: int
    nenner: str | None
    folge: str | None

    @property
    def text(self):
        """The canonical 20-character form."""
        flur = f"{self.flur:03d}" if self.flur is not None else "___"
        nenner = self.nenner.zfill(4) if self.nenner else "____"
        return f"{self.land}{self.gemarkung}{flur}{self.zaehler:05d}{nenner}{self.folge or '__'}"


def canonical(text):
    """The 20-character key for ``text`` (trailing underscores may be missing), or None."""
    if text is None:
        return None
    t = str(text).strip()
    if 14 <= len(t) < 20 and re.fullmatch(r"[0-9_]+", t):
        t = t.ljust(20, "_")
    return t if _CANONICAL.match(t) else None


def parse(text):
    """Parse a key; raises ``ValueError`` with the expected form if it is malformed."""
    t = canonical(text)
    if t is None:
        raise ValueError(
            f"{text!r} is not a Flurstückskennzeichen: expected 20 characters "
            "Land(2) Gemarkung(4) Flur(3, or ___ where the state has no Flur) Zähler(5) "
            "Nenner(4, or ____) Folge(2, usually __), e.g. 05309600100001______ or "
            "020125___00128______")
    land, gemarkung, flur, zaehler, nenner, folge = _CANONICAL.match(t).groups()
    nenner = nenner.lstrip("0") if nenner != "____" else None
    return Kennzeichen(land, gemarkung, None if flur == "___" else int(flur), int(zaehler),
                       nenner or None, None if folge == "__" else folge)


def is_valid(text):
    """True for a canonical 20-character key."""
    return text is not None and bool(_CANONICAL.match(str(text)))
