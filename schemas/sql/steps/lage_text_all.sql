-- Step lage_text for a run that changed a tenth or more of the Lagebezeichnungen (a first
-- import): the address text of every version the run wrote and of every current parcel that
-- names a Lagebezeichnung, in one set-based pass (lage_text.sql looks the changed
-- Lagebezeichnungen up one by one, which a million of them make slow); written only where
-- the text differs. Parcels of other runs that name none keep theirs (a flat delivery's text).
WITH text AS (
    SELECT p.gml_id, p.beginnt, string_agg(coalesce(l.unverschluesselt, k.bezeichnung,
           l.lage) || coalesce(' ' || l.hausnummer, ''), ', ' ORDER BY l.lage, l.hausnummer)
           AS lage
    FROM kataster.ax_flurstueck p
    LEFT JOIN LATERAL unnest(coalesce(p.weist_auf, '{}') || coalesce(p.zeigt_auf, '{}'))
        AS r(id) ON true
    LEFT JOIN kataster.ax_lagebezeichnung l ON l.endet IS NULL AND l.gml_id = r.id
    LEFT JOIN kataster.ax_katalog k ON k.endet IS NULL
     AND k.objektart = 'AX_LagebezeichnungKatalogeintrag'
     AND k.schluessel = l.land || l.regierungsbezirk || l.kreis || l.gemeinde || l.lage
    WHERE p.run_id = %(run)s
       OR (p.endet IS NULL
           AND cardinality(coalesce(p.weist_auf, '{}') || coalesce(p.zeigt_auf, '{}')) > 0)
    GROUP BY p.gml_id, p.beginnt)
UPDATE kataster.ax_flurstueck f SET lage = t.lage FROM text t
WHERE f.gml_id = t.gml_id AND f.beginnt = t.beginnt AND f.lage IS DISTINCT FROM t.lage;
