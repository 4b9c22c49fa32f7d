"""The one parser of the Flurstückskennzeichen (pipeline.kennzeichen), database-free."""

import re

import pytest

from pipeline import kennzeichen


@pytest.mark.parametrize("text,parts", [
    ("05309600100001______", ("05", "3096", 1, 1, None, None)),
    ("053096001000010002__", ("05", "3096", 1, 1, "2", None)),
    ("020125___00128______", ("02", "0125", None, 128, None, None)),        # Hamburg: no Flur
    ("095653___054430012__", ("09", "5653", None, 5443, "12", None)),       # Bavaria, Nenner
    ("05309600100001", ("05", "3096", 1, 1, None, None)),                   # typed short
    ("053096001000010002", ("05", "3096", 1, 1, "2", None)),                # typed short
    ("05309600100001____01", ("05", "3096", 1, 1, None, "01")),              # Folge
])
def test_valid_keys(text, parts):
    k = kennzeichen.parse(text)
    assert (k.land, k.gemarkung, k.flur, k.zaehler, k.nenner, k.folge) == parts
    assert len(k.text) == 20 and kennzeichen.parse(k.text) == k
    assert re.match(kennzeichen.PATTERN, k.text)          # the SQL and Arrow grammar agrees
    assert re.match(kennzeichen.NAMED_PATTERN, k.text)


@pytest.mark.parametrize("text", [
    "0530960010000", "05309600100001___X", "05309600100001_______", "0530960_100001______",
    "AB309600100001______", "0530960010000100", "", None, "05 3096 001 00001",
])
def test_malformed_keys(text):
    with pytest.raises(ValueError, match="not a Flurstückskennzeichen"):
        kennzeichen.parse(text)
    assert not kennzeichen.is_valid(text)
