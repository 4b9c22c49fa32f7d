-- Kataster data model, revision 0025: the street names follow the streets a run touched. A run
-- recomputed the street names (0021) of every Flur whose parcels it touched, reading every
-- address of those Fluren (0.33 s of a 100-parcel update on 100,000 parcels, where a Flur has
-- 300 parcels; ten times that at a million). kataster.strassen gives the street of each part
-- of a parcel's address text, as kataster.strassenname_quelle has always cut it;
-- kataster.strassen_ids the ids of the street-name rows a parcel counts in (Flurkennzeichen:
-- Straße). Indexed, they lead a run from the rows it touched (the streets of its parcels
-- before and after, and of the parcels whose address text it changed) to the parcels on
-- those streets in those Fluren (a long street has thousands of parcels in the city).

CREATE FUNCTION kataster.strassen(lage text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY(SELECT btrim(regexp_replace(t.teil, '\s+\d+\s*[a-zA-Z]?(\s*-\s*\d+\s*[a-zA-Z]?)?$',
                                         ''))
              FROM unnest(string_to_array(lage, ', ')) AS t(teil));

-- As in 0021, with the streets from kataster.strassen.
CREATE OR REPLACE VIEW kataster.strassenname_quelle AS
WITH adressen AS (
    SELECT f.land, f.gemarkungsnummer, f.flurnummer, s.strasse,
           ST_PointOnSurface(f.geom) AS punkt
    FROM kataster.ax_flurstueck f,
         unnest(kataster.strassen(f.lage)) AS s(strasse)
    WHERE f.endet IS NULL AND f.geom IS NOT NULL AND f.lage IS NOT NULL)
SELECT land || gemarkungsnummer || lpad(flurnummer::text, 3, '0') || ':' || strasse AS id,
       strasse, land, gemarkungsnummer, flurnummer, count(*)::integer AS adressen,
       'abgeleitet'::text AS herkunft,
       ST_Centroid(ST_Collect(punkt))::geometry(Point, 25832) AS geom
FROM adressen
WHERE strasse <> '' AND flurnummer IS NOT NULL
GROUP BY land, gemarkungsnummer, flurnummer, strasse;

CREATE FUNCTION kataster.strassen_ids(flur text, lage text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY(SELECT flur || ':' || s.strasse FROM unnest(kataster.strassen(lage)) AS s(strasse)
             WHERE s.strasse <> '');

CREATE INDEX ax_flurstueck_strassen_idx ON kataster.ax_flurstueck
    USING gin (kataster.strassen_ids(land || gemarkungsnummer || lpad(flurnummer::text, 3, '0'),
                                     lage))
    WHERE endet IS NULL;
