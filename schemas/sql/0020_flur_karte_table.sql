-- Kataster data model, revision 0020: the Flur map follows the change. kataster.flur_karte was a
-- materialised view of kataster.flur, refreshed after every import by a union of every parcel
-- of every Flur (3.8 s of a 100-parcel update on 20,000 parcels, growing with the city). It is
-- now a table of the same columns and rows that a run updates for the Fluren whose parcels it
-- delivered or ended (pipeline.views.refresh_derived), and refills whole where a change can
-- reach every Flur (imported district boundaries or names, flat deliveries, runs without
-- history, repairs). kataster.flur stays the definition of its rows.
DROP MATERIALIZED VIEW kataster.gemarkung_karte;
DROP VIEW kataster.gemarkung;
DROP MATERIALIZED VIEW kataster.flur_karte;

CREATE TABLE kataster.flur_karte AS SELECT * FROM kataster.flur;
-- Unique, but not a primary key: parcels without a complete Flurkennzeichen form one row
-- without an id, as in the view.
CREATE UNIQUE INDEX flur_karte_id_idx ON kataster.flur_karte (id);
CREATE INDEX flur_karte_geom_idx ON kataster.flur_karte USING gist (geom);
CREATE INDEX flur_karte_gemarkung_idx ON kataster.flur_karte (land, gemarkungsnummer);
-- Read-only for everyone but its owner, like the views it replaces.
REVOKE ALL ON kataster.flur_karte FROM PUBLIC;

-- The Flurkennzeichen of a parcel, as kataster.flur's id, through an index: a run's update of
-- the Flur map reads the parcels of the Fluren it touched.
CREATE INDEX ax_flurstueck_flur_idx ON kataster.ax_flurstueck
    ((land || gemarkungsnummer || lpad(flurnummer::text, 3, '0'))) WHERE endet IS NULL;

-- As in 0013.
CREATE VIEW kataster.gemarkung AS
SELECT b.land || b.gemarkungsnummer AS id, b.land, b.gemarkungsnummer,
       coalesce(b.bezeichnung, g.bezeichnung) AS gemarkung, 'importiert'::text AS herkunft, b.geom
FROM kataster.bezirk b
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE b.art = 'gemarkung' AND b.endet IS NULL
UNION ALL
SELECT f.land || f.gemarkungsnummer, f.land, f.gemarkungsnummer, min(f.gemarkung),
       'abgeleitet'::text, ST_Multi(ST_Union(f.geom))::geometry(MultiPolygon, 25832)
FROM kataster.flur_karte f
WHERE NOT EXISTS (SELECT 1 FROM kataster.bezirk b
                  WHERE b.art = 'gemarkung' AND b.endet IS NULL AND b.land = f.land
                    AND b.gemarkungsnummer = f.gemarkungsnummer)
GROUP BY f.land, f.gemarkungsnummer;

CREATE MATERIALIZED VIEW kataster.gemarkung_karte AS SELECT * FROM kataster.gemarkung;
CREATE UNIQUE INDEX gemarkung_karte_id_idx ON kataster.gemarkung_karte (id);
CREATE INDEX gemarkung_karte_geom_idx ON kataster.gemarkung_karte USING gist (geom);
