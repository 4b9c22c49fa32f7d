-- Kataster data model, revision 0014: one key name in every public view, and the map's texts
-- and points (house numbers, street names, boundary points).
--
-- Every public view now starts with `id`, its unique key: the object's gml_id for ALKIS objects
-- (flurstueck, gebaeude, nutzung keep gml_id beside it), as flur, gemarkung and the findings
-- had since 0013. QGIS and GDAL take the first column as the key of a view.
--
-- The Liegenschaftskarte prints house numbers, street names and boundary points. They come from
-- the presentation objects (AP_PTO, "Präsentationsobjekt") and points of a NAS delivery where it
-- carries them, and are derived from the attributes otherwise (herkunft 'abgeleitet'): house
-- numbers in the middle of the building, street names in the middle of the parcels addressed to
-- the street in each Flur. They are materialised with spatial indexes like the district maps
-- (0006) and refreshed with them after every committed import.
DROP VIEW kataster.flurstueck;
DROP VIEW kataster.gebaeude;
DROP VIEW kataster.nutzung;

-- As in 0007, with the key first.
CREATE VIEW kataster.flurstueck AS
SELECT f.gml_id AS id, f.gml_id, f.flurstueckskennzeichen, f.land, f.gemarkungsnummer,
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

-- As in 0002, with the key first.
CREATE VIEW kataster.gebaeude AS
SELECT gml_id AS id, gml_id, gebaeudefunktion, bezeichnung, lage, land, gemarkungsnummer,
       beginnt, ST_Area(geom) AS geometrie_flaeche, geom
FROM kataster.ax_gebaeude
WHERE endet IS NULL;

-- As in 0005, with the key first.
CREATE VIEW kataster.nutzung AS
SELECT gml_id AS id, gml_id, objektart, substr(objektart, 4) AS nutzungsart, beginnt,
       ST_Area(geom) AS geometrie_flaeche, geom
FROM kataster.ax_nutzung
WHERE endet IS NULL;

