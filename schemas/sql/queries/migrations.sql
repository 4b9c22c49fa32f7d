-- The migration machinery (schemas/migrate.py, schemas/migrations/): the schema Alembic keeps
-- its version table in, the revision a database is at, the shipped Gemarkung catalogue.

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS kataster;

-- name: has_version_table
SELECT to_regclass('kataster.alembic_version') IS NOT NULL;

-- name: version
SELECT version_num FROM kataster.alembic_version;

-- name: add_gemarkung
INSERT INTO kataster.gemarkung_katalog (land, gemarkungsnummer, bezeichnung, katasteramt, fluren)
VALUES (%(land)s, %(gemarkungsnummer)s, %(bezeichnung)s, %(katasteramt)s, %(fluren)s);
