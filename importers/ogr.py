"""Vector importer for flat parcel layers read through GDAL (pyogrio).

Formats: GeoPackage, Shapefile, GeoJSON, FlatGeobuf and GML that GDAL's GML driver reads
(e.g. WFS answers of "ALKIS vereinfacht"), also inside .zip or .gz. Layers are mapped onto
Kataster's tables by a profile (``schemas/profiles/*.yaml`` or the user's own YAML file).
Features are read as Arrow batches, so memory stays bounded whatever the file size.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
import shapely.errors
import yaml
from pyogrio.raw import open_arrow

from importers import crs as crsmod
from importers.base import Batch, ImportSource
from importers.sources import open_inputs
from pipeline import kennzeichen
from pipeline.errors import CRSError, SchemaError, SourceError, UsageError
from pipeline.validation import checks
from schemas import SCHEMAS_DIR, json_schema

SUFFIXES = {".gpkg", ".shp", ".geojson", ".json", ".fgb", ".gml", ".xml"}
PROFILES_DIR = SCHEMAS_DIR / "profiles"
POLYGONAL = {3, 6}  # shapely type ids: Polygon, MultiPolygon


@dataclass(frozen=True)
class Target:
    table: str
    objektart: str


TARGETS = {
    "flurstueck": Target("kataster.ax_flurstueck", "AX_Flurstueck"),
    "gebaeude": Target("kataster.ax_gebaeude", "AX_Gebaeude"),
    "bezirk": Target("kataster.bezirk", "AX_Gemarkungsteil_Flur"),
}
# Columns each target table accepts from a profile (besides gml_id and geom).
COLUMNS = {
    "flurstueck": {"flurstueckskennzeichen", "land", "gemarkungsnummer", "flurnummer", "zaehler",
                   "nenner", "amtliche_flaeche", "lage", "gemarkung_name", "gemeinde_name",
                   "gemeindekennzeichen"},
    "gebaeude": {"gebaeudefunktion", "bezeichnung", "lage", "land", "gemarkungsnummer"},
    "bezirk": {"land", "gemarkungsnummer", "flurnummer", "bezeichnung"},
}
INTEGER = {"flurnummer", "zaehler", "gebaeudefunktion"}
FLOAT = {"amtliche_flaeche"}


def builtin_profiles():
    """Built-in profiles by name."""
    return {p.stem: load_profile(p) for p in sorted(PROFILES_DIR.glob("*.yaml"))
            if p.stem != "example-parcels"}


def load_profile(path):
    """Read and validate a YAML mapping profile (schema: ``schemas/profile.schema.json``)."""
    path = Path(path)
    # Messages name the place in the file, never its content (the path may name any file).
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UsageError(f"{path}: cannot read the profile: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the profile is not UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UsageError(f"{path}: the profile is not valid YAML{where}: "
                         f"{getattr(err, 'problem', None) or 'syntax error'}") from None
    try:
        jsonschema.validate(data, json_schema("profile"))
    except jsonschema.ValidationError as err:
        at = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        rule = err.validator_value if err.validator in ("type", "required", "enum") else ""
        raise UsageError(f"{path}: invalid profile at {at}: fails the schema's "
                         f"{err.validator} {rule}".rstrip()
                         + " (see schemas/profile.schema.json)") from None
    return data


@dataclass
class LayerPlan:
    origin: Path        # the path the user gave (zip, file)
    path: Path          # the readable file
    layer: str
    rule: dict
    crs: object
    transformer: object
    features: int

    @property
    def label(self):
        return f"{self.origin}" + (f"!{self.path.name}" if self.path != self.origin else "") + \
               f":{self.layer}"


class OgrImporter:
    """Importer ``ogr``: flat vector files through GDAL."""

    name = "ogr"

    def detect(self, path):
        path = Path(path)
        return path.is_dir() or path.suffix.lower() in SUFFIXES | {".zip", ".gz"}

    def open(self, paths, options, config):
        files, unpacked = open_inputs(paths, SUFFIXES, config)
        try:
            plans, ignored, profile = self._plan(unpacked.files, options)
        except BaseException:
            unpacked.close()
            raise
        transformations = sorted({p.transformer[1] for p in plans})
        findings = []

        def batches():
            try:
                for plan in plans:
                    yield from _read_layer(plan, profile, config["import.batch_size"],
                                           options.get("encoding"), findings)
            finally:
                unpacked.close()

        return ImportSource(
            importer=self.name, files=files, source=f"ogr:{profile['name']}", versioned=False,
            batches=batches, findings=findings,
            tables=sorted({TARGETS[p.rule["target"]].table for p in plans}), transformation="; ".join(transformations),
            options={"profile": profile["name"], "ignored_layers": ignored},
            steps=("duplicate_keys",), cleanup=unpacked.close,
        )

    def _plan(self, readable, options):
        layers = []
        for origin, path in readable:
            try:
                names = _list_layers(path)
            except pyogrio.errors.DataSourceError as err:
                raise SourceError(origin, f"GDAL cannot read it: {err}",
                                  hint="is it a GeoPackage, Shapefile, GeoJSON, FlatGeobuf "
                                       "or GML file?") from None
            for name, _gtype in names:
                info = _info(path, name, origin)
                layers.append((origin, path, name, info))
        if not layers:
            raise SourceError(readable[0][0] if readable else "input", "contains no layers")
        profile = self._profile(options.get("profile", "auto"), layers)
        plans, ignored = [], []
        used_rules = set()
        for origin, path, name, info in layers:
            rule = _match(profile, name, info, used_rules)
            if rule is None:
                ignored.append(f"{origin}:{name}")
                continue
            srs = options.get("srs")
            where = f"{origin}:{name}"
            if srs:
                crs = crsmod.parse_crs(srs, where)
            elif info["crs"]:
                crs = crsmod.parse_crs(info["crs"], where)
            else:
                raise CRSError(where, "the data has no coordinate system",
                               hint="give it with --srs, e.g. --srs EPSG:25832")
            if info["features"] == 0:
                ignored.append(f"{where} (empty)")
                continue
            plans.append(LayerPlan(origin, path, name, rule, crs,
                                   crsmod.transformer(crs, where), info["features"]))
        if not plans:
            what = ", ".join(ignored) or "nothing"
            if ignored and all(i.endswith("(empty)") for i in ignored):
                raise SourceError(readable[0][0], f"contains no features to import (layers "
                                                  f"seen: {what})", hint="nothing was imported")
            raise SourceError(readable[0][0], f"no layer of the file matches the profile "
                              f"{profile['name']!r} (layers seen: {what})",
                              hint=f"the profile maps {_profile_needs(profile)}; choose another "
                                   "profile with --profile, or write one")
        return plans, ignored, profile

    def _profile(self, choice, layers):
        builtins = builtin_profiles()
        if choice and choice != "auto":
            if choice in builtins:
                return builtins[choice]
            if Path(choice).exists():
                return load_profile(choice)
            raise UsageError(f"unknown profile {choice!r}: use one of "
                             f"{', '.join(['auto', *builtins])} or a YAML file")
        for profile in builtins.values():
            need = set(profile.get("detect", []))
            if any(need <= set(info["fields"]) for *_, info in layers):
                return profile
        seen = "; ".join(f"{o}:{n} ({', '.join(list(i['fields'])[:8])})" for o, _, n, i in layers)
        needs = "; ".join(f"{name} needs the fields {', '.join(p['detect'])}"
                          for name, p in builtins.items() if p.get("detect"))
        raise SchemaError(layers[0][0], f"no built-in profile fits the layers: {seen}",
                          hint=f"{needs} on one layer. Otherwise write a mapping profile (see "
                               "schemas/profiles/example-parcels.yaml) and pass it with "
                               "--profile FILE.yaml")


def _profile_needs(profile):
    """What each layer rule of a profile looks for, for messages."""
    out = []
    for rule in profile["layers"]:
        m = rule.get("match", {})
        need = (f"a layer named {m['layer']}" if "layer" in m else
                f"a layer whose name matches {m['name']}" if "name" in m else
                f"a layer with the fields {', '.join(m['fields'])}" if "fields" in m else
                "the first polygon layer")
        out.append(f"{rule['target']} from {need}")
    return "; ".join(out)


def _list_layers(path):
    """Layer names of a dataset (for GML through read_info, so GDAL writes no .gfs file)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not _open_options(path):
            return [(name, gtype) for name, gtype in pyogrio.list_layers(path)]
        names = []
        while True:
            try:
                info = pyogrio.read_info(path, layer=len(names), **_open_options(path))
            except pyogrio.errors.DataLayerError:
                return names
            names.append((info["layer_name"], info["geometry_type"]))


