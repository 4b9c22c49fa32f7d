"""The NAS geometry reader (importers.nas_geometry) and the CRS names: database-free unit tests
of every GML form the NAS profiles use."""

import math

import numpy as np
import pytest
import shapely
from lxml import etree

from importers import crs
from importers.nas_geometry import Context, GeometryError, HeightOnly, stroke_arc, to_shapely

NS = ('xmlns:gml="http://www.opengis.net/gml/3.2" '
      'xmlns:gml31="http://www.opengis.net/gml"')


def gml(text):
    """The first element of a GML fragment (namespaces declared for it)."""
    root = etree.fromstring(f"<root {NS}>{text}</root>")
    return root[0]


def read(text, max_dev=0.01):
    ctx = Context(max_dev)
    return to_shapely(gml(text), max_dev, ctx), ctx


RING = "0 0 10 0 10 10 0 10 0 0"


@pytest.mark.parametrize("text", [
    # GML 3.2 patches, Ring of curves, posList
    f"""<gml:Surface><gml:patches><gml:PolygonPatch><gml:exterior><gml:Ring><gml:curveMember>
        <gml:Curve><gml:segments><gml:LineStringSegment><gml:posList>{RING}</gml:posList>
        </gml:LineStringSegment></gml:segments></gml:Curve></gml:curveMember></gml:Ring>
        </gml:exterior></gml:PolygonPatch></gml:patches></gml:Surface>""",
    # GML 3.1 style polygonPatches (older extracts, e.g. the official RLP test extract)
    f"""<gml:Surface><gml:polygonPatches><gml:PolygonPatch><gml:exterior><gml:LinearRing>
        <gml:posList>{RING}</gml:posList></gml:LinearRing></gml:exterior></gml:PolygonPatch>
        </gml:polygonPatches></gml:Surface>""",
    # Polygon with LinearRing of single positions
    """<gml:Polygon><gml:exterior><gml:LinearRing><gml:pos>0 0</gml:pos><gml:pos>10 0</gml:pos>
        <gml:pos>10 10</gml:pos><gml:pos>0 10</gml:pos><gml:pos>0 0</gml:pos></gml:LinearRing>
        </gml:exterior></gml:Polygon>""",
    # gml:coordinates (cs and ts defaults)
    """<gml:Polygon><gml:exterior><gml:LinearRing><gml:coordinates>0,0 10,0 10,10 0,10 0,0
        </gml:coordinates></gml:LinearRing></gml:exterior></gml:Polygon>""",
    # srsDimension 3 on the geometry: heights dropped
    """<gml:Polygon srsDimension="3"><gml:exterior><gml:LinearRing><gml:posList>0 0 5 10 0 5
        10 10 5 0 10 5 0 0 5</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>""",
    # a ring split into one curve per boundary segment, as real extracts write it
    """<gml:Polygon><gml:exterior><gml:Ring>
        <gml:curveMember><gml:LineString><gml:posList>0 0 10 0</gml:posList></gml:LineString></gml:curveMember>
        <gml:curveMember><gml:LineString><gml:posList>10 0 10 10</gml:posList></gml:LineString></gml:curveMember>
        <gml:curveMember><gml:OrientableCurve orientation="-"><gml:baseCurve><gml:LineString>
          <gml:posList>0 10 10 10</gml:posList></gml:LineString></gml:baseCurve></gml:OrientableCurve></gml:curveMember>
        <gml:curveMember><gml:LineString><gml:posList>0 10 0 0</gml:posList></gml:LineString></gml:curveMember>
        </gml:Ring></gml:exterior></gml:Polygon>""",
])
def test_square_in_every_surface_form(text):
    g, _ = read(text)
    assert shapely.equals(g, shapely.box(0, 0, 10, 10))


