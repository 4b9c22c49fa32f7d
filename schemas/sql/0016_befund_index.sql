-- Kataster data model, revision 0016: the findings' map layers use an index.
--
-- The map layers and OGC API collections befund_punkt and befund_flaeche filter on the views'
-- typed geometry, an expression over kataster.finding.geom that the gist index on geom cannot
-- serve: every map tile read every finding. Partial indexes on exactly the views' expressions
-- (and their WHERE) let the planner use an index scan for a box.
CREATE INDEX finding_punkt_geom_idx ON kataster.finding USING gist (
    ((CASE WHEN GeometryType(geom) = 'POINT' THEN geom END)::geometry(Point, 25832)))
    WHERE GeometryType(geom) = 'POINT';

CREATE INDEX finding_flaeche_geom_idx ON kataster.finding USING gist (
    ((CASE WHEN GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON') THEN ST_Multi(geom) END
     )::geometry(MultiPolygon, 25832)))
    WHERE GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON');
