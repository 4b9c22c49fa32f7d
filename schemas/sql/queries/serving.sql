-- The map services (exporters/serving/).

-- name: extent
SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
FROM (SELECT ST_Extent(geom) e FROM kataster.flurstueck) x;

-- name: role_writes
-- The services should connect as a role that can change nothing.
SELECT current_user,
       rolsuper OR has_schema_privilege('kataster', 'CREATE')
       OR has_table_privilege('kataster.ax_flurstueck', 'INSERT')
FROM pg_roles WHERE rolname = current_user;
