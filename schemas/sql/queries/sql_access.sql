-- SQL access for departments (exporters/sql_access.py): roles and the audited owner look-up.

-- name: role_exists
SELECT 1 FROM pg_roles WHERE rolname = %(role)s;

-- name: grant
GRANT {group} TO {login};

-- name: claim
-- What the audit record names besides the session user (as claimed by the client).
SELECT set_config('kataster.os_user', %(os_user)s, false),
       set_config('kataster.bearbeiter', %(bearbeiter)s, false);

-- name: owner_lookup
SELECT * FROM kataster_privat.eigentum_auskunft(%(flurstueckskennzeichen)s, %(aktenzeichen)s);

-- name: audit_limit
SELECT kataster_privat.audit_setze_grenze(%(parcels_per_hour)s);