def _open_options(path):
    if Path(path).suffix.lower() in (".gml", ".xml"):
        return {"WRITE_GFS": "NO"}
    return {}


def _info(path, layer, origin):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = pyogrio.read_info(path, layer=layer, **_open_options(path))
    except pyogrio.errors.DataSourceError as err:
        raise SourceError(origin, f"layer {layer!r} cannot be read: {err}") from None
    return {"crs": info["crs"], "fields": list(info["fields"]), "features": info["features"],
            "geometry_type": info["geometry_type"]}


def _match(profile, name, info, used):
    for i, rule in enumerate(profile["layers"]):
        m = rule.get("match", {})
        if "layer" in m and m["layer"] != name:
            continue
        if "name" in m and not re.search(m["name"], name):
            continue
        if "fields" in m and not set(m["fields"]) <= set(info["fields"]):
            continue
        if not m and (i in used or "Polygon" not in str(info["geometry_type"])):
            continue
        used.add(i)
        return rule
    return None


def _read_layer(plan, profile, batch_size, encoding, findings):
    kwargs = dict(_open_options(plan.path))
    if encoding:
        kwargs["encoding"] = encoding
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_arrow(plan.path, layer=plan.layer, batch_size=batch_size, return_fids=True,
                            use_pyarrow=True, **kwargs) as (meta, reader):
                geom_col = meta["geometry_name"] or "wkb_geometry"
                fid_col = meta["fid_column"] or "OGC_FID"
                for rb in reader:
                    yield _map_batch(rb, plan, geom_col, fid_col, findings)
    except pyogrio.errors.DataSourceError as err:
        raise SourceError(plan.label, f"reading failed: {err}") from None
    except UnicodeDecodeError as err:
        raise SourceError(plan.label, f"text is not in the expected encoding: {err}",
                          hint="give the encoding with --encoding, e.g. ISO-8859-1") from None
    except ValueError as err:            # e.g. an encoding GDAL's Arrow reader cannot apply
        raise SourceError(plan.label, f"reading failed: {err}") from None


