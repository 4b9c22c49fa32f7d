"""The loading core every importer uses.

Batches stream into temporary staging tables with COPY; :meth:`Loader.merge` then merges each
staging table into its target table. The caller (``pipeline.runs``) wraps all of it in one
transaction per import run, so a failure or a killed process leaves the previous state intact.

Merge semantics (see DESIGN.md, "Merge semantics"):

* versioned sources (NAS): objects are identified by (gml_id, beginnt). A version already
  stored is kept once; a newer version closes the open one (``endet`` = its ``beginnt``) or,
  without history, replaces it.
* flat sources (Shapefile, GeoPackage, ...): the delivery replaces the objects of the same
  source in the Gemarkungen it covers. Unchanged objects (same content hash) stay, changed ones
  get a new version, objects missing from the delivery are closed (or deleted without history).
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely
from psycopg import sql

from pipeline import pgcopy
from pipeline.coordinates import MARGIN_NOTE, outside
from pipeline.errors import SourceError
from schemas import queries

log = logging.getLogger(__name__)
QUERIES = queries("loader")

SRID = 25832
# Columns the loader fills itself; importers never provide them.
MANAGED = ("content_hash", "source", "run_id")


@dataclass
class TableInfo:
    schema: str
    name: str
    columns: dict            # name -> udt_name (e.g. text, int4, _text, geometry, jsonb)
    geometry_type: str | None = None

    @property
    def ident(self):
        return sql.Identifier(self.schema, self.name)

    @property
    def qualified(self):
        return f"{self.schema}.{self.name}"


def table_info(conn, qualified):
    schema, name = qualified.split(".")
    names = {"schema": schema, "name": name}
    rows = conn.execute(QUERIES["table_columns"], names).fetchall()
    if not rows:
        raise KeyError(f"no table {qualified}")
    geom = conn.execute(QUERIES["geometry_type"], names).fetchone()
    return TableInfo(schema, name, dict(rows), geom[0] if geom else None)


def _q(statement, **parts):
    """The loader's ``statement`` with its identifiers filled in."""
    return sql.SQL(QUERIES[statement]).format(**parts)


def _columns(names):
    return sql.SQL(", ").join(sql.Identifier(c) for c in names)


def _pg_array(values):
    if values is None or (isinstance(values, float) and np.isnan(values)):
        return None
    items = ['"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]
    return "{" + ",".join(items) + "}"


# Upper-case hex digits of every byte value, as 2-byte strings (what GEOS's hex writer gives).
_HEX = np.frombuffer(b"".join(b"%02X" % i for i in range(256)), dtype=np.uint16)
_SRID_HEX = SRID.to_bytes(4, "little").hex().upper()
_WITH_SRID = {"00": "20", "80": "A0", "40": "60", "C0": "E0"}   # | 0x20 (the SRID flag)


def _hex_strings(blobs):
    """Arrow string array with the upper-case hex of each bytes object (no per-row Python)."""
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum(lengths * 2, out=offsets[1:])
    data = _HEX[np.frombuffer(b"".join(blobs), dtype=np.uint8)]
    return pa.LargeStringArray.from_buffers(len(blobs), pa.py_buffer(offsets),
                                            pa.py_buffer(data.tobytes()))


def _hex64(values):
    """Lower-case 16-digit hex of unsigned 64-bit integers (the content hashes)."""
    data = _HEX[np.asarray(values, dtype=">u8").view(np.uint8)].tobytes().lower()
    offsets = np.arange(0, 16 * (len(values) + 1), 16, dtype=np.int32)
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(data))


def _geometry_wkb(geoms, geometry_type):
    """Little-endian WKB of the present geometries (polygons promoted to MultiPolygon where the
    column wants them), and the mask of missing ones."""
    geoms = np.asarray(geoms, dtype=object)
    missing = pd.isna(geoms)
    geoms = np.where(missing, None, geoms)
    if geometry_type == "MULTIPOLYGON":
        poly = shapely.get_type_id(geoms) == 3
        if poly.any():
            idx = np.flatnonzero(poly)
            geoms[idx] = shapely.multipolygons(geoms[idx], indices=np.arange(len(idx)))
    present = np.flatnonzero(~missing)
    return shapely.to_wkb(geoms[present], byte_order=1), missing


