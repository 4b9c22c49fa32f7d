"""The vectorised validation stages on small hand-made partitions: no database (fast)."""

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import shapely.affinity

from pipeline.validation.stages import (
    PARTITION_INPUTS,
    Pipeline,
    collapse_precision,
    parcel_stages,
    stages_for,
)

PARAMS = {"sliver_max_area": 1.0, "sliver_min_width": 0.5, "overlap_min_area": 0.01,
          "gap_max_width": 0.5, "outside_min_share": 0.5, "precision_min_area": 0.01,
          "precision_min_width": 0.02}


def frame(rows):
    """Parcels of Gemarkung 053084 from (gml_id, flurnummer, geometry) rows."""
    df = pd.DataFrame({"gml_id": [r[0] for r in rows],
                       "flurstueckskennzeichen": [f"053084{r[1]:03d}{k:05d}______"
                                                  for k, r in enumerate(rows, 1)],
                       "land": "05", "gemarkungsnummer": "3084",
                       "flurnummer": [r[1] for r in rows], "teil": "053084/"})
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([r[2] for r in rows], crs=25832))


def grid(n=4, size=10.0, skip=()):
    """An n × n grid of square parcels (Flur 1), without the cells in ``skip``."""
    return [(f"P{i}{j}", 1, shapely.box(i * size, j * size, (i + 1) * size, (j + 1) * size))
            for i in range(n) for j in range(n) if (i, j) not in skip]


def run(rows, names, districts=None, hole_is_real=True):
    parcels = frame(rows)
    empty = gpd.GeoDataFrame({"land": [], "gemarkungsnummer": [], "flurnummer": [],
                              "herkunft": []}, geometry=gpd.GeoSeries([], crs=25832))
    out = Pipeline(stages_for(names), provided=PARTITION_INPUTS).run(
        {"parcels": parcels, "context": parcels, "own": len(parcels),
         "districts": empty if districts is None else districts, "partition": "053084/",
         "verify_hole": lambda hole: hole_is_real}, PARAMS)
    return out["findings"]


def rules_of(findings):
    return sorted((f.rule, f.object_id) for f in findings)


def test_a_sound_grid_has_no_findings():
    assert run(grid(), ["geometry", "sliver", "overlap", "gap", "district"]) == []


def test_empty_invalid_and_sliver():
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    rows = [("E", 1, shapely.Polygon()), ("B", 1, bowtie),
            ("S", 1, shapely.box(100, 100, 100.4, 110)), ("OK", 1, shapely.box(50, 50, 60, 60))]
    found = run(rows, ["geometry", "sliver"])
    assert rules_of(found) == [("geometry.empty", "E"), ("geometry.invalid", "B"),
                               ("geometry.sliver", "S")]
    invalid = next(f for f in found if f.rule == "geometry.invalid")
    assert invalid.geom.equals(shapely.Point(5, 5))      # where GEOS says it self-intersects


def test_an_overlap_is_located_where_the_parcels_overlap():
    rows = grid()
    rows[0] = ("P00", 1, shapely.box(0, 0, 12, 10))       # 2 m into its neighbour P10
    found = run(rows, ["overlap", "gap"])
    assert rules_of(found) == [("coverage.overlap", "P00")]
    assert found[0].related == ["P10"]
    assert found[0].geom.equals(shapely.box(10, 0, 12, 10))


def test_a_parcel_inside_another_is_an_overlap():
    """A parcel drawn wholly inside another: GEOS's coverage validation marks only the inner
    one's edges (the outer one's edges all match its neighbours), so the pair is found by
    comparing the marked parcel with every parcel it meets, not only with marked ones."""
    rows = grid() + [("IN", 1, shapely.box(13, 13, 17, 17))]       # inside P11
    found = run(rows, ["overlap"])
    assert rules_of(found) == [("coverage.overlap", "IN")]
    assert found[0].related == ["P11"]
    assert found[0].geom.equals(shapely.box(13, 13, 17, 17))


def test_a_coverage_drawn_over_another_shows_every_overlapping_pair():
    """A second grid over the first, shifted by 3 m × 4 m (a delivery imported twice with an
    offset): inside, every parcel's edges match its own grid's neighbours, so GEOS's coverage
    validation marked only the two outlines, and only pairs with a parcel on them were
    compared (72 of the 121 found before). Where the uncancelled edges wind twice, all are."""
    first = grid(n=6)
    second = [(f"Q{name[1:]}", 1, shapely.affinity.translate(geom, 3, 4))
              for name, _, geom in grid(n=6)]
    found = run(first + second, ["overlap", "gap"])
    pairs = {(f.object_id, *f.related) for f in found if f.rule == "coverage.overlap"}
    boxes = [g for _, _, g in first + second]
    expected = {tuple(sorted((a[0], b[0]))) for k, a in enumerate(first + second)
                for b in (first + second)[k + 1:]
                if shapely.area(shapely.intersection(a[2], b[2])) > 0}
    assert len(expected) == 36 + 30 + 30 + 25 and pairs == expected, len(pairs)
    assert shapely.area(shapely.union_all(boxes)) < sum(shapely.area(boxes))


