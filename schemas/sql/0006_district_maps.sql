-- Kataster data model, revision 0006: district boundaries for the map services, materialised.
-- The views kataster.flur and kataster.gemarkung compute derived boundaries with ST_Union on
-- every query; maps and OGC API read these copies instead, refreshed by `kataster serve` at
-- start and after every committed import (pipeline.runs).
-- Derived Flur boundaries leave invalid parcel geometries out (GEOS cannot union them; they are
-- reported as geometry.invalid and never repaired silently).
CREATE OR REPLACE VIEW kataster.flur AS
SELECT b.land, b.gemarkungsnummer, b.flurnummer, g.bezeichnung AS gemarkung,
       'importiert'::text AS herkunft, b.geom
FROM kataster.bezirk b
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE b.art = 'flur' AND b.endet IS NULL
UNION ALL
SELECT f.land, f.gemarkungsnummer, f.flurnummer, g.bezeichnung,
       'abgeleitet'::text, ST_Multi(ST_Union(f.geom))::geometry(MultiPolygon, 25832)
FROM kataster.ax_flurstueck f
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE f.endet IS NULL AND f.geom IS NOT NULL AND ST_IsValid(f.geom)
  AND NOT EXISTS (SELECT 1 FROM kataster.bezirk b
                  WHERE b.art = 'flur' AND b.endet IS NULL AND b.land = f.land
                    AND b.gemarkungsnummer = f.gemarkungsnummer AND b.flurnummer = f.flurnummer)
GROUP BY f.land, f.gemarkungsnummer, f.flurnummer, g.bezeichnung;

CREATE MATERIALIZED VIEW kataster.flur_karte AS
SELECT row_number() OVER (ORDER BY land, gemarkungsnummer, flurnummer) AS id, *
FROM kataster.flur;
CREATE UNIQUE INDEX flur_karte_id_idx ON kataster.flur_karte (id);
CREATE INDEX flur_karte_geom_idx ON kataster.flur_karte USING gist (geom);

CREATE MATERIALIZED VIEW kataster.gemarkung_karte AS
SELECT row_number() OVER (ORDER BY land, gemarkungsnummer) AS id, *
FROM kataster.gemarkung;
CREATE UNIQUE INDEX gemarkung_karte_id_idx ON kataster.gemarkung_karte (id);
CREATE INDEX gemarkung_karte_geom_idx ON kataster.gemarkung_karte USING gist (geom);
