-- Step duplicate_keys: staged parcels sharing one Flurstückskennzeichen (<s>: the stage table).
-- The repeated keys first (a cheap hash aggregate), the details only for them.
SELECT flurstueckskennzeichen, array_agg(gml_id ORDER BY gml_id), array_agg(src ORDER BY gml_id),
       ST_AsBinary(ST_PointOnSurface(ST_Collect(geom ORDER BY gml_id)))
FROM {s}
JOIN (SELECT flurstueckskennzeichen FROM {s} GROUP BY 1
      HAVING min(gml_id) <> max(gml_id)) d USING (flurstueckskennzeichen)
GROUP BY flurstueckskennzeichen
ORDER BY 1
