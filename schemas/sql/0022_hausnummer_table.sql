-- Kataster data model, revision 0022: the house numbers follow the change. kataster.hausnummer
-- was a materialised view refreshed after every import (0.45 s on 20,000 parcels, growing with
-- the city). It is now a table of the same columns and rows that a run updates for the
-- presentation objects and buildings whose number its delivery can have changed
-- (pipeline.views.refresh_derived), refilled whole where a change is large or can reach
-- everything; kataster.hausnummer_quelle, the view of 0014's definition, stays the definition
-- of its rows.
CREATE VIEW kataster.hausnummer_quelle AS
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

DROP MATERIALIZED VIEW kataster.hausnummer;
CREATE TABLE kataster.hausnummer AS SELECT * FROM kataster.hausnummer_quelle;
CREATE UNIQUE INDEX hausnummer_id_idx ON kataster.hausnummer (id);
CREATE INDEX hausnummer_geom_idx ON kataster.hausnummer USING gist (geom);
-- Read-only for everyone but its owner, like the view it replaces.
REVOKE ALL ON kataster.hausnummer, kataster.hausnummer_quelle FROM PUBLIC;

-- The references of a jsonb property that holds one reference or a list of them, as written.
CREATE FUNCTION kataster.verweise(v jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(r), '{}')
    FROM jsonb_array_elements_text(CASE jsonb_typeof(v) WHEN 'array' THEN v
                                   WHEN 'string' THEN jsonb_build_array(v)
                                   ELSE '[]'::jsonb END) AS t(r)
$$;
-- The look-ups of a run's update, from an address to what shows its number: the buildings
-- that name it, the presentation objects that show it.
CREATE INDEX ax_gebaeude_zeigt_auf_idx ON kataster.ax_gebaeude
    USING gin (kataster.verweise(attrs->'zeigtAuf')) WHERE endet IS NULL;
CREATE INDEX ax_objekt_pto_ref_idx ON kataster.ax_objekt ((attrs->>'dientZurDarstellungVon'))
    WHERE objektart = 'AP_PTO' AND endet IS NULL;

-- A recreated relation loses its grants: give back what roles.sql gives.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_leser') THEN
        GRANT SELECT ON kataster.hausnummer TO kataster_leser;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_admin') THEN
        GRANT SELECT ON kataster.hausnummer TO kataster_admin;
    END IF;
END $$;
