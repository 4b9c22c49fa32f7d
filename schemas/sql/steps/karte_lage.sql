-- Sheets of this run whose footprint does not meet the Flur (or, without a Flur, the
-- Gemarkung) they claim; "bezirk" is NULL where the claimed district is not stored at all.
SELECT k.gml_id, k.gemarkung_kennzeichen, k.flurnummer, ST_AsBinary(k.geom),
       (SELECT count(*) FROM kataster.flur_karte f
        WHERE f.land = left(k.gemarkung_kennzeichen, 2)
          AND f.gemarkungsnummer = substr(k.gemarkung_kennzeichen, 3)
          AND (k.flurnummer IS NULL OR f.flurnummer = k.flurnummer)) AS bezirk
FROM kataster.karte k
WHERE k.run_id = %(run)s AND k.endet IS NULL AND k.gemarkung_kennzeichen IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM kataster.flur_karte f
      WHERE f.land = left(k.gemarkung_kennzeichen, 2)
        AND f.gemarkungsnummer = substr(k.gemarkung_kennzeichen, 3)
        AND (k.flurnummer IS NULL OR f.flurnummer = k.flurnummer)
        AND ST_Intersects(f.geom, k.geom))
