-- Rule history.order: a version ends before it begins, or begins before the previous one of
-- the same object ended, in one object table (<table>, named <label> in the message).
SELECT gml_id, ARRAY[]::text[], {label} || ' ' || gml_id || ': version beginning '
       || beginnt || CASE WHEN endet IS NOT NULL AND beginnt >= endet
                          THEN ' ends before it begins (' || endet || ')'
                          ELSE ' overlaps the previous version (ends '
                               || coalesce(prev_endet::text, 'never') || ')' END,
       NULL::geometry
FROM (SELECT gml_id, beginnt, endet,
             lag(beginnt) OVER w AS prev_beginnt, lag(endet) OVER w AS prev_endet
      FROM {table} t WHERE {scope}
      WINDOW w AS (PARTITION BY gml_id ORDER BY beginnt)) v
WHERE (endet IS NOT NULL AND beginnt >= endet)
   OR (prev_beginnt IS NOT NULL AND (prev_endet IS NULL OR prev_endet > beginnt))
