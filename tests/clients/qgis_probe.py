"""Run by tests/test_qgis.py under Debian's system python3 with PyQGIS (not the project's venv):
load what a department member loads in QGIS and print what QGIS sees, as JSON.

    python3 qgis_probe.py SERVICE SCHEMA FILE...

For the database it does what QGIS's browser does: list the schema's tables and views through
the provider connection, take the first key candidate QGIS offers, and load the layer with it.
"""

import json
import sys

from qgis.core import (
    QgsApplication,
    QgsDataSourceUri,
    QgsProviderRegistry,
    QgsVectorLayer,
    QgsWkbTypes,
)


def describe(layer):
    if not layer.isValid():
        return {"valid": False, "error": layer.dataProvider().error().message()
                if layer.dataProvider() else "no provider"}
    fields = layer.fields()
    return {
        "valid": True,
        "geometry": QgsWkbTypes.displayString(layer.wkbType()),
        "crs": layer.crs().authid(),
        "count": layer.featureCount(),
        "fields": {f.name(): f.typeName() for f in fields},
        "int_fields": [f.name() for f in fields if f.isNumeric() and f.type() in (2, 4)],
    }


def main(service, schema, files):
    app = QgsApplication([], False)
    app.initQgis()
    out = {"database": {}, "files": {}}
    meta = QgsProviderRegistry.instance().providerMetadata("postgres")
    conn = meta.createConnection(f"service='{service}'", {})
    for table in conn.tables(schema):
        if not table.geometryColumnTypes():
            continue
        uri = QgsDataSourceUri(conn.tableUri(schema, table.tableName()))
        key = table.primaryKeyColumns()[0] if table.primaryKeyColumns() else ""
        uri.setKeyColumn(key)
        uri.setGeometryColumn(table.geometryColumn())
        layer = QgsVectorLayer(uri.uri(False), table.tableName(), "postgres")
        info = describe(layer)
        info["key"] = key
        if info["valid"]:
            idx = layer.fields().indexOf(key)
            info["unique_keys"] = len(layer.uniqueValues(idx))
        out["database"][table.tableName()] = info
    for path in files:
        out["files"][path] = describe(QgsVectorLayer(path, "f", "ogr"))
    print(json.dumps(out))
    app.exitQgis()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
