-- Kataster data model, revision 0027: the Gemarkung map follows the change, like the Flur map in
-- 0020. kataster.gemarkung_karte was a materialised view of kataster.gemarkung, refreshed after
-- every import by a union of every Flur map (0.39 s of a 100-parcel update on 1,000,000
-- parcels, growing with the city). It is now a table of the same columns and rows that a run
-- updates for the Gemarkungen of the Fluren it touched (pipeline.views.refresh_derived) and
-- refills whole where the Flur map is refilled whole. kataster.gemarkung stays the definition
-- of its rows; the derived ones are computed by GEOS's coverage union of the Flur maps.
DROP MATERIALIZED VIEW kataster.gemarkung_karte;

CREATE TABLE kataster.gemarkung_karte AS SELECT * FROM kataster.gemarkung;
-- Unique, but not a primary key: parcels without a Gemarkung form one row without an id.
CREATE UNIQUE INDEX gemarkung_karte_id_idx ON kataster.gemarkung_karte (id);
CREATE INDEX gemarkung_karte_geom_idx ON kataster.gemarkung_karte USING gist (geom);
-- Read-only for everyone but its owner, like the view it replaces.
REVOKE ALL ON kataster.gemarkung_karte FROM PUBLIC;
