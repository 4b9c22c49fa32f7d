-- Running the set-based rules of schemas/sql/rules/ (pipeline/validation/sql_rules.py).

-- name: current_parcels
(SELECT gml_id, flurstueckskennzeichen, gemarkungsnummer, NULL::text AS src, geom
 FROM kataster.ax_flurstueck WHERE endet IS NULL)

-- name: of_gemarkung
gemarkungsnummer = %(gemarkung)s

-- name: of_touched
gml_id = ANY(%(touched)s)

-- name: sharing_keys_with_touched
-- The current parcels carrying the Flurstückskennzeichen of a touched current parcel.
(SELECT gml_id, flurstueckskennzeichen, gemarkungsnummer, NULL::text AS src, geom
 FROM kataster.ax_flurstueck
 WHERE endet IS NULL AND flurstueckskennzeichen IN (
     SELECT flurstueckskennzeichen FROM kataster.ax_flurstueck
     WHERE endet IS NULL AND gml_id = ANY(%(touched)s)))

-- name: rows
-- A rule's statement gives (object id, related ids, message, location).
SELECT gml_id, related, message, ST_AsBinary(g) FROM ({rule}) AS r(gml_id, related, message, g);
