-- Step lage_text: the address text (lage) of the parcels from their Lagebezeichnungen.
-- A parcel names its Lagebezeichnungen by object id, not by version: its address text follows
-- them. Recomputed for the parcels of the run and for the current parcels that name a
-- Lagebezeichnung the run inserted, closed or deleted, or one on a street whose catalogue entry
-- (its name) the run changed; written only where the text differs.
WITH changed AS (
    SELECT gml_id FROM kataster.ax_lagebezeichnung
    WHERE run_id = %(run)s OR closed_run_id = %(run)s
    UNION SELECT unnest(%(deleted)s::text[])
    UNION SELECT l.gml_id FROM kataster.ax_lagebezeichnung l
    JOIN kataster.ax_katalog k ON k.objektart = 'AX_LagebezeichnungKatalogeintrag'
     AND k.schluessel = l.land || l.regierungsbezirk || l.kreis || l.gemeinde || l.lage
    WHERE l.endet IS NULL AND (k.run_id = %(run)s OR k.closed_run_id = %(run)s)),
parcels AS (
    SELECT gml_id, beginnt, coalesce(weist_auf, '{}') || coalesce(zeigt_auf, '{}') AS refs
    FROM kataster.ax_flurstueck
    WHERE run_id = %(run)s
    UNION
    -- One look-up per changed Lagebezeichnung in the parcels' index of them (0023).
    SELECT f.gml_id, f.beginnt, coalesce(f.weist_auf, '{}') || coalesce(f.zeigt_auf, '{}')
    FROM changed c CROSS JOIN LATERAL (
        SELECT gml_id, beginnt, weist_auf, zeigt_auf FROM kataster.ax_flurstueck
        WHERE endet IS NULL AND (weist_auf || zeigt_auf) @> ARRAY[c.gml_id]) f),
text AS (
    SELECT p.gml_id, p.beginnt, string_agg(coalesce(l.unverschluesselt, k.bezeichnung,
           l.lage) || coalesce(' ' || l.hausnummer, ''), ', ' ORDER BY l.lage, l.hausnummer)
           AS lage
    FROM parcels p
    LEFT JOIN LATERAL unnest(p.refs) AS r(id) ON true
    -- The runtime arrays (here and in the UPDATE) lead the planner to the primary keys: the
    -- row estimates of the CTEs are far too high, and a hash join read every row instead.
    LEFT JOIN kataster.ax_lagebezeichnung l ON l.endet IS NULL AND l.gml_id = r.id
     AND l.gml_id = ANY(ARRAY(SELECT unnest(refs) FROM parcels))
    LEFT JOIN kataster.ax_katalog k ON k.endet IS NULL
     AND k.objektart = 'AX_LagebezeichnungKatalogeintrag'
     AND k.schluessel = l.land || l.regierungsbezirk || l.kreis || l.gemeinde || l.lage
    GROUP BY p.gml_id, p.beginnt)
UPDATE kataster.ax_flurstueck f SET lage = t.lage
FROM text t, kataster.ax_flurstueck o
WHERE f.gml_id = t.gml_id AND f.beginnt = t.beginnt AND f.lage IS DISTINCT FROM t.lage
  AND f.gml_id = ANY(ARRAY(SELECT gml_id FROM text))
  -- o: the same row as the statement found it, for the text before.
  AND o.gml_id = f.gml_id AND o.beginnt = f.beginnt
  AND o.gml_id = ANY(ARRAY(SELECT gml_id FROM text))
-- The Fluren and streets, before and after, of the current parcels whose text changed: their
-- street names follow.
RETURNING CASE WHEN f.endet IS NULL
               THEN f.land || f.gemarkungsnummer || lpad(f.flurnummer::text, 3, '0') END,
          f.endet IS NULL,
          coalesce(kataster.strassen_ids(f.land || f.gemarkungsnummer
                                         || lpad(f.flurnummer::text, 3, '0'), o.lage), '{}')
          || coalesce(kataster.strassen_ids(f.land || f.gemarkungsnummer
                                            || lpad(f.flurnummer::text, 3, '0'), f.lage), '{}');
