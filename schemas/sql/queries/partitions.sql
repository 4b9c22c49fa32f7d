-- Reading the validation's partitions (pipeline/validation/partitions.py, run.py): one
-- Gemarkung's current parcels (in a large Gemarkung: those in one tile, partitions.tile_of),
-- a band of neighbours, the Flur boundaries around them. "tiled" lists the large Gemarkungen
-- (Land and Gemarkungsnummer).

-- name: gemarkungen
-- The current parcels per Gemarkung ("" for a missing Land or Gemarkungsnummer).
SELECT coalesce(land, ''), coalesce(gemarkungsnummer, ''), count(*)
FROM kataster.ax_flurstueck
WHERE endet IS NULL AND (%(gemarkung)s::text IS NULL OR gemarkungsnummer = %(gemarkung)s)
GROUP BY 1, 2;

-- name: extent
-- The extent of a large Gemarkung (of bounding boxes rounded outwards: its tiles cover it) and
-- whether it has parcels without a geometry. (One query per Gemarkung: grouping several by
-- Gemarkung sorted all their geometries, 0.6 s instead of 0.3 s for 1,000,000.)
SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), unplaced
FROM (SELECT ST_Extent(geom) AS e, bool_or(geom IS NULL) AS unplaced
      FROM kataster.ax_flurstueck
      WHERE endet IS NULL AND land = %(land)s AND gemarkungsnummer = %(gemarkung)s) x;

-- name: parcels
-- Python adds the partition that owns what is found on each parcel (partitions._read_parcels).
SELECT gml_id, flurstueckskennzeichen, land, gemarkungsnummer, flurnummer, ST_AsBinary(geom)
FROM kataster.ax_flurstueck
WHERE endet IS NULL AND {where};

-- name: without_gemarkung
(coalesce(land, '') = '' OR coalesce(gemarkungsnummer, '') = '')

-- name: of_gemarkung
land = %(land)s AND gemarkungsnummer = %(gemarkung)s

-- name: in_box
-- A tile's parcels and its nearest neighbours: those whose extent meets its square grown by a
-- band (partitions._read_piece), of any Gemarkung; its own are those whose extent's centre
-- lies in the square (partitions.tile_of).
geom && ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 25832)

-- name: without_tile
land = %(land)s AND gemarkungsnummer = %(gemarkung)s AND geom IS NULL

-- name: in_cells
-- Parcels in the boxes (x0, y0, x1, y1): one bitmap scan of the spatial index for all of them
-- and one pass over the table; put into the conditions below as {in_cells}.
geom && ANY(ARRAY(
    SELECT ST_MakeEnvelope(c.x0, c.y0, c.x1, c.y1, 25832)
    FROM unnest(%(x0)s::float8[], %(y0)s::float8[], %(x1)s::float8[], %(y1)s::float8[])
         AS c(x0, y0, x1, y1)))

-- name: neighbours
-- The parcels of other Gemarkungen in the grid cells (x0, y0, x1, y1) that a Gemarkung's
-- parcels touch.
{in_cells}
AND NOT (coalesce(land, '') = %(land)s AND coalesce(gemarkungsnummer, '') = %(gemarkung)s)

-- name: beyond_box
-- The parcels in the grid cells (x0, y0, x1, y1) of a tile's parcels that reach beyond the
-- box read for it (in_box), not read with it.
{in_cells}
AND NOT geom && ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 25832)

-- name: in_boxes
-- A scoped validation's parcels: those named, and those in the boxes (x0, y0, x1, y1). One
-- bitmap scan of both indexes and one pass over the table (looking the boxes' parcels up by
-- gml_id again touched ten times the pages: 47,546 buffers instead of 4,320 for a portion's
-- 11,564 parcels at 1,000,000).
(gml_id = ANY(%(parcels)s) OR {in_cells})

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
