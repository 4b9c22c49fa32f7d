"""PostgreSQL's binary COPY format, built column-wise with Arrow (no loop over rows).

A binary COPY stream is a header, one tuple per row (a 16-bit field count, then per field a
32-bit length, -1 for NULL, and the value in the type's binary "send" format) and a trailer.
Each field of a column is built as one Arrow binary array whose elements are "length + value";
the rows are the element-wise concatenation of the fields, so the whole batch is one buffer.

PostgreSQL parses this about twice as fast as CSV: geometries arrive as EWKB bytes rather than
hex text, numbers need no parsing. Only the types below are covered; :func:`supported` tells the
loader whether a batch can use this format (otherwise it writes CSV).

References: PostgreSQL documentation, "COPY", section "Binary Format"; the send functions of
each type (``int4send``, ``float8send``, ``jsonb_send``: version byte 1 + text; PostGIS
``geometry_send``/``geometry_recv``: EWKB).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
BIN = pa.large_binary()
EMPTY = pa.scalar(b"", BIN)

# The types this module writes (udt_name from information_schema).
TYPES = {"text", "varchar", "int4", "int8", "float8", "jsonb", "geometry", "timestamptz"}
# binary_slice without a stop fails on large_binary in pyarrow 26 ("Negative buffer resize").
_MAX_LENGTH = 2**31 - 1
# The Z/M flag byte of a little-endian WKB type code -> the same with the SRID flag (0x20).
_WITH_SRID = {0x00: 0x20, 0x80: 0xA0, 0x40: 0x60, 0xC0: 0xE0}


class OutOfRange(ValueError):
    """A value the column's binary type cannot hold (the loader then sends CSV, so that the
    server reports the value and its line as it always does)."""


def supported(udts):
    """True if every column type can be written in binary."""
    return all(u in TYPES for u in udts)


def _fixed(values, mask, fmt):
    """Binary fields of a fixed-width type: numpy values, a boolean NULL mask, a numpy dtype."""
    width = np.dtype(fmt).itemsize
    lengths = np.where(mask, -1, width).astype(">i4")
    present = np.asarray(values)[~mask].astype(fmt)
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.where(mask, 0, width), out=offsets[1:])
    data = pa.LargeBinaryArray.from_buffers(BIN, len(values), [None, pa.py_buffer(offsets),
                                                               pa.py_buffer(present.tobytes())])
    return pc.binary_join_element_wise(_lengths(lengths), data, EMPTY)


def _lengths(lengths):
    """A binary array of 4-byte big-endian lengths."""
    n = len(lengths)
    offsets = np.arange(0, 4 * (n + 1), 4, dtype=np.int64)
    return pa.LargeBinaryArray.from_buffers(BIN, n, [None, pa.py_buffer(offsets),
                                                     pa.py_buffer(lengths.astype(">i4").tobytes())])


def _variable(payload):
    """Binary fields of a variable-length value (an Arrow binary array; nulls are NULL)."""
    payload = payload.cast(BIN)
    mask = payload.is_null().to_numpy(zero_copy_only=False)
    length = pc.binary_length(payload).fill_null(0).to_numpy(zero_copy_only=False)
    lengths = np.where(mask, -1, length)
    return pc.binary_join_element_wise(_lengths(lengths), pc.fill_null(payload, EMPTY), EMPTY)


def text(values):
    """Text from an Arrow array of any type that casts to string."""
    return _variable(pc.cast(values, pa.string()))


def integer(values, udt):
    """int4 or int8; values outside int4 raise :class:`OutOfRange` (numpy would wrap them)."""
    values = pc.cast(values, pa.int64())
    mask = values.is_null().to_numpy(zero_copy_only=False)
    numbers = values.fill_null(0).to_numpy(zero_copy_only=False)
    if udt == "int4" and len(numbers) and (numbers.min() < -2**31 or numbers.max() >= 2**31):
        raise OutOfRange("integer out of range for int4")
    return _fixed(numbers, mask, ">i4" if udt == "int4" else ">i8")


def float8(values):
    values = pc.cast(values, pa.float64())
    mask = values.is_null().to_numpy(zero_copy_only=False)
    return _fixed(values.fill_null(0).to_numpy(zero_copy_only=False), mask, ">f8")


def jsonb(values):
    """JSON text (an Arrow string array) as jsonb: version byte 1, then the text."""
    text_ = pc.cast(values, pa.string()).cast(BIN)
    return _variable(pc.binary_join_element_wise(pa.scalar(b"\x01", BIN), text_, EMPTY))


def timestamp_constant(iso, n):
    """One timestamptz (an ISO 8601 string with its offset) repeated n times."""
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {iso!r} has no time zone")
    micros = (moment - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return _fixed(np.full(n, micros, dtype=np.int64), np.zeros(n, dtype=bool), ">i8")


def ewkb(wkb, srid):
    """EWKB with ``srid`` from little-endian extended WKB without SRID (what
    ``shapely.to_wkb(g, byte_order=1)`` writes; an Arrow binary array; nulls kept).

    The SRID flag (0x20000000) goes into the type code's last byte and the SRID follows the
    type code, as PostGIS writes it. ISO WKB (Z/M as type codes 1000+) is refused.
    """
    wkb = wkb.cast(BIN)
    if pc.any(pc.not_equal(pc.binary_slice(wkb, 0, 1), pa.scalar(b"\x01", BIN))).as_py():
        raise ValueError("WKB is not little-endian")
    if pc.any(pc.not_equal(pc.binary_slice(wkb, 2, 4), pa.scalar(b"\x00\x00", BIN))).as_py():
        raise ValueError("WKB is not extended WKB (ISO type code)")
    flags = pc.binary_slice(wkb, 4, 5)
    marked = pa.nulls(len(wkb), BIN)
    for code in pc.unique(flags.drop_null()).to_pylist():
        with_srid = _WITH_SRID.get(code[0])
        if with_srid is None:
            raise ValueError(f"unexpected WKB type flags {code!r}")
        marked = pc.if_else(pc.equal(flags, pa.scalar(code, BIN)),
                            pa.scalar(bytes([with_srid]), BIN), marked)
    payload = pc.binary_join_element_wise(pc.binary_slice(wkb, 0, 4), marked,
                                          pa.scalar(struct.pack("<i", srid), BIN),
                                          pc.binary_slice(wkb, 5, _MAX_LENGTH), EMPTY)
    return _variable(payload)


def rows(fields):
    """The tuples of a batch: a binary array, one element per row (field count + fields)."""
    count = pa.scalar(struct.pack(">h", len(fields)), BIN)
    return pc.binary_join_element_wise(count, *fields, EMPTY)


def concat(elements):
    """The bytes of all elements of a binary array, back to back (its data buffer, sliced)."""
    if len(elements) == 0:
        return b""
    offsets = np.frombuffer(elements.buffers()[1], dtype=np.int64,
                            count=len(elements) + 1, offset=8 * elements.offset)
    return memoryview(elements.buffers()[2])[offsets[0]:offsets[-1]]


def stream(fields):
    """A complete binary COPY stream for the given fields (one binary array per column), as
    the buffers to write in order (header, tuples, trailer), so the tuples are not copied."""
    return [HEADER, concat(rows(fields)), TRAILER]