def _map_batch(rb, plan, geom_col, fid_col, findings):
    rule = plan.rule
    target = rule["target"]
    names = rb.schema.names
    fids = rb.column(names.index(fid_col)).to_numpy(zero_copy_only=False) if fid_col in names \
        else np.arange(rb.num_rows)
    src = np.char.add(f"{plan.label}:fid ", fids.astype(str))
    wkb = rb.column(names.index(geom_col)).to_numpy(zero_copy_only=False) \
        if geom_col in names else np.full(rb.num_rows, None)
    attrs_tbl = rb.drop_columns([c for c in (geom_col, fid_col) if c in names])
    df = attrs_tbl.to_pandas()
    out = pd.DataFrame(index=df.index)
    mapped = set()
    for column, field in rule["fields"].items():
        if field not in df.columns:
            raise SchemaError(plan.label, f"field {field!r} (for {column}) is missing",
                              hint=f"the layer has: {', '.join(df.columns)}")
        out[column] = df[field]
        mapped.add(field)
    for column, value in rule.get("constants", {}).items():
        out[column] = value
    _derive_keys(out)
    if rule.get("id"):
        if rule["id"] not in df.columns:
            raise SchemaError(plan.label, f"id field {rule['id']!r} is missing")
        mapped.add(rule["id"])
        out["gml_id"] = df[rule["id"]].astype("string").str.slice(0, 16)
        empty = np.flatnonzero(out["gml_id"].isna().to_numpy())
        if len(empty):
            raise SchemaError(plan.label.split(":")[0], f"{len(empty)} features have no "
                              f"{rule['id']} (the object id)",
                              feature=str(src[empty[0]]).rsplit(":", 1)[-1]
                              + f" in layer {plan.layer}",
                              hint="every object needs its id; nothing was imported")
    geoms = _geometries(wkb, plan, src, target, findings)
    out["geom"] = geoms
    out["gml_id"] = _default_ids(out, target, geoms)
    if target == "flurstueck":
        ids = out["gml_id"].to_numpy()
        findings.extend(checks.empty_geometries(ids, geoms, src))
        findings.extend(checks.invalid_geometries(ids, geoms, src))
    rest = [c for c in df.columns if c not in mapped]
    if rest:
        out["attrs"] = pd.arrays.ArrowExtensionArray(json_objects(attrs_tbl.select(rest)))
    for col in INTEGER & set(out.columns):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("Int64")
    for col in FLOAT & set(out.columns):
        out[col] = pd.to_numeric(out[col], errors="coerce")
    if target == "bezirk":
        out["art"] = np.where(out.get("flurnummer", pd.Series(index=out.index)).notna(),
                              "flur", "gemarkung")
    out["src"] = src
    keep = COLUMNS[target] | {"gml_id", "geom", "attrs", "src", "art"}
    out = out[[c for c in out.columns if c in keep]]
    return Batch(TARGETS[target].table, TARGETS[target].objektart, out)


