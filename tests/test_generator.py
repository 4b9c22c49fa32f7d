"""The synthetic Mülheim-like cadastre."""

import json

import numpy as np
import shapely
from conftest import SHARED

from pipeline.generator import build, muelheim


def test_real_muelheim_keys_and_flur_counts():
    shared = json.loads((SHARED / "nrw" / "katasteraemter-gemarkungen-fluren-nrw_gid7.json")
                        .read_text(encoding="utf-8"))
    amt = next(v for k, v in shared.items() if k.startswith("Mülheim"))
    expected = {v["schluessel"]: len(v["fluren"]) for v in amt.values()}
    assert {g: len(f) for g, _, f in muelheim()} == expected
    assert len(expected) == 14 and sum(expected.values()) == 333


def test_deterministic_and_tiles_without_gaps_or_overlaps():
    a, b = build(5000, seed=4), build(5000, seed=4)
    pa, pb = a["Flurstueck"], b["Flurstueck"]
    assert pa.drop(columns="geometry").equals(pb.drop(columns="geometry"))
    assert shapely.equals_exact(pa.geometry.values, pb.geometry.values, 0).all()
    assert not build(5000, seed=5)["Flurstueck"]["flstkennz"].equals(pa["flstkennz"])

    geoms = pa.geometry.values
    assert shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(geoms)                  # no overlaps, matching edges
    union = shapely.coverage_union_all(geoms)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0   # no holes
    assert abs(union.area - shapely.area(geoms).sum()) < 1e-3
    assert pa["flstkennz"].is_unique and pa["idflurst"].is_unique
    assert pa["flstkennz"].str.fullmatch(r"05\d{4}\d{3}\d{5}(\d{4}|____)__").all()
    assert pa["gemaschl"].nunique() == 14
    # Every Flur of Mülheim is there, its boundary is the union of its parcels.
    districts = a["KatasterBezirk"]
    assert len(districts) == 333 and districts["flurschl"].is_unique
    one = districts.iloc[0]
    members = pa[pa["flurschl"] == one["flurschl"]]
    assert abs(shapely.union_all(members.geometry.values).area - one.geometry.area) < 1e-3
    # Book areas differ from computed areas like real ones: small, mostly below 1 m².
    dev = (pa["flaeche"] - pa.area).abs()
    assert 0.2 < dev.median() < 1.5 and (dev / pa.area).max() < 0.02
    # Buildings lie inside their parcels.
    bld = a["GebaeudeBauwerk"]
    assert 0.5 < len(bld) / len(pa) < 0.9
    inside = pa.sindex.query(bld.geometry.values, predicate="within")
    assert len(np.unique(inside[0])) == len(bld)
    assert pa["lagebeztxt"].str.fullmatch(r"\w+ \d+").all()
