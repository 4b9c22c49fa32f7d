-- Step apply_operations, with history: a wfs:Delete or wfs:Update closes the version it names
-- (or the open one) at its end; the reason an Update gives for the end is kept with it.
-- <target>: the table; <version>: which version.
UPDATE {target}
SET endet = %(t)s, closed_run_id = %(run)s,
    attrs = CASE WHEN %(anlass)s::text IS NULL THEN attrs
                 ELSE coalesce(attrs, '{{}}') || jsonb_build_object('anlass_endet', %(anlass)s::text)
            END
WHERE gml_id = %(g)s AND endet IS NULL {version}
