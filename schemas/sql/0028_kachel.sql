-- Kataster data model, revision 0028: the tile of a parcel, by which a full validation
-- partitions its work (pipeline/validation/partitions.py) besides the Gemarkung: the square of
-- `groesse` metres (a grid from the origin of EPSG:25832) holding the centre of the parcel's
-- bounding box, as "x:y" (the square's column and row); NULL without a geometry. One
-- Gemarkung of 1,000,000 parcels had been one partition, worked through by one process.
CREATE FUNCTION kataster.kachel(g geometry, groesse float8) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN floor((ST_XMin(Box2D(g)) + ST_XMax(Box2D(g))) / (2 * groesse))::bigint || ':'
       || floor((ST_YMin(Box2D(g)) + ST_YMax(Box2D(g))) / (2 * groesse))::bigint;
