-- Kataster data model, revision 0024: the Flur map is drawn from pieces. A run redrew each Flur
-- it touched as the union of all its parcels (2.0 s of a 100-parcel update on 100,000 parcels,
-- where a Flur has 300 parcels; ten times that where a Flur has 3,000). The parcels of a Flur
-- are now grouped into pieces by a 200 m grid cell (kataster.zelle: the cell of the centre of
-- a parcel's bounding box), each piece the union of its parcels, kept in kataster.flur_stueck;
-- a Flur's map is the union of its pieces, and a run recomputes only the pieces its parcels
-- lie in (before and after), then the maps of their Fluren from the pieces.
-- kataster.flur_stueck_quelle defines the pieces; kataster.flur now reads the kept pieces
-- (tests hold the two equal after every run).

CREATE FUNCTION kataster.zelle(g geometry) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN floor((ST_XMin(Box2D(g)) + ST_XMax(Box2D(g))) / 400)::bigint * 1000000
       + floor((ST_YMin(Box2D(g)) + ST_YMax(Box2D(g))) / 400)::bigint;

CREATE VIEW kataster.flur_stueck_quelle AS
SELECT f.land || f.gemarkungsnummer || lpad(f.flurnummer::text, 3, '0') AS id,
       kataster.zelle(f.geom) AS zelle, f.land, f.gemarkungsnummer, f.flurnummer,
       ST_Multi(ST_Union(f.geom) FILTER (WHERE ST_IsValid(f.geom)))::geometry(MultiPolygon, 25832)
           AS geom
FROM kataster.ax_flurstueck f
WHERE f.endet IS NULL AND f.geom IS NOT NULL
GROUP BY f.land, f.gemarkungsnummer, f.flurnummer, kataster.zelle(f.geom);

CREATE TABLE kataster.flur_stueck AS SELECT * FROM kataster.flur_stueck_quelle;
CREATE INDEX flur_stueck_id_idx ON kataster.flur_stueck (id, zelle);
-- Statistics now: the first run's plans read them.
ANALYZE kataster.flur_stueck;
REVOKE ALL ON kataster.flur_stueck, kataster.flur_stueck_quelle FROM PUBLIC;

-- A run's pieces: the parcels of a Flur in a cell, through one index (its first column also
-- serves the street names of a Flur, 0021).
DROP INDEX kataster.ax_flurstueck_flur_idx;
CREATE INDEX ax_flurstueck_flur_idx ON kataster.ax_flurstueck
    ((land || gemarkungsnummer || lpad(flurnummer::text, 3, '0')), kataster.zelle(geom))
    WHERE endet IS NULL;

-- As in 0013, the derived Fluren from the pieces. The pieces of a Flur with imported
-- boundaries are kept too (they cost little and spare a case) but not drawn.
CREATE OR REPLACE VIEW kataster.flur AS
SELECT b.land || b.gemarkungsnummer || lpad(b.flurnummer::text, 3, '0') AS id,
       b.land, b.gemarkungsnummer, b.flurnummer, g.bezeichnung AS gemarkung,
       'importiert'::text AS herkunft, b.geom
FROM kataster.bezirk b
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE b.art = 'flur' AND b.endet IS NULL
UNION ALL
SELECT s.id, s.land, s.gemarkungsnummer, s.flurnummer, g.bezeichnung, 'abgeleitet'::text,
       ST_Multi(ST_Union(s.geom))::geometry(MultiPolygon, 25832)
FROM kataster.flur_stueck s
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE NOT EXISTS (SELECT 1 FROM kataster.bezirk b
                  WHERE b.art = 'flur' AND b.endet IS NULL AND b.land = s.land
                    AND b.gemarkungsnummer = s.gemarkungsnummer AND b.flurnummer = s.flurnummer)
GROUP BY s.id, s.land, s.gemarkungsnummer, s.flurnummer, g.bezeichnung;
