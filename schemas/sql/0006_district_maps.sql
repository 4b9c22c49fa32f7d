-- Kataster data model, revision 0006: district boundaries for the map services, materialised.
-- The views kataster.flur and kataster.gemarkung compute derived boundaries with ST_Union on
-- every query; maps and OGC API read these copies instead, refreshed by `kataster serve` at
-- start and after every committed import (pipeline.runs).
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
