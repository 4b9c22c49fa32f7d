"""No traceback, ever: mutated real and generated NAS files either import or fail with a
KatasterError that names the file and the line (or the object), and leave the data as it was.

Mutations (chosen by hypothesis, derandomised so CI sees the same cases each run): truncation,
dropped and duplicated lines, numbers in positions replaced by NaN/Inf/huge values, wrong CRS
names, a DOCTYPE, an element inside a property, and text re-encoded in another charset.
"""

import gzip
import re

import pytest
from conftest import SHARED, query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import KatasterError
from pipeline.runs import run_import

SEEDS = {
    "wfs-bb": (SHARED / "corpus/wfs-bb/NAS-konform.xml").read_bytes(),
    "by": (SHARED / "corpus/by-zales2/parcel_nas.xml").read_bytes(),
    "rlp": gzip.decompress((SHARED / "corpus/rlp-nba/NBA-Mustermonzel_20100520T144438_2von8_"
                                     "32350000_5525000.xml.gz").read_bytes()),
}


def _generated():
    """A small generated GID 7.1 extract (all GML forms, shared arcs, own-CRS positions)."""
    import tempfile
    from pathlib import Path

    from pipeline.synthetic.nas import write

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "g.xml"
        write(30, path, version="7.1", seed=11)
        return path.read_bytes()


SEEDS["generated"] = _generated()
NUMBER = re.compile(rb"(?<=[\s>])-?\d+\.\d+(?=[\s<])")
SRS = re.compile(rb'srsName="[^"]*"')


def _lines(data):
    return data.split(b"\n")


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = SEEDS[name]
    kind = draw(st.sampled_from(["truncate", "drop", "duplicate", "number", "srs", "doctype",
                                 "nested", "encoding"]))
    if kind == "truncate":
        data = data[:draw(st.integers(1, len(data) - 1))]
    elif kind in ("drop", "duplicate"):
        lines = _lines(data)
        i = draw(st.integers(0, len(lines) - 1))
        lines[i:i + 1] = [] if kind == "drop" else [lines[i], lines[i]]
        data = b"\n".join(lines)
    elif kind == "number":
        numbers = list(NUMBER.finditer(data))
        m = numbers[draw(st.integers(0, len(numbers) - 1))]
        value = draw(st.sampled_from([b"NaN", b"INF", b"-inf", b"1e300", b"-1e308", b"1e-300",
                                      b"0", b"99999999999"]))
        data = data[:m.start()] + value + data[m.end():]
    elif kind == "srs":
        found = list(SRS.finditer(data))
        value = draw(st.sampled_from([b'srsName="urn:adv:crs:FANTASIE"', b'srsName=""',
                                      b'srsName="EPSG:4326"', b'srsName="urn:adv:crs:DE_DHHN92_NH"',
                                      b'srsName="urn:adv:crs:DE_DHDN_3GK4"']))
        if found:
            m = found[draw(st.integers(0, len(found) - 1))]
            data = data[:m.start()] + value + data[m.end():]
        else:
            data = data.replace(b"<gml:pos>", b"<gml:pos " + value + b">", 1)
    elif kind == "doctype":
        data = re.sub(rb"^(<\?xml[^>]*\?>)", rb'\1<!DOCTYPE x [<!ENTITY e "e">]>', data, count=1)
    elif kind == "nested":
        data = data.replace(b"<flurnummer>", b"<flurnummer><AX_Unsinn>1</AX_Unsinn>", 1) \
            .replace(b"</flurnummer>", b"</flurnummer>", 1)
    else:
        data = data.decode("utf-8").encode(draw(st.sampled_from(["latin-1", "utf-16", "cp1252"])),
                                           errors="replace")
    return f"{name}-{kind}", data


def _state(db):
    return query(db, "SELECT (SELECT count(*) FROM kataster.ax_flurstueck),"
                     " (SELECT count(*) FROM kataster.ax_objekt),"
                     " (SELECT count(*) FROM kataster.ax_nutzung),"
                     " (SELECT count(*) FROM kataster_privat.ax_objekt),"
                     " (SELECT md5(coalesce(string_agg(gml_id || beginnt || coalesce(endet::text, '')"
                     "   || coalesce(ST_AsEWKB(geom)::text, ''), ',' ORDER BY gml_id, beginnt), ''))"
                     "  FROM kataster.ax_flurstueck)")


@pytest.mark.slow
@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mutated())
def test_mutated_files_fail_cleanly(case, db, config, tmp_path_factory):
    label, data = case
    path = tmp_path_factory.mktemp("fuzz") / f"{label}.xml"
    path.write_bytes(data)
    before = _state(db)
    try:
        run_import(db, config, [path], fmt="nas", force=True)
    except KatasterError as err:
        text = str(err)
        assert str(path) in text, text
        # where: a line, an object, or (for a refused DTD) the whole document
        assert re.search(r"line \d+|feature |AX_\w+ DE|declares a DTD", text), text
        assert _state(db) == before, text
    else:
        # It imported: then every stored coordinate is sane.
        assert query(db, "SELECT count(*) FROM kataster.ax_objekt WHERE geom IS NOT NULL AND NOT"
                         " ST_Within(geom, ST_MakeEnvelope(240000, 5190000, 960000, 6150000,"
                         " 25832))") == [(0,)]