def _geometry_hex(geoms, geometry_type):
    """Hex EWKB (SRID 25832) for a geometry array; polygons promoted to MultiPolygon.

    GEOS writes little-endian WKB; the hex is built with a lookup table and the SRID spliced in
    after the type code (its flag bit 0x20000000 lives in the type's last byte), which is several
    times faster than GEOS's own hex writer with SRIDs set on every geometry.
    """
    wkb, missing = _geometry_wkb(geoms, geometry_type)
    present = np.flatnonzero(~missing)
    text = _hex_strings(wkb)
    last = pc.utf8_slice_codeunits(text, 8, 10)            # Z/M flags: 00, 80, 40 or C0
    s = pa.large_string()
    flagged = pa.nulls(len(text), s)
    for code in pc.unique(last).to_pylist():
        with_srid = _WITH_SRID.get(code)
        if with_srid is None:
            raise ValueError(f"unexpected WKB type flags {code!r}")
        flagged = pc.if_else(pc.equal(last, code), pa.scalar(with_srid, s), flagged)
    ewkb = pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, 8), flagged,
                                       pa.scalar(_SRID_HEX, s), pc.utf8_slice_codeunits(text, 10),
                                       pa.scalar("", s))
    if len(present) == len(geoms):
        return ewkb.cast(pa.string())
    position = np.cumsum(~missing) - 1
    return pc.take(ewkb, pa.array(position, mask=missing)).cast(pa.string())


def _json_text(values):
    """JSON text for a jsonb column: objects are dumped, text (built by an importer) kept."""
    if values.dtype == object:
        return pa.array([v if v is None or isinstance(v, str)
                         else json.dumps(v, ensure_ascii=False, default=str)
                         for v in values], type=pa.string())
    return pa.array(values, type=pa.string(), from_pandas=True)


@dataclass
class Encoded:
    table: str
    columns: list
    data: list               # buffers, written in order
    rows: int
    objects: dict
    binary: bool = False      # PostgreSQL's binary COPY format, else CSV

    def portable(self):
        """The same payload with its buffers as bytes (picklable, for a worker's result)."""
        return replace(self, data=[bytes(part) for part in self.data])


@dataclass
class StagedTable:
    info: TableInfo
    stage: str
    rows: int = 0
    columns: list = field(default_factory=list)


def _check_coordinates(batch, frame):
    """Last line of defence for every importer: nothing infinite or far outside Germany is
    ever staged (importers check after their transformation, with a hint at the cause)."""
    bad = outside(frame["geom"].to_numpy())
    if bad is not None:
        i, (x, y) = bad
        where = str(frame["src"].iloc[i]) if "src" in frame.columns else batch.table
        raise SourceError(where, f"coordinate ({x}, {y}) is not finite or lies outside "
                                 f"{MARGIN_NOTE}; nothing was imported",
                          hint="check the coordinate system of the delivery")


