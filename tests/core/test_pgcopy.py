"""Binary COPY (pipeline.pgcopy): the same rows as the CSV path, in the real database."""

import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely
import shapely.affinity

from importers.base import Batch
from pipeline import pgcopy
from pipeline.loader import Encoded, Encoder, Loader, TableInfo

SQUARE = shapely.box(350000, 5700000, 350010, 5700010)   # in Mülheim (stored CRS)


def _elements(field):
    return field.to_pylist()


@pytest.mark.parametrize("geom", [
    SQUARE,
    shapely.MultiPolygon([SQUARE, shapely.box(350020, 5700000, 350030, 5700010)]),
    shapely.Polygon([(0, 0, 1), (1, 0, 2), (1, 1, 3), (0, 0, 1)]),          # Z
    shapely.from_wkt("POINT M (1 2 3)"),                                      # M
    shapely.from_wkt("LINESTRING ZM (1 2 3 4, 5 6 7 8)"),                     # ZM
])
def test_ewkb_matches_geos_extended_wkb(geom):
    """The SRID spliced into GEOS's little-endian WKB (as the loader writes it) gives exactly
    GEOS's EWKB with that SRID."""
    wkb = pa.array([shapely.to_wkb(geom, byte_order=1), None], pa.large_binary())
    field = _elements(pgcopy.ewkb(wkb, 25832))
    expected = shapely.to_wkb(shapely.set_srid(geom, 25832), byte_order=1, include_srid=True,
                              flavor="extended")
    assert field[0] == struct.pack(">i", len(expected)) + expected
    assert field[1] == struct.pack(">i", -1)                                  # NULL


def test_fixed_width_and_text_fields():
    assert _elements(pgcopy.integer(pa.array([1, None, -2]), "int4")) == [
        struct.pack(">ii", 4, 1), struct.pack(">i", -1), struct.pack(">ii", 4, -2)]
    assert _elements(pgcopy.integer(pa.array([2**40]), "int8")) == [struct.pack(">iq", 8, 2**40)]
    assert _elements(pgcopy.float8(pa.array([1.5, None]))) == [
        struct.pack(">id", 8, 1.5), struct.pack(">i", -1)]
    assert _elements(pgcopy.text(pa.array(["Straße", None, ""]))) == [
        struct.pack(">i", 7) + "Straße".encode(), struct.pack(">i", -1), struct.pack(">i", 0)]
    assert _elements(pgcopy.jsonb(pa.array(['{"a": 1}']))) == [struct.pack(">i", 9) + b'\x01{"a": 1}']
    with pytest.raises(pgcopy.OutOfRange):
        pgcopy.integer(pa.array([2**31]), "int4")      # numpy would wrap it to a negative number
    with pytest.raises(ValueError, match="little-endian"):
        pgcopy.ewkb(pa.array([shapely.to_wkb(SQUARE, byte_order=0)], pa.large_binary()), 25832)
    z = shapely.Polygon([(0, 0, 1), (1, 0, 2), (1, 1, 3), (0, 0, 1)])
    with pytest.raises(ValueError, match="ISO"):
        pgcopy.ewkb(pa.array([shapely.to_wkb(z, byte_order=1, flavor="iso")], pa.large_binary()),
                    25832)