-- As in 0002/0004, with the key first like the view.
DROP FUNCTION kataster.flurstueck_am(timestamptz);
CREATE FUNCTION kataster.flurstueck_am(zeitpunkt timestamptz)
RETURNS TABLE (
    id text, gml_id text, flurstueckskennzeichen text, land text, gemarkungsnummer text,
    gemarkung text, flurnummer integer, zaehler integer, nenner text,
    amtliche_flaeche double precision, geometrie_flaeche double precision, lage text,
    gemeinde text, beginnt timestamptz, endet timestamptz, geom geometry(MultiPolygon, 25832)
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT f.gml_id, f.gml_id, f.flurstueckskennzeichen, f.land, f.gemarkungsnummer,
           coalesce(f.gemarkung_name, g.bezeichnung), f.flurnummer, f.zaehler, f.nenner,
           f.amtliche_flaeche, ST_Area(f.geom), f.lage,
           coalesce(f.gemeinde_name, m.bezeichnung), f.beginnt, f.endet, f.geom
    FROM kataster.ax_flurstueck f
    LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
    LEFT JOIN kataster.gemeinde_name m ON m.schluessel = f.gemeindekennzeichen
    WHERE f.beginnt <= zeitpunkt AND (f.endet IS NULL OR f.endet > zeitpunkt)
$$;

-- House numbers: the AP_PTO of art HNR where the delivery has one for the address, otherwise
-- the number of the building's Lagebezeichnung (NAS: zeigtAuf) or of its address text
-- (simplified sources), in the middle of the building.
CREATE MATERIALIZED VIEW kataster.hausnummer AS
WITH pto AS (
    SELECT gml_id, attrs->>'schriftinhalt' AS text, attrs->>'dientZurDarstellungVon' AS ref, geom
    FROM kataster.ax_objekt
    WHERE objektart = 'AP_PTO' AND endet IS NULL AND attrs->>'art' = 'HNR'
      AND GeometryType(geom) = 'POINT'),
refs AS (
    SELECT g.gml_id, r.ref
    FROM kataster.ax_gebaeude g,
         jsonb_array_elements_text(CASE jsonb_typeof(g.attrs->'zeigtAuf')
                                   WHEN 'array' THEN g.attrs->'zeigtAuf'
                                   WHEN 'string' THEN jsonb_build_array(g.attrs->'zeigtAuf')
                                   ELSE '[]'::jsonb END) AS r(ref)
    WHERE g.endet IS NULL),
nummern AS (
    SELECT r.gml_id, string_agg(DISTINCT l.hausnummer, ', ') AS hausnummer,
           bool_or(p.ref IS NOT NULL) AS mit_pto
    FROM refs r
    JOIN kataster.ax_lagebezeichnung l
      ON l.endet IS NULL AND l.gml_id = regexp_replace(r.ref, '^(urn:adv:oid:|#)', '')
    LEFT JOIN (SELECT DISTINCT ref FROM pto) p ON p.ref = r.ref
    WHERE l.hausnummer IS NOT NULL
    GROUP BY r.gml_id)
SELECT pto.gml_id AS id, coalesce(nullif(pto.text, ''), l.hausnummer) AS hausnummer,
       'Präsentationsobjekt'::text AS herkunft, pto.geom::geometry(Point, 25832) AS geom
FROM pto
LEFT JOIN kataster.ax_lagebezeichnung l
  ON l.endet IS NULL AND l.gml_id = regexp_replace(pto.ref, '^(urn:adv:oid:|#)', '')
WHERE coalesce(nullif(pto.text, ''), l.hausnummer) IS NOT NULL
UNION ALL
SELECT g.gml_id, coalesce(n.hausnummer, substring(g.lage FROM '(\d+ ?[a-zA-Z]?)$')),
       'abgeleitet', ST_PointOnSurface(g.geom)::geometry(Point, 25832)
FROM kataster.ax_gebaeude g
LEFT JOIN nummern n ON n.gml_id = g.gml_id
WHERE g.endet IS NULL AND g.geom IS NOT NULL AND NOT coalesce(n.mit_pto, false)
  AND coalesce(n.hausnummer, substring(g.lage FROM '(\d+ ?[a-zA-Z]?)$')) IS NOT NULL;
CREATE UNIQUE INDEX hausnummer_id_idx ON kataster.hausnummer (id);
CREATE INDEX hausnummer_geom_idx ON kataster.hausnummer USING gist (geom);

-- Street names: one per street and Flur, in the middle of the parcels whose address (lage, one
-- or more "Straße Nummer" joined by ", ") names the street.
CREATE MATERIALIZED VIEW kataster.strassenname AS
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
CREATE UNIQUE INDEX strassenname_id_idx ON kataster.strassenname (id);
CREATE INDEX strassenname_geom_idx ON kataster.strassenname USING gist (geom);

-- Boundary points: AX_Grenzpunkt at the position of its Punktort (AX_PunktortTA, which names
-- the point it is part of); abgemarkt unless the mark is 9500 "ohne Marke" (or missing).
CREATE MATERIALIZED VIEW kataster.grenzpunkt AS
SELECT g.gml_id AS id, g.attrs->>'punktkennung' AS punktkennung,
       g.attrs->>'abmarkung_Marke' AS abmarkung_marke,
       coalesce(g.attrs->>'abmarkung_Marke', '9500') <> '9500' AS abgemarkt,
       p.geom::geometry(Point, 25832) AS geom
FROM kataster.ax_objekt g
JOIN LATERAL (SELECT o.geom FROM kataster.ax_objekt o
              WHERE o.objektart = 'AX_PunktortTA' AND o.endet IS NULL
                AND regexp_replace(o.attrs->>'istTeilVon', '^(urn:adv:oid:|#)', '') = g.gml_id
                AND GeometryType(o.geom) = 'POINT'
              ORDER BY o.gml_id LIMIT 1) p ON true
WHERE g.objektart = 'AX_Grenzpunkt' AND g.endet IS NULL;
CREATE UNIQUE INDEX grenzpunkt_id_idx ON kataster.grenzpunkt (id);
CREATE INDEX grenzpunkt_geom_idx ON kataster.grenzpunkt USING gist (geom);
-- The Punktort of a point, found by the point's id (the refresh joins them).
CREATE INDEX ax_objekt_punktort_idx ON kataster.ax_objekt
    (regexp_replace(attrs->>'istTeilVon', '^(urn:adv:oid:|#)', ''))
    WHERE objektart = 'AX_PunktortTA' AND endet IS NULL;

-- The public views only read.
CREATE TRIGGER nur_lesen INSTEAD OF INSERT OR UPDATE OR DELETE ON kataster.flurstueck
    FOR EACH ROW EXECUTE FUNCTION kataster.nur_lesen();
CREATE TRIGGER nur_lesen INSTEAD OF INSERT OR UPDATE OR DELETE ON kataster.gebaeude
    FOR EACH ROW EXECUTE FUNCTION kataster.nur_lesen();
CREATE TRIGGER nur_lesen INSTEAD OF INSERT OR UPDATE OR DELETE ON kataster.nutzung
    FOR EACH ROW EXECUTE FUNCTION kataster.nur_lesen();

-- Recreated views lose their grants: give back what roles.sql gives.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_leser') THEN
        GRANT SELECT ON kataster.flurstueck, kataster.gebaeude, kataster.nutzung,
                        kataster.hausnummer, kataster.strassenname, kataster.grenzpunkt
            TO kataster_leser;
        GRANT EXECUTE ON FUNCTION kataster.flurstueck_am(timestamptz) TO kataster_leser;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_admin') THEN
        GRANT SELECT ON kataster.flurstueck, kataster.gebaeude, kataster.nutzung,
                        kataster.hausnummer, kataster.strassenname, kataster.grenzpunkt
            TO kataster_admin;
    END IF;
END $$;
