-- Sheets of this run whose ground control points fit worse than the warning level.
SELECT gml_id, rms_m, ST_AsBinary(geom) FROM kataster.karte
WHERE run_id = %(run)s AND endet IS NULL AND rms_m > %(limit)s
