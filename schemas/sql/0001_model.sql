-- Kataster data model, revision 0001: schemas, tables, indexes.
-- Public data lives in schema kataster, everything about owners and land-register bookings in
-- kataster_privat. Every ALKIS object keeps its identity and history: (gml_id, beginnt), endet.
-- Geometries are EPSG:25832. content_hash lets the merge recognise an unchanged re-delivery.

CREATE SCHEMA IF NOT EXISTS kataster;
CREATE SCHEMA IF NOT EXISTS kataster_privat;

-- Import runs and their source files -----------------------------------------------------------
CREATE TABLE kataster.import_run (
    id             bigserial PRIMARY KEY,
    started        timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished       timestamptz,
    os_user        text NOT NULL,
    db_user        text NOT NULL DEFAULT current_user,
    importer       text NOT NULL,
    options        jsonb NOT NULL DEFAULT '{}',
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'committed', 'skipped', 'failed', 'aborted')),
    counts         jsonb NOT NULL DEFAULT '{}',
    findings       jsonb NOT NULL DEFAULT '{}',
    transformation text,
    error          text
);

CREATE TABLE kataster.import_file (
    run_id  bigint NOT NULL REFERENCES kataster.import_run (id) ON DELETE CASCADE,
    path    text NOT NULL,
    size    bigint NOT NULL,
    sha256  text NOT NULL,
    status  text NOT NULL CHECK (status IN ('imported', 'skipped', 'failed')),
    PRIMARY KEY (run_id, path)
);
CREATE INDEX import_file_sha256_idx ON kataster.import_file (sha256);

-- Reference catalogue shipped with the project: NRW Gemarkungen and their Fluren ----------------
CREATE TABLE kataster.gemarkung_katalog (
    land             text NOT NULL,
    gemarkungsnummer text NOT NULL,
    bezeichnung      text NOT NULL,
    katasteramt      text NOT NULL,
    fluren           integer[] NOT NULL,
    PRIMARY KEY (land, gemarkungsnummer)
);

-- Public ALKIS objects --------------------------------------------------------------------------
CREATE TABLE kataster.ax_flurstueck (
    gml_id                   text NOT NULL,
    beginnt                  timestamptz NOT NULL,
    endet                    timestamptz,
    flurstueckskennzeichen   text NOT NULL,
    land                     text,
    gemarkungsnummer         text,
    flurnummer               integer,
    zaehler                  integer,
    nenner                   text,
    amtliche_flaeche         double precision,
    lage                     text,
    gemarkung_name           text,
    gemeinde_name            text,
    gemeindekennzeichen      text,
    ist_gebucht              text[],
    weist_auf                text[],
    zeigt_auf                text[],
    attrs                    jsonb NOT NULL DEFAULT '{}',
    geom                     geometry(MultiPolygon, 25832),
    content_hash             text NOT NULL,
    source                   text NOT NULL,
    run_id                   bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);
CREATE INDEX ax_flurstueck_geom_idx ON kataster.ax_flurstueck USING gist (geom);
CREATE INDEX ax_flurstueck_fsk_idx ON kataster.ax_flurstueck (flurstueckskennzeichen) WHERE endet IS NULL;
CREATE INDEX ax_flurstueck_district_idx ON kataster.ax_flurstueck (land, gemarkungsnummer, flurnummer) WHERE endet IS NULL;
CREATE UNIQUE INDEX ax_flurstueck_open_idx ON kataster.ax_flurstueck (gml_id) WHERE endet IS NULL;

CREATE TABLE kataster.ax_gebaeude (
    gml_id            text NOT NULL,
    beginnt           timestamptz NOT NULL,
    endet             timestamptz,
    gebaeudefunktion  integer,
    bezeichnung       text,
    lage              text,
    land              text,
    gemarkungsnummer  text,
    attrs             jsonb NOT NULL DEFAULT '{}',
    geom              geometry(MultiPolygon, 25832),
    content_hash      text NOT NULL,
    source            text NOT NULL,
    run_id            bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);
