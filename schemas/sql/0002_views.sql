-- Kataster data model, revision 0002: the stable public views for departments.
-- Every column is documented in DESIGN.md ("Public views"). Views only read; they never
-- change what was delivered.

-- Gemarkung names: imported AX_Gemarkung first, the shipped NRW catalogue second.
CREATE VIEW kataster.gemarkung_name AS
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

-- Gemeinde names from imported AX_Gemeinde (key = land + regierungsbezirk + kreis + gemeinde).
CREATE VIEW kataster.gemeinde_name AS
SELECT DISTINCT ON (schluessel) schluessel, bezeichnung
FROM kataster.ax_katalog
WHERE objektart = 'AX_Gemeinde' AND endet IS NULL
ORDER BY schluessel, beginnt DESC;

-- Parcels as they were at a point in time (all versions whose lifetime covers it).
CREATE FUNCTION kataster.flurstueck_am(zeitpunkt timestamptz)
RETURNS TABLE (
    gml_id text, flurstueckskennzeichen text, land text, gemarkungsnummer text, gemarkung text,
    flurnummer integer, zaehler integer, nenner text, amtliche_flaeche double precision,
    geometrie_flaeche double precision, lage text, gemeinde text, beginnt timestamptz,
    endet timestamptz, geom geometry(MultiPolygon, 25832)
)
LANGUAGE sql STABLE AS $$
    SELECT f.gml_id, f.flurstueckskennzeichen, f.land, f.gemarkungsnummer,
           coalesce(f.gemarkung_name, g.bezeichnung), f.flurnummer, f.zaehler, f.nenner,
           f.amtliche_flaeche, ST_Area(f.geom), f.lage,
           coalesce(f.gemeinde_name, m.bezeichnung), f.beginnt, f.endet, f.geom
    FROM kataster.ax_flurstueck f
    LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
    LEFT JOIN kataster.gemeinde_name m ON m.schluessel = f.gemeindekennzeichen
    WHERE f.beginnt <= zeitpunkt AND (f.endet IS NULL OR f.endet > zeitpunkt)
$$;

CREATE VIEW kataster.flurstueck AS
SELECT f.gml_id, f.flurstueckskennzeichen, f.land, f.gemarkungsnummer,
       coalesce(f.gemarkung_name, g.bezeichnung) AS gemarkung,
       f.flurnummer, f.zaehler, f.nenner, f.amtliche_flaeche,
       ST_Area(f.geom) AS geometrie_flaeche,
       f.lage, coalesce(f.gemeinde_name, m.bezeichnung) AS gemeinde, f.beginnt, f.geom
FROM kataster.ax_flurstueck f
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
LEFT JOIN kataster.gemeinde_name m ON m.schluessel = f.gemeindekennzeichen
WHERE f.endet IS NULL;

CREATE VIEW kataster.gebaeude AS
SELECT gml_id, gebaeudefunktion, bezeichnung, lage, land, gemarkungsnummer, beginnt,
       ST_Area(geom) AS geometrie_flaeche, geom
FROM kataster.ax_gebaeude
WHERE endet IS NULL;

-- Flur boundaries: imported where present, otherwise the union of the Flur's current parcels.
CREATE VIEW kataster.flur AS
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
WHERE f.endet IS NULL
  AND NOT EXISTS (SELECT 1 FROM kataster.bezirk b
                  WHERE b.art = 'flur' AND b.endet IS NULL AND b.land = f.land
                    AND b.gemarkungsnummer = f.gemarkungsnummer AND b.flurnummer = f.flurnummer)
GROUP BY f.land, f.gemarkungsnummer, f.flurnummer, g.bezeichnung;

-- Gemarkung boundaries: imported where present, otherwise the union of its Fluren.
CREATE VIEW kataster.gemarkung AS
SELECT b.land, b.gemarkungsnummer, coalesce(b.bezeichnung, g.bezeichnung) AS gemarkung,
       'importiert'::text AS herkunft, b.geom
FROM kataster.bezirk b
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE b.art = 'gemarkung' AND b.endet IS NULL
UNION ALL
SELECT f.land, f.gemarkungsnummer, min(f.gemarkung), 'abgeleitet'::text,
       ST_Multi(ST_Union(f.geom))::geometry(MultiPolygon, 25832)
FROM kataster.flur f
WHERE NOT EXISTS (SELECT 1 FROM kataster.bezirk b
                  WHERE b.art = 'gemarkung' AND b.endet IS NULL AND b.land = f.land
                    AND b.gemarkungsnummer = f.gemarkungsnummer)
GROUP BY f.land, f.gemarkungsnummer;

-- Public findings (owner-related findings live in kataster_privat.finding).
CREATE VIEW kataster.befund AS
SELECT id, rule, severity, status, object_id, related, message, first_run_id, run_id,
       status_by, status_at, status_reason, geom
FROM kataster.finding;

-- Owners of current parcels: one row per parcel and owner. Shares are reduced fractions.
CREATE VIEW kataster_privat.eigentum AS
SELECT e.flurstueckskennzeichen, e.buchungsblatt, e.buchungsart, e.person_gml_id,
       p.nachname_oder_firma AS name, p.vorname,
       CASE WHEN e.anteil_nenner IS NULL THEN NULL
            ELSE e.anteil_zaehler / gcd(e.anteil_zaehler, e.anteil_nenner) END AS anteil_zaehler,
       CASE WHEN e.anteil_nenner IS NULL THEN NULL
            ELSE e.anteil_nenner / gcd(e.anteil_zaehler, e.anteil_nenner) END AS anteil_nenner,
       e.rechtsgemeinschaft
FROM kataster_privat.eigentum_aufgeloest e
JOIN kataster.ax_flurstueck f ON f.gml_id = e.flurstueck_gml_id AND f.endet IS NULL
LEFT JOIN kataster_privat.ax_person p ON p.gml_id = e.person_gml_id AND p.endet IS NULL;
