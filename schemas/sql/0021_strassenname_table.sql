-- Kataster data model, revision 0021: the street names follow the change. kataster.strassenname
-- was a materialised view refreshed after every import (0.3 s on 20,000 parcels, growing with
-- the city). It is now a table of the same columns and rows that a run updates for the Fluren
-- whose parcels it delivered, ended or gave another address text (pipeline.views.
-- refresh_derived), refilled whole where the Flur map is; kataster.strassenname_quelle, the
-- view of 0014's definition, stays the definition of its rows.
CREATE VIEW kataster.strassenname_quelle AS
WITH adressen AS (
    SELECT f.land, f.gemarkungsnummer, f.flurnummer,
           btrim(regexp_replace(a.teil, '\s+\d+\s*[a-zA-Z]?(\s*-\s*\d+\s*[a-zA-Z]?)?$', ''))
               AS strasse,
           ST_PointOnSurface(f.geom) AS punkt
    FROM kataster.ax_flurstueck f,
         unnest(string_to_array(f.lage, ', ')) AS a(teil)
    WHERE f.endet IS NULL AND f.geom IS NOT NULL AND f.lage IS NOT NULL)
SELECT land || gemarkungsnummer || lpad(flurnummer::text, 3, '0') || ':' || strasse AS id,
       strasse, land, gemarkungsnummer, flurnummer, count(*)::integer AS adressen,
       'abgeleitet'::text AS herkunft,
       ST_Centroid(ST_Collect(punkt))::geometry(Point, 25832) AS geom
FROM adressen
WHERE strasse <> '' AND flurnummer IS NOT NULL
GROUP BY land, gemarkungsnummer, flurnummer, strasse;

DROP MATERIALIZED VIEW kataster.strassenname;
CREATE TABLE kataster.strassenname AS SELECT * FROM kataster.strassenname_quelle;
CREATE UNIQUE INDEX strassenname_id_idx ON kataster.strassenname (id);
CREATE INDEX strassenname_geom_idx ON kataster.strassenname USING gist (geom);
-- A run deletes the rows of the Fluren it touched by their Flurkennzeichen.
CREATE INDEX strassenname_flur_idx ON kataster.strassenname
    ((land || gemarkungsnummer || lpad(flurnummer::text, 3, '0')));
-- Read-only for everyone but its owner, like the view it replaces.
REVOKE ALL ON kataster.strassenname, kataster.strassenname_quelle FROM PUBLIC;

-- A recreated relation loses its grants: give back what roles.sql gives.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_leser') THEN
        GRANT SELECT ON kataster.strassenname TO kataster_leser;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_admin') THEN
        GRANT SELECT ON kataster.strassenname TO kataster_admin;
    END IF;
END $$;