CREATE INDEX ax_gebaeude_geom_idx ON kataster.ax_gebaeude USING gist (geom);
CREATE UNIQUE INDEX ax_gebaeude_open_idx ON kataster.ax_gebaeude (gml_id) WHERE endet IS NULL;

CREATE TABLE kataster.ax_lagebezeichnung (
    gml_id            text NOT NULL,
    beginnt           timestamptz NOT NULL,
    endet             timestamptz,
    objektart         text NOT NULL,
    land              text,
    regierungsbezirk  text,
    kreis             text,
    gemeinde          text,
    lage              text,
    hausnummer        text,
    unverschluesselt  text,
    attrs             jsonb NOT NULL DEFAULT '{}',
    content_hash      text NOT NULL,
    source            text NOT NULL,
    run_id            bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);

-- Catalogues imported from NAS (Gemarkung, Gemeinde, Dienststelle).
CREATE TABLE kataster.ax_katalog (
    gml_id        text NOT NULL,
    beginnt       timestamptz NOT NULL,
    endet         timestamptz,
    objektart     text NOT NULL,
    schluessel    text NOT NULL,
    bezeichnung   text,
    attrs         jsonb NOT NULL DEFAULT '{}',
    content_hash  text NOT NULL,
    source        text NOT NULL,
    run_id        bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);
CREATE INDEX ax_katalog_key_idx ON kataster.ax_katalog (objektart, schluessel) WHERE endet IS NULL;

-- Imported district boundaries (ALKIS vereinfacht KatasterBezirk, NAS Gemarkungsteil/Flur).
CREATE TABLE kataster.bezirk (
    gml_id            text NOT NULL,
    beginnt           timestamptz NOT NULL,
    endet             timestamptz,
    art               text NOT NULL CHECK (art IN ('gemarkung', 'flur')),
    land              text NOT NULL,
    gemarkungsnummer  text NOT NULL,
    flurnummer        integer,
    bezeichnung       text,
    attrs             jsonb NOT NULL DEFAULT '{}',
    geom              geometry(MultiPolygon, 25832),
    content_hash      text NOT NULL,
    source            text NOT NULL,
    run_id            bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);
CREATE INDEX bezirk_geom_idx ON kataster.bezirk USING gist (geom);

-- Land use ("tatsächliche Nutzung").
CREATE TABLE kataster.ax_nutzung (
    gml_id        text NOT NULL,
    beginnt       timestamptz NOT NULL,
    endet         timestamptz,
    objektart     text NOT NULL,
    attrs         jsonb NOT NULL DEFAULT '{}',
    geom          geometry(MultiPolygon, 25832),
    content_hash  text NOT NULL,
    source        text NOT NULL,
    run_id        bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);
CREATE INDEX ax_nutzung_geom_idx ON kataster.ax_nutzung USING gist (geom);

-- Every other object type, so that nothing of a delivery is lost.
CREATE TABLE kataster.ax_objekt (
    gml_id        text NOT NULL,
    beginnt       timestamptz NOT NULL,
    endet         timestamptz,
    objektart     text NOT NULL,
    attrs         jsonb NOT NULL DEFAULT '{}',
    geom          geometry(Geometry, 25832),
    content_hash  text NOT NULL,
    source        text NOT NULL,
    run_id        bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);
CREATE INDEX ax_objekt_art_idx ON kataster.ax_objekt (objektart);

-- Findings (public). key = rule + object + location, stable across runs.
CREATE TABLE kataster.finding (
    id             bigserial PRIMARY KEY,
    key            text NOT NULL UNIQUE,
    rule           text NOT NULL,
    severity       text NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
    object_id      text,
    related        text[] NOT NULL DEFAULT '{}',
    message        text NOT NULL,
    geom           geometry(Geometry, 25832),
    first_run_id   bigint REFERENCES kataster.import_run (id),
    run_id         bigint REFERENCES kataster.import_run (id),
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'fixed')),
    status_by      text,
    status_at      timestamptz,
    status_reason  text
);
CREATE INDEX finding_geom_idx ON kataster.finding USING gist (geom);
CREATE INDEX finding_rule_idx ON kataster.finding (rule, status);

