-- Reading the validation's partitions (pipeline/validation/partitions.py, run.py): one
-- Gemarkung's current parcels, a band of neighbours, the Flur boundaries around them.

-- name: partitions
-- One partition per Gemarkung, and one ("", "") for parcels without a complete one.
SELECT DISTINCT coalesce(land, ''), coalesce(gemarkungsnummer, '')
FROM kataster.ax_flurstueck
WHERE endet IS NULL AND (%(gemarkung)s::text IS NULL OR gemarkungsnummer = %(gemarkung)s)
ORDER BY 1, 2;

-- name: parcels
SELECT gml_id, flurstueckskennzeichen, land, gemarkungsnummer, flurnummer, ST_AsBinary(geom)
FROM kataster.ax_flurstueck
WHERE endet IS NULL AND {where};

-- name: without_gemarkung
(coalesce(land, '') = '' OR coalesce(gemarkungsnummer, '') = '')

-- name: of_gemarkung
land = %(land)s AND gemarkungsnummer = %(gemarkung)s

-- name: neighbours
-- The other parcels in the grid cells (x0, y0, x1, y1) that the partition's parcels touch.
gml_id = ANY(ARRAY(
    SELECT DISTINCT n.gml_id
    FROM unnest(%(x0)s::float8[], %(y0)s::float8[], %(x1)s::float8[], %(y1)s::float8[])
         AS c(x0, y0, x1, y1)
    JOIN kataster.ax_flurstueck n ON n.geom && ST_MakeEnvelope(c.x0, c.y0, c.x1, c.y1, 25832)
    WHERE n.endet IS NULL
      AND NOT (coalesce(n.land, '') = %(land)s AND coalesce(n.gemarkungsnummer, '') = %(gemarkung)s)))

-- name: in_boxes
-- A scoped validation's parcels: those named, and those in the boxes (x0, y0, x1, y1).
(gml_id = ANY(%(parcels)s) OR gml_id = ANY(ARRAY(
    SELECT DISTINCT n.gml_id
    FROM unnest(%(x0)s::float8[], %(y0)s::float8[], %(x1)s::float8[], %(y1)s::float8[])
         AS c(x0, y0, x1, y1)
    JOIN kataster.ax_flurstueck n ON n.geom && ST_MakeEnvelope(c.x0, c.y0, c.x1, c.y1, 25832)
    WHERE n.endet IS NULL)))

-- name: fluren
-- The Flur maps around a piece (imported boundaries where delivered, else derived).
SELECT land, gemarkungsnummer, flurnummer, herkunft, ST_AsBinary(geom)
FROM kataster.flur_karte
WHERE geom && ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 25832);

-- name: area_filled
SELECT coalesce(sum(ST_Area(ST_Intersection(geom, h))), 0)
FROM kataster.ax_flurstueck, ST_GeomFromWKB(%(hole)s, 25832) h
WHERE endet IS NULL AND geom && h AND ST_IsValid(geom);

-- name: around_hole
SELECT gml_id, ST_AsBinary(geom)
FROM kataster.ax_flurstueck, ST_GeomFromWKB(%(hole)s, 25832) h
WHERE endet IS NULL AND geom && h AND ST_Intersects(geom, h) AND ST_IsValid(geom);
