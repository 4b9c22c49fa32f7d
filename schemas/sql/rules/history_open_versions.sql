-- Rule history.open_versions: more than one open version of an object, in one object table
-- (<table>, named <label> in the message).
SELECT gml_id, ARRAY[]::text[], {label} || ' ' || gml_id || ' has ' || count(*)
       || ' open versions (beginnt ' || string_agg(beginnt::text, ', ' ORDER BY beginnt) || ')',
       NULL::geometry
FROM {table} t WHERE endet IS NULL AND {scope} GROUP BY gml_id HAVING count(*) > 1