_CONTROL = r"[\x00-\x1f]"


def json_objects(table):
    """One JSON object text per row of an Arrow table, built column-wise (no row loop).

    Strings are escaped; NaN, infinities and null become ``null``. Rows with rare control characters
    other than newline, return and tab fall back to :func:`json.dumps`.
    """
    parts = []
    odd = np.array([], dtype=np.int64)
    for name in table.column_names:
        col = table.column(name)
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        key = json.dumps(name, ensure_ascii=False) + ":"
        if pa.types.is_integer(col.type) or pa.types.is_boolean(col.type):
            val = pc.cast(col, pa.string())
        elif pa.types.is_floating(col.type):
            val = pc.if_else(pc.is_finite(col), pc.cast(col, pa.string()), None)
        else:
            text = pc.cast(col, pa.string())
            # One scan decides whether the column needs escaping at all (most do not).
            raw = text
            if pc.any(pc.match_substring_regex(raw, '[\\\\"\\x00-\\x1f]')).as_py():
                for old, new in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"),
                                 ("\r", "\\r"), ("\t", "\\t")):
                    text = pc.replace_substring(text, old, new)
                hit = pc.fill_null(pc.match_substring_regex(
                    raw, "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]"), False).to_numpy(zero_copy_only=False)
                odd = np.union1d(odd, np.flatnonzero(hit))
            val = pc.binary_join_element_wise('"', text, '"', "")
        parts += [("," if parts else "{") + key, pc.fill_null(val, "null")]
    objects = pc.binary_join_element_wise(*parts, "}", "")     # one pass over all columns
    if len(odd):
        values = objects.to_pylist()
        rows = table.take(pa.array(odd)).to_pylist()
        for i, row in zip(odd, rows, strict=True):
            values[i] = json.dumps(row, ensure_ascii=False, default=str)
        objects = pa.array(values, type=pa.string())
    return objects


