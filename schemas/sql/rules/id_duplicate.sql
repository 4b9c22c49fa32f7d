-- Rule id.duplicate: parcels sharing one Flurstückskennzeichen. One query for both places it
-- is checked: <parcels> is the stage table of one delivery (the import step duplicate_keys)
-- or the current stored parcels (the validation), with the columns gml_id,
-- flurstueckskennzeichen, gemarkungsnummer, src, geom. A group is reported when one of its
-- parcels is in <scope>. The repeated keys first (a cheap hash aggregate), the details only
-- for them. Columns: the key, the parcels' ids and sources, the location.
SELECT flurstueckskennzeichen, array_agg(gml_id ORDER BY gml_id), array_agg(src ORDER BY gml_id),
       ST_AsBinary(ST_PointOnSurface(ST_Collect(geom ORDER BY gml_id)))
FROM {parcels} p
JOIN (SELECT flurstueckskennzeichen FROM {parcels} p GROUP BY 1
      HAVING min(gml_id) <> max(gml_id) AND bool_or({scope})) d USING (flurstueckskennzeichen)
GROUP BY flurstueckskennzeichen
ORDER BY 1
