"""The uncancelled edges of a coverage and their winding number (pipeline.validation.coverage):
no database (fast)."""

import numpy as np
import shapely

from pipeline.validation.coverage import covered_twice, overlap_candidates, residual, winding


def squares(n=5, size=10.0):
    return np.array([shapely.box(i * size, j * size, (i + 1) * size, (j + 1) * size)
                     for i in range(n) for j in range(n)])


def test_shared_edges_cancel_and_the_outline_remains():
    """A 5 × 5 grid, some squares written clockwise and some as MultiPolygons: 20 outline
    edges remain, each once, running counter-clockwise; the number of squares covering a
    point is the winding number of what remains."""
    grid = squares()
    grid[3] = shapely.reverse(grid[3])
    grid[7] = shapely.MultiPolygon([grid[7]])
    x1, y1, x2, y2, weight, owners, edges = residual(grid)
    assert len(x1) == 20 and set(np.abs(weight)) == {1} and edges == 2 * 5 * 6
    assert sorted(owners) == sorted(k for k in range(25) if k // 5 in (0, 4) or k % 5 in (0, 4))
    points = np.array([[25.0, 25.0], [-5.0, 25.0], [49.0, 1.0], [60.0, 60.0]])
    assert winding(points, x1, y1, x2, y2, weight).tolist() == [1, 0, 1, 0]
    assert len(covered_twice(x1, y1, x2, y2, weight)) == 0


def test_two_and_three_layers_are_found_where_they_are():
    grid = squares()
    extra = np.array([shapely.box(12, 12, 28, 28), shapely.box(15, 15, 18, 18)])
    geoms = np.concatenate([grid, extra])
    x1, y1, x2, y2, weight, _, _ = residual(geoms)
    points = np.array([[20.0, 20.0], [16.0, 16.0], [5.0, 5.0]])
    assert winding(points, x1, y1, x2, y2, weight).tolist() == [2, 3, 1]
    twice = covered_twice(x1, y1, x2, y2, weight)
    assert np.isclose(shapely.area(shapely.union_all(twice)), 16 * 16)
    cand, _ = overlap_candidates(geoms, shapely.STRtree(geoms))
    # the two extra squares and the four grid squares under them
    assert sorted(cand) == [6, 7, 11, 12, 25, 26]


def test_a_hole_winds_back_to_zero():
    ring = shapely.box(0, 0, 30, 30).difference(shapely.box(10, 10, 20, 20))
    x1, y1, x2, y2, weight, _, _ = residual(np.array([ring]))
    assert winding(np.array([[15.0, 15.0], [5.0, 5.0]]), x1, y1, x2, y2, weight).tolist() == [0, 1]


def test_neighbours_without_shared_points_make_every_polygon_a_candidate(monkeypatch):
    """Where too many edges remain uncancelled (here: every other square with a point its
    neighbours lack on each edge), noding them would cost more than comparing all: every
    polygon is a candidate, and the overlap found by comparing is still found."""
    from pipeline.validation import coverage

    grid = squares(6)
    grid[::2] = shapely.segmentize(grid[::2], 5.0)
    grid[7] = shapely.box(10, 10, 21, 20)                 # 1 m into its neighbour
    left = len(residual(grid)[0])
    monkeypatch.setattr(coverage, "MOST_LEFT", left - 1)
    cand, owners = overlap_candidates(grid, shapely.STRtree(grid))
    assert list(cand) == list(owners) == list(range(36))
    monkeypatch.setattr(coverage, "MOST_LEFT", left)
    cand, _ = overlap_candidates(grid, shapely.STRtree(grid))
    assert 7 in cand and 13 in cand and len(cand) < 36


def test_nothing_to_compare():
    empty = np.array([], dtype=object)
    assert [len(v) for v in residual(empty)[:6]] == [0] * 6
    cand, owners = overlap_candidates(empty, shapely.STRtree(empty))
    assert len(cand) == len(owners) == 0
