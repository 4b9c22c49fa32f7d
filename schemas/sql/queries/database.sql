-- Setting up databases and roles (pipeline/db.py, pipeline/embedded.py): what the
-- administrator lends the owner for a migration, the embedded cluster's roles and database.
-- {placeholders} are role, database or extension names filled in as identifiers.

-- name: may_use_owner_schema
SELECT has_schema_privilege('kataster_privat', 'USAGE');

-- name: repoint_audit
-- A database copied from another (CREATE DATABASE ... TEMPLATE) still reaches the original's
-- audit: point it at itself.
SELECT kataster_privat.audit_repoint()
FROM pg_foreign_server s, pg_options_to_table(s.srvoptions) o
WHERE s.srvname = 'kataster_audit_server' AND pg_has_role(s.srvowner, 'USAGE')
  AND o.option_name = 'dbname' AND o.option_value <> current_database();

-- name: create_extension
CREATE EXTENSION IF NOT EXISTS {extension} SCHEMA public;

-- name: grant_role
GRANT {group} TO {member};

-- name: grant_dblink
GRANT USAGE ON FOREIGN DATA WRAPPER dblink_fdw TO {role};

-- name: may_create_roles
SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = %(role)s;

-- name: lend_createrole
ALTER ROLE {role} CREATEROLE;

-- name: take_back_createrole
ALTER ROLE {role} NOCREATEROLE;

-- name: current_user
SELECT current_user;

-- name: server_version
SHOW server_version;

-- name: postgis_version
SELECT postgis_full_version();

-- name: role_exists
SELECT 1 FROM pg_roles WHERE rolname = %(role)s;

-- name: create_login
CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
PASSWORD {password};

-- name: alter_login
ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
PASSWORD {password};

-- name: read_only_role
ALTER ROLE {role} SET default_transaction_read_only = on;

-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = %(name)s;

-- name: create_database
CREATE DATABASE {name} OWNER {owner};

-- name: work_mem
SELECT current_setting('work_mem');

-- name: set_work_mem
-- For the rest of the transaction (pipeline.db.scoped_memory restores it).
SELECT set_config('work_mem', %(value)s, true);