def test_a_duplicate_parcel_and_a_parcel_on_an_island_in_a_hole():
    """The same square twice (its edges do not cancel: drawn twice the same way) is an
    overlap; a parcel with a hole and another filling it exactly is none."""
    rows = grid() + [("D11", 1, shapely.box(10, 10, 20, 20))]
    found = run(rows, ["overlap"])
    assert rules_of(found) == [("coverage.overlap", "D11")] and found[0].related == ["P11"]
    rows = grid(skip={(1, 1)}) + [
        ("RING", 1, shapely.box(10, 10, 20, 20).difference(shapely.box(13, 13, 17, 17))),
        ("ISLAND", 1, shapely.box(13, 13, 17, 17))]
    assert run(rows, ["overlap", "gap"]) == []


def test_a_missing_parcel_is_a_hole_unless_the_database_fills_it():
    rows = grid(skip={(1, 1)})
    found = run(rows, ["overlap", "gap"])
    assert [f.rule for f in found] == ["coverage.gap"]
    assert found[0].geom.equals(shapely.box(10, 10, 20, 20))
    assert len(found[0].related) == 7                       # the 8 parcels around it
    assert run(rows, ["overlap", "gap"], hole_is_real=False) == []


def test_a_narrow_open_gap_and_precision_dust():
    rows = grid(n=2)
    rows[2] = ("P10", 1, shapely.box(10.3, 0, 20, 10))     # 0.3 m gap at the edge: open
    found = run(rows, ["overlap", "gap"])
    assert [f.rule for f in found] == ["coverage.gap"]
    rows[2] = ("P10", 1, shapely.box(10.001, 0, 20, 10))   # 1 mm: below the precision
    found = run(rows, ["overlap", "gap"])
    assert {f.rule for f in found} == {"coverage.precision"}
    counted = collapse_precision(found, PARAMS)
    assert len(counted) == 1 and counted[0].message.startswith(f"{len(found)} gaps or overlaps")


def flur_maps(rows, herkunft):
    """The Flur maps of ``rows`` as kataster.flur_karte holds them: per Flur the union of its
    parcels (``herkunft`` "abgeleitet"), or given boundaries ("importiert")."""
    parcels = frame(rows)
    maps = parcels.dissolve(by="flurnummer", as_index=False)[
        ["land", "gemarkungsnummer", "flurnummer", "geometry"]]
    return maps.assign(herkunft=herkunft)


def test_a_parcel_in_the_wrong_flur():
    """Derived boundaries: the union of each Flur's parcels, its holes filled by the stage.
    The centre parcel says Flur 2 but lies inside Flur 1, whose parcels surround it."""
    rows = grid(n=3)
    rows[4] = ("P11", 2, rows[4][2])
    found = run(rows, ["district"], districts=flur_maps(rows, "abgeleitet"))
    assert rules_of(found) == [("district.outside", "P11")]
    assert found[0].related == ["053084:1"]
    assert "(derived from the other parcels)" in found[0].message
    # Flur 1's map as stored is a ring around the centre parcel: the stage fills the hole.
    ring = flur_maps(rows[:4] + rows[5:], "abgeleitet")
    assert ring.geometry.iloc[0].interiors and \
        rules_of(run(rows, ["district"], districts=ring)) == [("district.outside", "P11")]
    districts = frame([("F1", 1, shapely.box(0, 0, 30, 30))]).drop(
        columns=["gml_id", "flurstueckskennzeichen"]).assign(herkunft="importiert")
    imported = run(rows, ["district"], districts=districts)
    assert rules_of(imported) == [("district.outside", "P11")]
    assert "(imported)" in imported[0].message


def test_only_the_stages_of_the_chosen_rules_run():
    """Two rules run two stages (and the edges they need): no union, no search for gaps;
    coverage.precision, the dust of both coverage stages, runs both."""
    from pipeline.validation.run import _stage_names

    assert _stage_names(["geometry.invalid", "coverage.overlap"]) == ["geometry", "overlap"]
    assert _stage_names(["coverage.precision"]) == ["overlap", "gap"]
    holed = grid(skip={(1, 1)})
    assert run(holed, ["overlap"]) == [] and rules_of(run(holed, ["gap"]))[0][0] == "coverage.gap"


def test_the_pipeline_adds_the_stages_a_stage_needs():
    assert [s.name for s in stages_for(["gap"])] == ["valid", "edges", "gap"]
    assert [s.name for s in stages_for(["overlap", "gap"])] == ["valid", "edges", "overlap",
                                                                 "gap"]
    assert [s.name for s in stages_for(["sliver"])] == ["valid", "sliver"]
    # Where a partition has no context, only the stages looking at each parcel alone run.
    assert [s.name for s in parcel_stages(["geometry", "overlap", "district"])] == [
        "valid", "geometry"]


@pytest.mark.parametrize("names", [["geometry"], ["overlap", "gap"], ["district"]])
def test_stages_report_only_their_rules(names):
    from pipeline.validation.rules import RULES

    rows = grid(skip={(1, 1)})
    rows[0] = ("P00", 2, shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]))
    for f in run(rows, names):
        assert RULES[f.rule].source in names
