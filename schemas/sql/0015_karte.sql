-- Kataster data model, revision 0015: the catalogue of scanned maps (Flurkarten, Urkarten,
-- Rahmenkarten) georeferenced into Cloud-Optimized GeoTIFFs, with history like every object.
-- One row per version of a sheet: a new georeferencing of the same sheet closes the old one.

CREATE TABLE kataster.karte (
    gml_id                  text NOT NULL,          -- the sheet's id (--blatt, else from the scan)
    beginnt                 timestamptz NOT NULL,
    endet                   timestamptz,
    closed_run_id           bigint,
    titel                   text,
    kartenart               text,                   -- Flurkarte, Urkarte, Rahmenkarte, ...
    massstab                integer,                -- 1000 for 1:1.000
    jahr                    integer,
    gemarkung_kennzeichen   text,                   -- land + Gemarkungsnummer (6 digits)
    flurnummer              integer,
    quelle                  text,                   -- licence and source note
    datei                   text NOT NULL,          -- the scan's file name
    sha256                  text NOT NULL,          -- of the scan
    gcp_datei               text,                   -- the ground control points' file name
    transformation          text NOT NULL,          -- polynomial1..3, tps, georeferenziert
    gcp_anzahl              integer,
    rms_m                   double precision,       -- RMS of the GCP residuals in metres
    residuen                jsonb,                  -- per GCP: id, dx, dy, residual (m)
    pfad                    text NOT NULL,          -- the COG, relative to karten.dir
    breite                  integer,                -- the COG in pixels
    hoehe                   integer,
    aufloesung_m            double precision,       -- metres per pixel
    attrs                   jsonb NOT NULL DEFAULT '{}',
    geom                    geometry(MultiPolygon, 25832),   -- footprint: the map's valid area
    content_hash            text NOT NULL,
    source                  text NOT NULL,
    run_id                  bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);
CREATE INDEX karte_geom_idx ON kataster.karte USING gist (geom);
CREATE UNIQUE INDEX karte_open_idx ON kataster.karte (gml_id) WHERE endet IS NULL;

-- The public catalogue: the current version of every sheet.
CREATE VIEW kataster.historische_karte AS
SELECT gml_id AS id, titel, kartenart, massstab, jahr, gemarkung_kennzeichen, flurnummer,
       quelle, datei, transformation, gcp_anzahl, rms_m, pfad, breite, hoehe, aufloesung_m,
       beginnt, run_id, geom
FROM kataster.karte
WHERE endet IS NULL;

CREATE TRIGGER nur_lesen INSTEAD OF INSERT OR UPDATE OR DELETE ON kataster.historische_karte
    FOR EACH ROW EXECUTE FUNCTION kataster.nur_lesen();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_leser') THEN
        GRANT SELECT ON kataster.historische_karte TO kataster_leser;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kataster_admin') THEN
        GRANT SELECT ON kataster.karte, kataster.historische_karte TO kataster_admin;
    END IF;
END $$;
