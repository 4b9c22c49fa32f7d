-- The area of a Flur (or, without one, of a Gemarkung) for an export of scanned maps.
SELECT ST_AsBinary(ST_Union(geom)) FROM kataster.flur
WHERE gemarkungsnummer = %(gemarkung)s
  AND (%(flur)s::int IS NULL OR flurnummer = %(flur)s::int)