def test_binary_copy_loads_the_same_rows_as_csv(db):
    frame = pd.DataFrame({
        "gml_id": ["a1", "a2", "a3", "a4"],
        "flurstueckskennzeichen": ["05123400100001______", "y", "051234001000020001__", "x"],
        "land": ["05", "05", None, "05"],
        "gemarkungsnummer": ["1234", "1234", "1234", None],
        "flurnummer": pd.array([1, None, 1, 3], dtype="Int64"),
        "zaehler": pd.array([1, 2, None, 4], dtype="Int64"),
        "nenner": [None, "1", "12a", None],
        "amtliche_flaeche": [100.0, np.nan, 0.25, 1e9],
        "lage": ["Schloßstraße 1", 'Am "Markt" 2\nHinterhaus', None, "Ölweg, 3"],
        "attrs": ['{"k": "v"}', '{"leer": "", "ä": [1, 2.5]}', '{"q": "\\"x\\"", "n": null}', "{}"],
        "geom": [SQUARE, shapely.MultiPolygon([SQUARE, shapely.box(350020, 5700000, 350030, 5700010)]), None,
                 shapely.affinity.translate(shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)]),
                                           350000, 5700000)],   # bow-tie
        "src": ["f.gpkg:fid 1", "f.gpkg:fid 2", "f.gpkg:fid 3", "f.gpkg:fid 4"],
    })
    columns = ", ".join(c for c in frame.columns if c != "geom") + ", ST_AsEWKB(geom), beginnt," \
        " source, run_id, content_hash"

    def load(frame, run_id, run_ts, csv=False):
        with db.connect() as conn:
            loader = Loader(conn, run_id, run_ts, "ogr:test", versioned=False)
            loader.prepare(["kataster.ax_flurstueck"])
            stage = loader.staged["kataster.ax_flurstueck"]
            encoded = loader.encode(Batch("kataster.ax_flurstueck", "AX_Flurstueck", frame))
            assert encoded.binary
            if csv:
                cols, data = loader.encoder()._encode_csv(frame, stage.info)
                encoded = Encoded(encoded.table, cols, data, encoded.rows, {})
            loader.copy(encoded)
            rows = conn.execute(f"SELECT {columns} FROM {stage.stage} ORDER BY gml_id").fetchall()
            conn.rollback()
        return rows

    rows = load(frame, 7, "2026-11-29T10:00:00+01:00")
    csv = load(frame, 7, "2026-11-29T10:00:00+01:00", csv=True)
    assert [r[:-1] for r in rows] == [r[:-1] for r in csv]                    # all but the hash
    assert rows[0][12].isoformat() == "2026-11-29T09:00:00+00:00"             # beginnt, in UTC
    assert rows[1][8] == 'Am "Markt" 2\nHinterhaus' and rows[2][9]["q"] == '"x"'
    assert rows[2][11] is None and rows[1][4] is None and rows[1][7] is None  # NULLs; NaN too
    assert rows[0][13:15] == ("ogr:test", 7)
    assert shapely.from_wkb(rows[0][11]).geom_type == "MultiPolygon"          # promoted
    assert shapely.get_srid(shapely.from_wkb(rows[3][11])) == 25832
    hashes = [r[-1] for r in rows]
    assert len(set(hashes)) == 4 and all(len(h) == 16 for h in hashes)
    # The content hash depends on the delivered content only, not on the run or the source
    # feature; any changed value changes it.
    later = load(frame.assign(src="other.gpkg:fid 9"), 8, "2026-12-01T00:00:00+00:00")
    assert [r[-1] for r in later] == hashes
    changed = load(frame.assign(nenner=[None, "1", "12a", "7"]), 7, "2026-11-29T10:00:00+01:00")
    assert [r[-1] for r in changed][:3] == hashes[:3] and changed[3][-1] != hashes[3]


def test_out_of_range_integer_fails_the_run_like_csv(db):
    """A Zähler beyond int4 is not wrapped: the batch goes as CSV and the server refuses it."""
    import psycopg

    frame = pd.DataFrame({"gml_id": ["a1"], "flurstueckskennzeichen": ["x"],
                          "zaehler": pd.array([3_000_000_000], dtype="Int64"),
                          "geom": [SQUARE], "src": ["f.gpkg:fid 1"]})
    with db.connect() as conn:
        loader = Loader(conn, 1, "2026-11-29T10:00:00+00:00", "ogr:test", versioned=False)
        loader.prepare(["kataster.ax_flurstueck"])
        encoded = loader.encode(Batch("kataster.ax_flurstueck", "AX_Flurstueck", frame))
        assert not encoded.binary
        with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="out of range"):
            loader.copy(encoded)


def test_csv_content_hash_does_not_depend_on_the_batch():
    # NAS rows go as CSV. Arrow infers a batch's column types from its values: a column of
    # integers with a missing value becomes float, an all-empty one has no type. The same
    # object must hash the same whatever else its batch holds (duplicates across the files
    # of a delivery are recognised by the hash).
    info = TableInfo("kataster_privat", "ax_namensnummer",
                     {"gml_id": "text", "beginnt": "timestamptz", "anteil_zaehler": "numeric",
                      "eigentuemerart": "int4", "benennt": "text", "attrs": "jsonb"})
    encoder = Encoder({"t": info}, "2026-11-29T10:00:00+00:00", "nas", 1)
    row = {"gml_id": "DENW36ALN0000001", "beginnt": "2020-01-01T00:00:00+00:00",
           "anteil_zaehler": "1", "eigentuemerart": 1000, "benennt": None, "attrs": {"a": 1}}
    alone = pd.DataFrame([row])
    mixed = pd.DataFrame([row, {**row, "gml_id": "DENW36ALN0000002", "eigentuemerart": None,
                                "benennt": "DENW36ALP0000001"}])
    hashes = []
    for frame in (alone, mixed):
        encoded = encoder.encode(Batch("t", "AX_Namensnummer", frame))
        assert not encoded.binary
        first = bytes(encoded.data[0]).decode().splitlines()[0]
        hashes.append(first.split(",")[encoded.columns.index("content_hash")])
    assert hashes[0] == hashes[1]
