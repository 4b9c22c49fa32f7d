-- Kataster data model, revision 0008: derived Gemarkung boundaries from the materialised Flur
-- boundaries. kataster.gemarkung unioned the view kataster.flur, which unions every parcel of
-- the Gemarkung again: each refresh of gemarkung_karte repeated the whole Flur union that the
-- refresh of flur_karte had just done (3.3 s of 3.8 s for 87,000 NAS parcels). It now unions
-- kataster.flur_karte, which is refreshed first in the same transaction by every import and
-- every repair (pipeline.views.refresh_derived). Same columns and rows as in 0002.
CREATE OR REPLACE VIEW kataster.gemarkung AS
SELECT b.land, b.gemarkungsnummer, coalesce(b.bezeichnung, g.bezeichnung) AS gemarkung,
       'importiert'::text AS herkunft, b.geom
FROM kataster.bezirk b
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE b.art = 'gemarkung' AND b.endet IS NULL
UNION ALL
SELECT f.land, f.gemarkungsnummer, min(f.gemarkung), 'abgeleitet'::text,
       ST_Multi(ST_Union(f.geom))::geometry(MultiPolygon, 25832)
FROM kataster.flur_karte f
WHERE NOT EXISTS (SELECT 1 FROM kataster.bezirk b
                  WHERE b.art = 'gemarkung' AND b.endet IS NULL AND b.land = f.land
                    AND b.gemarkungsnummer = f.gemarkungsnummer)
GROUP BY f.land, f.gemarkungsnummer;
