-- A layer's default style in a GeoPackage's layer_styles table, as QGIS reads it
-- (exporters/qgis.py). SQLite, with its own parameter style (named, :name).

-- name: create_table
CREATE TABLE IF NOT EXISTS layer_styles (
    id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
    f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
    styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
    update_time DATETIME DEFAULT CURRENT_TIMESTAMP);

-- name: register_table
INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, last_change)
VALUES ('layer_styles', 'attributes', 'layer_styles', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- name: drop_style
DELETE FROM layer_styles WHERE f_table_name = :table;

-- name: add_style
INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column,
                          styleName, styleQML, styleSLD, useAsDefault, description, owner, ui,
                          update_time)
VALUES ('', '', :table, :geometry_column, :name, :qml, '', 1, :description, 'kataster', '',
        :updated);