def test_multi_and_composite_forms():
    square = ("<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{}</gml:posList>"
              "</gml:LinearRing></gml:exterior></gml:Polygon>")
    two = square.format(RING) + square.format("20 0 30 0 30 10 20 10 20 0")
    g, _ = read(f"<gml:MultiSurface><gml:surfaceMember>{square.format(RING)}</gml:surfaceMember>"
                f"<gml:surfaceMembers>{square.format('20 0 30 0 30 10 20 10 20 0')}"
                "</gml:surfaceMembers></gml:MultiSurface>")
    assert g.geom_type == "MultiPolygon" and g.area == 200
    g, _ = read(f"<gml:CompositeSurface><gml:surfaceMember>{square.format(RING)}"
                "</gml:surfaceMember></gml:CompositeSurface>")
    assert g.area == 100
    g, _ = read(f"<gml:MultiSurface><gml:surfaceMembers>{two}</gml:surfaceMembers></gml:MultiSurface>")
    assert len(g.geoms) == 2
    g, _ = read("<gml:MultiPoint><gml:pointMember><gml:Point><gml:pos>1 2</gml:pos></gml:Point>"
                "</gml:pointMember><gml:pointMembers><gml:Point><gml:pos>3 4</gml:pos></gml:Point>"
                "</gml:pointMembers></gml:MultiPoint>")
    assert [p.coords[0] for p in g.geoms] == [(1, 2), (3, 4)]
    g, _ = read("<gml:MultiCurve><gml:curveMember><gml:LineString><gml:posList>0 0 1 1"
                "</gml:posList></gml:LineString></gml:curveMember><gml:curveMember><gml:Curve>"
                "<gml:segments><gml:LineStringSegment><gml:pos>2 2</gml:pos><gml:pos>3 3</gml:pos>"
                "</gml:LineStringSegment></gml:segments></gml:Curve></gml:curveMember>"
                "</gml:MultiCurve>")
    assert g.geom_type == "MultiLineString" and len(g.geoms) == 2
    g, _ = read("<gml:CompositeCurve><gml:curveMember><gml:LineString><gml:posList>0 0 1 0"
                "</gml:posList></gml:LineString></gml:curveMember><gml:curveMember><gml:LineString>"
                "<gml:posList>1 0 1 1</gml:posList></gml:LineString></gml:curveMember>"
                "</gml:CompositeCurve>")
    assert list(g.coords) == [(0, 0), (1, 0), (1, 1)]


def _max_deviation(points, centre, radius):
    """Largest sagitta between consecutive stroked points on a circle."""
    p = np.asarray(points)
    mids = (p[1:] + p[:-1]) / 2
    return float(np.max(radius - np.hypot(mids[:, 0] - centre[0], mids[:, 1] - centre[1])))


@pytest.mark.parametrize("segment,centre,radius,length", [
    ("<gml:Arc><gml:posList>10 0 0 10 -10 0</gml:posList></gml:Arc>", (0, 0), 10, math.pi * 10),
    ("<gml:ArcString><gml:posList>10 0 0 10 -10 0 0 -10 10 0</gml:posList></gml:ArcString>",
     (0, 0), 10, 2 * math.pi * 10),
    ("<gml:Circle><gml:posList>10 0 0 10 -10 0</gml:posList></gml:Circle>", (0, 0), 10,
     2 * math.pi * 10),
    ('<gml:ArcByCenterPoint numArc="1"><gml:pos>0 0</gml:pos><gml:radius uom="m">10</gml:radius>'
     '<gml:startAngle uom="deg">0</gml:startAngle><gml:endAngle uom="deg">90</gml:endAngle>'
     "</gml:ArcByCenterPoint>", (0, 0), 10, math.pi * 5),
    ('<gml:CircleByCenterPoint numArc="1"><gml:pos>0 0</gml:pos><gml:radius uom="m">10'
     "</gml:radius></gml:CircleByCenterPoint>", (0, 0), 10, 2 * math.pi * 10),
])
def test_arcs_are_stroked_within_the_deviation(segment, centre, radius, length):
    g, _ = read(f"<gml:Curve><gml:segments>{segment}</gml:segments></gml:Curve>", max_dev=0.01)
    coords = np.asarray(g.coords)
    assert _max_deviation(coords, centre, radius) <= 0.01 + 1e-9
    assert np.allclose(np.hypot(coords[:, 0], coords[:, 1]), radius)
    assert g.length == pytest.approx(length, rel=1e-3)


def test_a_shared_arc_gives_the_same_vertices_in_both_directions():
    """Neighbours that share an arc (one writes it forwards, the other backwards) meet exactly:
    no precision dust between them."""
    a, b, c = (350010.123, 5700000.456), (350017.2, 5700007.9), (350020.789, 5700020.012)
    forward = stroke_arc(a, b, c, 0.01)
    backward = stroke_arc(c, b, a, 0.01)
    assert np.array_equal(forward, backward[::-1])
    left = shapely.Polygon(np.vstack([[(350000, 5700000)], forward, [(350000, 5700020.012)]]))
    right = shapely.Polygon(np.vstack([backward, [(350040, 5700000)]]))
    assert left.is_valid and right.is_valid
    assert left.intersection(right).area == 0
    assert shapely.union(left, right).area == pytest.approx(left.area + right.area, abs=1e-9)