@dataclass
class Encoder:
    """Turns batches into COPY payloads. It holds no connection, so it runs in a thread or in
    another process (importers that read in several processes encode there)."""

    tables: dict             # table -> TableInfo of the prepared staging tables
    run_ts: str
    source: str
    run_id: int

    def encode(self, batch):
        """Turn a batch into the bytes of one COPY (no database access: safe in a thread).

        Batches whose columns all have types :mod:`pipeline.pgcopy` writes, and whose versions
        begin with the run (flat sources), use PostgreSQL's binary format; the rest CSV.
        """
        frame = batch.frame
        if len(frame) == 0:
            return None
        info = self.tables.get(batch.table)
        if info is None:
            raise KeyError(f"{batch.table} was not prepared for staging")
        unknown = set(frame.columns) - set(info.columns) - {"src"}
        if unknown:
            raise KeyError(f"{batch.table} has no columns {sorted(unknown)}")
        if "objektart" in frame.columns:
            objects = {k: int(v) for k, v in frame["objektart"].value_counts().items()}
        else:
            objects = {batch.objektart: len(frame)}
        if "geom" in frame.columns:
            _check_coordinates(batch, frame)
        udts = [info.columns[c] for c in frame.columns if c != "src"]
        if "beginnt" not in frame.columns and pgcopy.supported(udts):
            try:
                columns, data = self._encode_binary(frame, info)
                return Encoded(batch.table, columns, data, len(frame), objects, binary=True)
            except pgcopy.OutOfRange:
                pass            # as CSV: the server names the value and its line
        columns, data = self._encode_csv(frame, info)
        return Encoded(batch.table, columns, data, len(frame), objects)

    def _encode_binary(self, frame, info):
        """Binary COPY. The content hash is taken over the binary row of the delivered columns
        (SipHash, through pandas), not over a text rendering of them."""
        n = len(frame)
        fields = {}
        for col in frame.columns:
            udt = "text" if col == "src" else info.columns[col]
            values = frame[col]
            if col == "geom":
                wkb, missing = _geometry_wkb(values.to_numpy(), info.geometry_type)
                blobs = np.full(n, None, dtype=object)
                blobs[~missing] = wkb
                fields[col] = pgcopy.ewkb(pa.array(blobs, type=pa.large_binary()), SRID)
            elif udt == "jsonb":
                fields[col] = pgcopy.jsonb(_json_text(values))
            elif udt in ("int4", "int8"):
                fields[col] = pgcopy.integer(pa.array(values.to_numpy(), from_pandas=True), udt)
            elif udt == "float8":
                fields[col] = pgcopy.float8(pa.array(values.to_numpy(), from_pandas=True))
            else:
                fields[col] = pgcopy.text(pa.array(values.to_numpy(), from_pandas=True))
        hashed = [f for c, f in fields.items() if c != "src"]
        digest = pd.util.hash_array(pgcopy.rows(hashed).to_numpy(zero_copy_only=False),
                                    categorize=False)
        fields["beginnt"] = pgcopy.timestamp_constant(self.run_ts, n)
        fields["content_hash"] = pgcopy.text(_hex64(digest))
        fields["source"] = pgcopy.text(pa.array(np.full(n, self.source)))
        fields["run_id"] = pgcopy.integer(pa.array(np.full(n, self.run_id, dtype=np.int64)),
                                          "int8")
        return list(fields), pgcopy.stream(list(fields.values()))

    def _encode_csv(self, frame, info):
        data = {}
        for col in frame.columns:
            udt = info.columns.get(col)
            values = frame[col]
            if col == "geom":
                data[col] = _geometry_hex(values.to_numpy(), info.geometry_type)
            elif udt == "jsonb":
                data[col] = _json_text(values)
            elif udt is not None and udt.startswith("_"):
                data[col] = pa.array([_pg_array(v) for v in values], type=pa.string())
            elif udt in ("timestamptz", "timestamp", "date"):
                data[col] = pa.array(values.astype("string").to_numpy(na_value=None),
                                     type=pa.string())
            else:
                data[col] = pa.array(values.to_numpy(), from_pandas=True)
        if "beginnt" not in data:
            data["beginnt"] = pa.array(np.full(len(frame), self.run_ts), type=pa.string())
        else:
            data["beginnt"] = pc.fill_null(data["beginnt"], self.run_ts)
        table = pa.table(data)
        # Content hash over everything the source delivered (not src, not bookkeeping), taken
        # over the text each value is sent as: the column types Arrow infers depend on the
        # batch (integers with a missing value become floats, an all-empty column has no
        # type), and the same object must hash the same in whatever batch it arrives.
        hashed = pa.table({c: table[c].cast(pa.string()) for c in table.column_names
                           if c not in ("src", "beginnt")})
        digest = pd.util.hash_pandas_object(hashed.to_pandas(), index=False)
        table = table.append_column("content_hash", _hex64(digest.to_numpy()))
        table = table.append_column("source", pa.array(np.full(len(frame), self.source)))
        table = table.append_column("run_id", pa.array(np.full(len(frame), self.run_id)))
        buf = io.BytesIO()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False,
                                                       quoting_style="needed"))
        return table.column_names, [buf.getbuffer()]


