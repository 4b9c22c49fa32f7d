-- Kataster data model, revision 0007: Gemarkung and Gemeinde names as indexed lookups.
-- The views gemarkung_name and gemeinde_name pick one name per key (imported AX_Gemarkung /
-- AX_Gemeinde first, the shipped NRW catalogue second) with DISTINCT ON over a UNION; joined
-- to parcels, PostgreSQL had to build and sort the whole name list on every query (3 ms per
-- map click). The lists are now materialised with a unique key, refreshed with the district
-- maps (after every committed import and at `kataster serve` start); the views keep their
-- names and columns and read the copies, so a bbox query joins by index, and a query that
-- does not use the name drops the join.
CREATE MATERIALIZED VIEW kataster.gemarkung_name_liste AS
SELECT DISTINCT ON (land, gemarkungsnummer) land, gemarkungsnummer, bezeichnung
FROM (
    SELECT substr(schluessel, 1, 2) AS land, substr(schluessel, 3) AS gemarkungsnummer,
           bezeichnung, 1 AS prio
    FROM kataster.ax_katalog
    WHERE objektart = 'AX_Gemarkung' AND endet IS NULL
    UNION ALL
    SELECT land, gemarkungsnummer, bezeichnung, 2 FROM kataster.gemarkung_katalog
) n
ORDER BY land, gemarkungsnummer, prio;
CREATE UNIQUE INDEX gemarkung_name_liste_key ON kataster.gemarkung_name_liste (land, gemarkungsnummer);

CREATE MATERIALIZED VIEW kataster.gemeinde_name_liste AS
SELECT DISTINCT ON (schluessel) schluessel, bezeichnung
FROM kataster.ax_katalog
WHERE objektart = 'AX_Gemeinde' AND endet IS NULL
ORDER BY schluessel, beginnt DESC;
CREATE UNIQUE INDEX gemeinde_name_liste_key ON kataster.gemeinde_name_liste (schluessel);

CREATE OR REPLACE VIEW kataster.gemarkung_name AS
SELECT land, gemarkungsnummer, bezeichnung FROM kataster.gemarkung_name_liste;

CREATE OR REPLACE VIEW kataster.gemeinde_name AS
SELECT schluessel, bezeichnung FROM kataster.gemeinde_name_liste;

-- Current parcels: the names come from scalar look-ups that PostgreSQL evaluates only for the
-- rows and columns a query asks for (and only where the delivery carried no name itself); a
-- map request then plans as cheaply as a query on the table. Same columns as in 0002.
CREATE OR REPLACE VIEW kataster.flurstueck AS
SELECT f.gml_id, f.flurstueckskennzeichen, f.land, f.gemarkungsnummer,
       coalesce(f.gemarkung_name,
                (SELECT g.bezeichnung FROM kataster.gemarkung_name_liste g
                 WHERE g.land = f.land AND g.gemarkungsnummer = f.gemarkungsnummer)) AS gemarkung,
       f.flurnummer, f.zaehler, f.nenner, f.amtliche_flaeche,
       ST_Area(f.geom) AS geometrie_flaeche,
       f.lage,
       coalesce(f.gemeinde_name,
                (SELECT m.bezeichnung FROM kataster.gemeinde_name_liste m
                 WHERE m.schluessel = f.gemeindekennzeichen)) AS gemeinde,
       f.beginnt, f.geom
FROM kataster.ax_flurstueck f
WHERE f.endet IS NULL;

-- Without joins the view would be automatically updatable; views only read.
CREATE FUNCTION kataster.nur_lesen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cannot change view %.%: the public views only read', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;
CREATE TRIGGER nur_lesen INSTEAD OF INSERT OR UPDATE OR DELETE ON kataster.flurstueck
    FOR EACH ROW EXECUTE FUNCTION kataster.nur_lesen();

-- Derived Flur boundaries: validity is tested only for the parcels of Fluren without imported
-- boundaries (inside the aggregate), not for every parcel before the anti-join (1M parcels:
-- 1.7 s per refresh of each district map). Same rows and columns as in 0006.
CREATE OR REPLACE VIEW kataster.flur AS
SELECT b.land, b.gemarkungsnummer, b.flurnummer, g.bezeichnung AS gemarkung,
       'importiert'::text AS herkunft, b.geom
FROM kataster.bezirk b
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE b.art = 'flur' AND b.endet IS NULL
UNION ALL
SELECT f.land, f.gemarkungsnummer, f.flurnummer, g.bezeichnung,
       'abgeleitet'::text,
       ST_Multi(ST_Union(f.geom) FILTER (WHERE ST_IsValid(f.geom)))::geometry(MultiPolygon, 25832)
FROM kataster.ax_flurstueck f
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE f.endet IS NULL AND f.geom IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM kataster.bezirk b
                  WHERE b.art = 'flur' AND b.endet IS NULL AND b.land = f.land
                    AND b.gemarkungsnummer = f.gemarkungsnummer AND b.flurnummer = f.flurnummer)
GROUP BY f.land, f.gemarkungsnummer, f.flurnummer, g.bezeichnung
HAVING bool_or(ST_IsValid(f.geom));