def test_inner_srs_names_are_collected_and_heights_recognised():
    g, ctx = read('<gml:Point><gml:pos srsName="urn:adv:crs:LOKAL_RP_UTM32101">32351593.736 '
                  "5531607.130</gml:pos></gml:Point>")
    assert ctx.inner_srs == {"urn:adv:crs:LOKAL_RP_UTM32101"} and g.x == 32351593.736
    with pytest.raises(HeightOnly) as info:
        read('<gml:Point><gml:pos srsName="urn:adv:crs:DE_DHHN85_NOH">254.320</gml:pos></gml:Point>')
    assert info.value.value == 254.32 and info.value.srs == "urn:adv:crs:DE_DHHN85_NOH"


@pytest.mark.parametrize("text,message", [
    ("<gml:Solid/>", "unsupported geometry gml:Solid"),
    ("<gml:Curve><gml:segments><gml:Bezier><gml:posList>0 0 1 1 2 0</gml:posList></gml:Bezier>"
     "</gml:segments></gml:Curve>", "unsupported curve element gml:Bezier"),
    ("<gml:Surface><gml:trianglePatches/></gml:Surface>", "without gml:patches"),
    ("<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>0 0 1 0 1 1 0 1</gml:posList>"
     "</gml:LinearRing></gml:exterior></gml:Polygon>", "not closed"),
    ("<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>0 0 1 0 0 0</gml:posList>"
     "</gml:LinearRing></gml:exterior></gml:Polygon>", "at least 4"),
    ("<gml:LineString><gml:posList>0 0 1</gml:posList></gml:LineString>", "do not form"),
    ("<gml:LineString><gml:posList>0 0 x 1</gml:posList></gml:LineString>", "not a number"),
    ("<gml:Curve><gml:segments><gml:Arc><gml:posList>0 0 1 1</gml:posList></gml:Arc>"
     "</gml:segments></gml:Curve>", "odd number"),
])
def test_unsupported_or_broken_forms_name_the_element_and_line(text, message):
    with pytest.raises(GeometryError, match=message) as info:
        read(text)
    assert info.value.line == 1


@pytest.mark.parametrize("name,kind,epsg", [
    ("urn:adv:crs:ETRS89_UTM32", "map", 25832),
    ("urn:adv:crs:ETRS89_UTM33", "map", 25833),
    ("urn:adv:crs:DE_DHDN_3GK2_RP180", "map", 31466),
    ("urn:adv:crs:DE_DHDN_3GK4_BY120", "map", 31468),
    ("urn:adv:crs:DE_DHDN_3GK3", "map", 31467),
    ("urn:adv:crs:DE_DHHN85_NOH", "height", None),
    ("urn:adv:crs:DE_DHHN92_NH", "height", None),
    ("urn:adv:crs:DE_DHHN12_RP120", "height", None),
    ("urn:adv:crs:ETRS89_h", "height", None),
    ("urn:adv:crs:LOKAL_RP_UTM32101", "kept", None),
    ("urn:adv:crs:ETRS89_X-Y-Z", "kept", None),
    ("urn:ogc:def:crs:EPSG::25832", "map", 25832),
    ("http://www.opengis.net/def/crs/EPSG/0/25833", "map", 25833),
    ("EPSG:4258", "map", 4258),
])
def test_crs_names(name, kind, epsg):
    named = crs.named_crs(name)
    assert (named.kind, named.epsg) == (kind, epsg)


def test_unknown_crs_names_are_not_guessed():
    assert crs.named_crs("urn:adv:crs:DE_FANTASIE_99") is None
    assert crs.named_crs("urn:ogc:def:crs:EPSG::999999") is None
    assert crs.named_crs("urn:ogc:def:crs:EPSG::4258").lat_lon
    assert not crs.named_crs("EPSG:4258").lat_lon


def test_coordinate_check_names_the_cause():
    ok = np.array([shapely.Point(350000, 5700000)], dtype=object)
    crs.check_extent(ok, ok, lambda i: "x", "f.xml", "urn:adv:crs:ETRS89_UTM32", 25832)
    for raw, epsg, hint in [((495702.82, 5334684.28), 31468, "zone 4 without the zone digit"),
                            ((32351593.7, 5531607.1), 25832, "zone prefix"),
                            ((np.inf, 5531607.1), 25832, "not a finite number"),
                            ((1e300, 1e300), 25832, "check the coordinate system")]:
        written = np.array([shapely.Point(*raw)], dtype=object)
        tr, _ = crs.transformer(crs.parse_crs(f"EPSG:{epsg}", "test"), "test")
        stored = crs.to_target(written, tr)          # as the importer does
        with pytest.raises(crs.CRSError, match=hint):
            crs.check_extent(stored, written, lambda i: "AX_Flurstueck DEBY...", "f.xml",
                             f"EPSG:{epsg}", epsg)
