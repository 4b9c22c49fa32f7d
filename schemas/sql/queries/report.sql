-- The validation report (exporters/findings.py): district maps and the parcels named.

-- name: gemarkung_maps
SELECT gemarkungsnummer, coalesce(gemarkung, gemarkungsnummer), ST_AsBinary(geom)
FROM kataster.gemarkung_karte
WHERE geom IS NOT NULL AND gemarkungsnummer IS NOT NULL
ORDER BY gemarkungsnummer;

-- name: flur_lines
SELECT gemarkungsnummer, ST_AsBinary(ST_Boundary(geom))
FROM kataster.flur_karte WHERE geom IS NOT NULL;

-- name: parcels_named
SELECT f.gml_id, f.gemarkungsnummer, coalesce(v.gemarkung, f.gemarkungsnummer),
       f.flurnummer, f.flurstueckskennzeichen, f.zaehler, f.nenner
FROM kataster.ax_flurstueck f LEFT JOIN kataster.flurstueck v USING (gml_id)
WHERE f.endet IS NULL AND f.gml_id = ANY(%(ids)s);
