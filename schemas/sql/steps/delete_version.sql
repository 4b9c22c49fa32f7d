-- Step apply_operations, without history: the named version (or the open one) is removed.
-- <target>: the table; <version>: which version.
DELETE FROM {target} WHERE gml_id = %(g)s {version}
