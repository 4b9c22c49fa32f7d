-- Kataster data model, revision 0013: public views that QGIS and other clients take as they are.
--
-- QGIS needs a unique key for a view and offers the view's first column as the default: for
-- kataster.flur and kataster.gemarkung that was `land` ("not unique"), and kataster.befund mixes
-- points and polygons ("Invalid PostgreSQL layer"). Now the first column of every public view is
-- its unique key: `gml_id` where the rows are ALKIS objects (flurstueck, gebaeude, nutzung), `id`
-- elsewhere: the Flurkennzeichen (land, Gemarkung, Flur: 053096012) for flur, the
-- Gemarkungskennzeichen (053096) for gemarkung, the finding's number for befund. The district
-- maps take the same stable ids (they numbered rows per refresh). Findings come also as one view
-- per geometry type with a typed geometry column: befund_punkt, befund_flaeche.
DROP MATERIALIZED VIEW kataster.gemarkung_karte;
DROP VIEW kataster.gemarkung;
DROP MATERIALIZED VIEW kataster.flur_karte;
DROP VIEW kataster.flur;

-- As in 0007, with the key first.
CREATE VIEW kataster.flur AS
SELECT b.land || b.gemarkungsnummer || lpad(b.flurnummer::text, 3, '0') AS id,
       b.land, b.gemarkungsnummer, b.flurnummer, g.bezeichnung AS gemarkung,
       'importiert'::text AS herkunft, b.geom
FROM kataster.bezirk b
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE b.art = 'flur' AND b.endet IS NULL
UNION ALL
SELECT f.land || f.gemarkungsnummer || lpad(f.flurnummer::text, 3, '0'),
       f.land, f.gemarkungsnummer, f.flurnummer, g.bezeichnung,
       'abgeleitet'::text,
       ST_Multi(ST_Union(f.geom) FILTER (WHERE ST_IsValid(f.geom)))::geometry(MultiPolygon, 25832)
FROM kataster.ax_flurstueck f
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE f.endet IS NULL AND f.geom IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM kataster.bezirk b
                  WHERE b.art = 'flur' AND b.endet IS NULL AND b.land = f.land
                    AND b.gemarkungsnummer = f.gemarkungsnummer AND b.flurnummer = f.flurnummer)
GROUP BY f.land, f.gemarkungsnummer, f.flurnummer, g.bezeichnung;

CREATE MATERIALIZED VIEW kataster.flur_karte AS SELECT * FROM kataster.flur;
CREATE UNIQUE INDEX flur_karte_id_idx ON kataster.flur_karte (id);
CREATE INDEX flur_karte_geom_idx ON kataster.flur_karte USING gist (geom);

-- As in 0008, with the key first.
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

-- Findings by geometry type (a finding without a place is in kataster.befund only). The cast is
-- guarded: a filter on the view's geometry may be evaluated before the view's WHERE.
CREATE VIEW kataster.befund_punkt AS
SELECT id, rule, severity, status, object_id, related, message, first_run_id, run_id,
       status_by, status_at, status_reason,
       (CASE WHEN GeometryType(geom) = 'POINT' THEN geom END)::geometry(Point, 25832) AS geom
FROM kataster.finding
WHERE GeometryType(geom) = 'POINT';

CREATE VIEW kataster.befund_flaeche AS
SELECT id, rule, severity, status, object_id, related, message, first_run_id, run_id,
       status_by, status_at, status_reason,
       (CASE WHEN GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON') THEN ST_Multi(geom) END
       )::geometry(MultiPolygon, 25832) AS geom
FROM kataster.finding
WHERE GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON');

-- A view on one table is updatable by default; the public views only read.
CREATE TRIGGER nur_lesen INSTEAD OF INSERT OR UPDATE OR DELETE ON kataster.befund_punkt
    FOR EACH ROW EXECUTE FUNCTION kataster.nur_lesen();
CREATE TRIGGER nur_lesen INSTEAD OF INSERT OR UPDATE OR DELETE ON kataster.befund_flaeche
    FOR EACH ROW EXECUTE FUNCTION kataster.nur_lesen();

-- Recreated views lose their grants: give back what roles.sql gives (roles.sql, run by
-- `kataster db up` and `kataster sql roles`, grants the same).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_leser') THEN
        GRANT SELECT ON kataster.flur, kataster.gemarkung, kataster.flur_karte,
                        kataster.gemarkung_karte, kataster.befund_punkt, kataster.befund_flaeche
            TO kataster_leser;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_admin') THEN
        GRANT SELECT ON kataster.flur, kataster.gemarkung, kataster.flur_karte,
                        kataster.gemarkung_karte, kataster.befund_punkt, kataster.befund_flaeche
            TO kataster_admin;
    END IF;
END $$;