def _derive_keys(out):
    """Fill land/Gemarkung/Flur/Zähler/Nenner from the compound keys where not mapped."""
    if "flurstueckskennzeichen" in out:
        fsk = out["flurstueckskennzeichen"].astype("string").str.strip()
        out["flurstueckskennzeichen"] = fsk
        # Split in Arrow (C++ regex), not per row in Python; non-matching keys give nulls.
        # (flatten applies the struct's nulls to the fields; .field() would give "" instead.)
        # The grammar is the one key parser's (pipeline.kennzeichen): Flur "___" (states
        # without Flur) and Nenner "____" become NULL.
        parts = pc.extract_regex(pa.array(fsk, type=pa.string(), from_pandas=True),
                                 kennzeichen.NAMED_PATTERN).flatten()
        none = pa.scalar(None, pa.string())
        nenner = pc.utf8_ltrim(pc.utf8_trim(parts[4], "_"), "0")
        flur = parts[2]
        derived = {"land": parts[0], "gemarkungsnummer": parts[1],
                   "flurnummer": pc.if_else(pc.equal(flur, "___"), none, flur),
                   "zaehler": parts[3],
                   "nenner": pc.if_else(pc.equal(nenner, ""), none, nenner)}
        for col, values in derived.items():
            if col not in out:
                out[col] = pd.Series(values.to_pandas(types_mapper=pd.ArrowDtype),
                                     index=out.index).astype("string")
    if "flurschluessel" in out:
        key = out.pop("flurschluessel").astype("string").str.strip()
        if "land" not in out:
            out["land"] = key.str.slice(0, 2)
        if "gemarkungsnummer" not in out:
            out["gemarkungsnummer"] = key.str.slice(2, 6)
        if "flurnummer" not in out:
            out["flurnummer"] = key.str.slice(6, 9)
    if "gemarkungsschluessel" in out:
        key = out.pop("gemarkungsschluessel").astype("string").str.strip()
        if "land" not in out:
            out["land"] = key.str.slice(0, 2)
        if "gemarkungsnummer" not in out:
            out["gemarkungsnummer"] = key.str.slice(2, 6)


def _default_ids(out, target, geoms):
    ids = out["gml_id"] if "gml_id" in out else pd.Series(pd.NA, index=out.index, dtype="string")
    if target == "flurstueck":
        fallback = out["flurstueckskennzeichen"]
    elif target == "bezirk":
        fallback = ("flur:" + out["land"].astype("string") + out["gemarkungsnummer"]
                    + out["flurnummer"].astype("string").str.zfill(3))
    else:
        digest = pd.util.hash_array(shapely.to_wkb(geoms).astype(object))
        fallback = pd.Series(np.char.add("geb:", np.char.mod("%016x", digest)), index=out.index)
    return ids.fillna(fallback).astype("string")


def _geometries(wkb, plan, src, target, findings):
    try:
        geoms = shapely.from_wkb(wkb)
    except (shapely.errors.ShapelyError, ValueError) as err:
        # Name the first feature GEOS cannot read (truncated WKB, a ring of two points …).
        parsed = shapely.from_wkb(wkb, on_invalid="ignore")
        bad = np.flatnonzero(pd.notna(np.asarray(wkb, dtype=object)) & shapely.is_missing(parsed))
        i = int(bad[0]) if len(bad) else 0
        raise SourceError(plan.label.split(":")[0], f"the geometry cannot be read: {err}",
                          feature=src[i].rsplit(":", 1)[-1] + f" in layer {plan.layer}",
                          hint="repair the geometry in the source (e.g. ogr2ogr -makevalid); "
                               "nothing was imported") from None
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    types = shapely.get_type_id(geoms)
    wrong = ~missing & ~np.isin(types, list(POLYGONAL))
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise SchemaError(plan.label.split(":")[0], f"{shapely.GeometryType(types[i]).name.title()} "
                          f"geometry where a polygon is required ({target})",
                          feature=src[i].rsplit(":", 1)[-1] + f" in layer {plan.layer}",
                          hint="a parcel layer must hold polygons or multipolygons")
    out = crsmod.to_target(geoms, plan.transformer[0])
    crsmod.check_extent(out, geoms, lambda i: src[i].rsplit(":", 1)[-1] + f" in layer "
                                              f"{plan.layer}",
                        plan.label.split(":")[0], plan.crs.name, plan.crs.to_epsg())
    return out