class Loader:
    """Streams batches into staging tables and merges them, inside the caller's transaction."""

    def __init__(self, conn, run_id, run_ts, source, versioned, history=True):
        self.conn = conn
        self.run_id = run_id
        self.run_ts = run_ts
        self.source = source
        self.versioned = versioned
        self.history = history
        self.staged: dict[str, StagedTable] = {}
        self.objects: dict[str, int] = {}

    # -- staging ----------------------------------------------------------------------------
    def _staging(self, table):
        if table not in self.staged:
            info = table_info(self.conn, table)
            stage = f"stage_{info.schema}_{info.name}"
            self.conn.execute(_q("create_stage", stage=sql.Identifier(stage),
                                 target=info.ident))
            self.staged[table] = StagedTable(info, stage)
        return self.staged[table]

    def prepare(self, tables):
        """Create the staging tables up front (before batches are encoded in a thread)."""
        for table in tables:
            self._staging(table)

    def add(self, batch):
        """Encode one batch and COPY it into its staging table."""
        self._staging(batch.table)
        self.copy(self.encode(batch))

    def encoder(self):
        """The :class:`Encoder` for the prepared staging tables (picklable: it can go to a
        worker process)."""
        return Encoder({t: s.info for t, s in self.staged.items()}, self.run_ts, self.source,
                       self.run_id)

    def encode(self, batch):
        """Encode one batch (see :meth:`Encoder.encode`)."""
        return self.encoder().encode(batch)

    def copy(self, encoded):
        """COPY an encoded batch into its staging table (on the loader's connection)."""
        if encoded is None:
            return
        staged = self.staged[encoded.table]
        statement = _q("copy", stage=sql.Identifier(staged.stage),
                       columns=_columns(encoded.columns),
                       format=sql.SQL("binary" if encoded.binary else "csv"))
        with self.conn.cursor().copy(statement) as copy:
            for part in encoded.data:
                copy.write(part)
        staged.rows += encoded.rows
        staged.columns = [c for c in encoded.columns if c != "src"]
        for art, n in encoded.objects.items():
            self.objects[art] = self.objects.get(art, 0) + n

    # -- checks on the whole delivery ----------------------------------------------------------
    def duplicate_ids(self, staged):
        """Objects delivered more than once: (gml_id, n, distinct contents, first src, last src)."""
        return self.conn.execute(_q("duplicate_ids", stage=sql.Identifier(staged.stage))
                                 ).fetchall()

    def _dedupe(self, staged):
        """Keep exact repeats once (same object and version delivered twice)."""
        dups = self.duplicate_ids(staged)
        conflicting = [d for d in dups if d[2] > 1]
        if conflicting:
            lines = "; ".join(f"{g} in {a} and {b}" for g, _, _, a, b in conflicting[:5])
            raise SourceError(
                conflicting[0][3].split(":")[0] if conflicting[0][3] else "delivery",
                f"the same object id is delivered more than once with different content: {lines}",
                hint="an object id must be unique within one delivery; fix the source",
            )
        if dups:
            self.conn.execute(_q("drop_exact_repeats", stage=sql.Identifier(staged.stage)))

    # -- merge ----------------------------------------------------------------------------------
    def merge(self):
        """Merge every staging table into its target; returns per-table statistics."""
        stats = {}
        scope = self._flat_scope() if not self.versioned else None
        for staged in self.staged.values():
            # Temporary tables have no statistics until analysed; without them the planner
            # picks nested loops over the whole delivery. Only the columns the merge joins and
            # groups on (statistics of geometries and JSON are costly and unused here).
            keys = [c for c in ("gml_id", "beginnt", "land", "gemarkungsnummer",
                                "flurstueckskennzeichen") if c in staged.info.columns]
            self.conn.execute(_q("analyze_stage", stage=sql.Identifier(staged.stage),
                                 columns=_columns(keys)))
        for name, staged in self.staged.items():
            self._dedupe(staged)
            if self.versioned:
                stats[name] = self._merge_versioned(staged)
            else:
                stats[name] = self._merge_flat(staged, scope)
        return stats

    def _flat_scope(self):
        """Gemarkungen (land, gemarkungsnummer) the flat delivery covers."""
        parts = [_q("stage_districts", stage=sql.Identifier(s.stage))
                 for s in self.staged.values()
                 if {"land", "gemarkungsnummer"} <= set(s.info.columns)]
        self.conn.execute(QUERIES["create_flat_scope"])
        if parts:
            self.conn.execute(_q("fill_flat_scope", districts=sql.SQL(" UNION ").join(parts)))
        return "stage_scope"

    def _indexes_if_empty(self, info):
        """Indexes of an empty target, dropped for a bulk load; returns how to recreate them.

        Building an index once over the loaded rows is much faster than maintaining it row by
        row. Everything happens inside the run's transaction, so a failure restores them.
        """
        if self.conn.execute(_q("target_has_rows", target=info.ident)).fetchone()[0]:
            return []
        # A table emptied in this transaction gets a new file: with wal_level = minimal (the
        # embedded cluster) PostgreSQL then writes it without WAL and syncs it at commit.
        # (TRUNCATE locks the empty table against readers until the run commits.)
        self.conn.execute(_q("truncate", target=info.ident))
        rows = self.conn.execute(QUERIES["indexes"], {"table": info.qualified}).fetchall()
        recreate = []
        for schema, name, indexdef, conname, condef in rows:
            if conname:
                self.conn.execute(_q("drop_constraint", target=info.ident,
                                     name=sql.Identifier(conname)))
                recreate.append(_q("add_constraint", target=info.ident,
                                   name=sql.Identifier(conname), definition=sql.SQL(condef)))
            else:
                self.conn.execute(_q("drop_index", index=sql.Identifier(schema, name)))
                recreate.append(sql.SQL(indexdef))     # as the catalogue gives it
        return recreate

    def _merge_flat(self, staged, scope):
        info = staged.info
        target, stage = info.ident, sql.Identifier(staged.stage)
        has_scope = {"land", "gemarkungsnummer"} <= set(info.columns)
        in_scope = _q("flat_in_scope") if has_scope else sql.SQL("")
        gone = _q("flat_gone", target=target, stage=stage, in_scope=in_scope)
        if self.history:
            closed = self.conn.execute(_q("flat_close", target=target, gone=gone), {
                "source": self.source, "ts": self.run_ts, "run": self.run_id}).rowcount
        else:
            closed = self.conn.execute(_q("flat_delete", target=target, gone=gone),
                                       {"source": self.source}).rowcount
        recreate = self._indexes_if_empty(info)
        inserted = self.conn.execute(_q("flat_insert", target=target, stage=stage,
                                        columns=_columns(staged.columns))).rowcount
        for statement in recreate:
            self.conn.execute(statement)
        return {"delivered": staged.rows, "inserted": inserted,
                "unchanged": staged.rows - inserted, "closed": closed}

    def _merge_versioned(self, staged):
        info = staged.info
        target, stage = info.ident, sql.Identifier(staged.stage)
        self.conn.execute(_q("versioned_drop_stored", stage=stage, target=target))
        self.conn.execute(_q("versioned_end_staged", stage=stage, target=target))
        if self.history:
            closed = self.conn.execute(_q("versioned_close", target=target, stage=stage),
                                       {"run": self.run_id}).rowcount
        else:
            closed = self.conn.execute(_q("versioned_delete", target=target, stage=stage)
                                       ).rowcount
            self.conn.execute(_q("versioned_drop_ended", stage=stage))
        recreate = self._indexes_if_empty(info)
        inserted = self.conn.execute(_q(
            "versioned_insert", target=target, stage=stage,
            columns=_columns(dict.fromkeys(staged.columns + ["endet"])))).rowcount
        for statement in recreate:
            self.conn.execute(statement)
        return {"delivered": staged.rows, "inserted": inserted,
                "unchanged": staged.rows - inserted, "closed": closed}