-- Owners and land-register bookings: personal data ----------------------------------------------
CREATE TABLE kataster_privat.ax_buchungsblatt (
    gml_id                    text NOT NULL,
    beginnt                   timestamptz NOT NULL,
    endet                     timestamptz,
    buchungsblattkennzeichen  text,
    land                      text,
    bezirk                    text,
    buchungsblattnummer       text,
    blattart                  integer,
    attrs                     jsonb NOT NULL DEFAULT '{}',
    content_hash              text NOT NULL,
    source                    text NOT NULL,
    run_id                    bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);

CREATE TABLE kataster_privat.ax_buchungsstelle (
    gml_id               text NOT NULL,
    beginnt              timestamptz NOT NULL,
    endet                timestamptz,
    buchungsart          integer,
    laufende_nummer      text,
    anteil_zaehler       numeric,
    anteil_nenner        numeric,
    ist_bestandteil_von  text,
    an                   text[],
    attrs                jsonb NOT NULL DEFAULT '{}',
    content_hash         text NOT NULL,
    source               text NOT NULL,
    run_id               bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);

CREATE TABLE kataster_privat.ax_namensnummer (
    gml_id                      text NOT NULL,
    beginnt                     timestamptz NOT NULL,
    endet                       timestamptz,
    laufende_nummer_din1421     text,
    anteil_zaehler              numeric,
    anteil_nenner               numeric,
    art_der_rechtsgemeinschaft  integer,
    eigentuemerart              integer,
    ist_bestandteil_von         text,
    benennt                     text,
    attrs                       jsonb NOT NULL DEFAULT '{}',
    content_hash                text NOT NULL,
    source                      text NOT NULL,
    run_id                      bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);

CREATE TABLE kataster_privat.ax_person (
    gml_id               text NOT NULL,
    beginnt              timestamptz NOT NULL,
    endet                timestamptz,
    nachname_oder_firma  text,
    vorname              text,
    geburtsname          text,
    geburtsdatum         date,
    anrede               integer,
    akademischer_grad    text,
    hat                  text[],
    attrs                jsonb NOT NULL DEFAULT '{}',
    content_hash         text NOT NULL,
    source               text NOT NULL,
    run_id               bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);

CREATE TABLE kataster_privat.ax_anschrift (
    gml_id           text NOT NULL,
    beginnt          timestamptz NOT NULL,
    endet            timestamptz,
    strasse          text,
    hausnummer       text,
    postleitzahl     text,
    ort              text,
    bestimmungsland  text,
    attrs            jsonb NOT NULL DEFAULT '{}',
    content_hash     text NOT NULL,
    source           text NOT NULL,
    run_id           bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (gml_id, beginnt)
);

CREATE TABLE kataster_privat.ax_objekt (LIKE kataster.ax_objekt INCLUDING ALL);

-- Resolved ownership: one row per current parcel and owner (filled by the NAS import).
CREATE TABLE kataster_privat.eigentum_aufgeloest (
    flurstueck_gml_id       text NOT NULL,
    flurstueckskennzeichen  text NOT NULL,
    buchungsblatt           text,
    buchungsart             integer,
    person_gml_id           text,
    anteil_zaehler          numeric,
    anteil_nenner           numeric,
    rechtsgemeinschaft      text,
    run_id                  bigint NOT NULL REFERENCES kataster.import_run (id)
);
CREATE INDEX eigentum_aufgeloest_fsk_idx ON kataster_privat.eigentum_aufgeloest (flurstueckskennzeichen);

CREATE TABLE kataster_privat.finding (LIKE kataster.finding INCLUDING ALL);

-- Who looked up which owner, and why. Append-only (enforced by roles, see serving).
CREATE TABLE kataster_privat.audit_log (
    id                      bigserial PRIMARY KEY,
    at                      timestamptz NOT NULL DEFAULT clock_timestamp(),
    db_user                 text NOT NULL DEFAULT session_user,
    flurstueckskennzeichen  text NOT NULL,
    aktenzeichen            text NOT NULL CHECK (btrim(aktenzeichen) <> '')
);
