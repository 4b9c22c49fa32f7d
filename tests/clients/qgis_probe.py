"""Run by tests/exporting/test_qgis.py under Debian's system python3 with PyQGIS (not the project's venv):
load what a department member loads in QGIS and print what QGIS sees, as JSON.

    python3 qgis_probe.py SERVICE SCHEMA FILE...
    python3 qgis_probe.py --project PROJECT OUTDIR    (also renders it at 1:1,000 and 1:25,000)

For the database it does what QGIS's browser does: list the schema's tables and views through
the provider connection, take the first key candidate QGIS offers, and load the layer with it.
"""

import json
import sys

from qgis.core import (
    QgsApplication,
    QgsDataSourceUri,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsVectorLayer,
    QgsWkbTypes,
)


def _leave():
    """Exit without QGIS's teardown: exitQgis() with layers still alive sometimes crashes
    (SIGSEGV) after the answer was printed."""
    import os

    sys.stdout.flush()
    os._exit(0)


def describe(layer):
    if not layer.isValid():
        return {"valid": False, "error": layer.dataProvider().error().message()
                if layer.dataProvider() else "no provider"}
    fields = layer.fields()
    renderer = layer.renderer()
    rules = [r.label() for r in renderer.rootRule().children()] \
        if renderer and renderer.type() == "RuleRenderer" else []
    return {
        "renderer": renderer.type() if renderer else None,
        "rules": rules,
        "labels": bool(layer.labelsEnabled()),
        "valid": True,
        "geometry": QgsWkbTypes.displayString(layer.wkbType()),
        "crs": layer.crs().authid(),
        "count": layer.featureCount(),
        "fields": {f.name(): f.typeName() for f in fields},
        "int_fields": [f.name() for f in fields if f.isNumeric() and f.type() in (2, 4)],
    }


def describe_raster(layer):
    if not layer.isValid():
        return {"valid": False, "error": layer.error().message()}
    provider = layer.dataProvider()
    ext = layer.extent()
    stats = provider.bandStatistics(1)
    return {"valid": True, "crs": layer.crs().authid(), "bands": layer.bandCount(),
            "width": layer.width(), "height": layer.height(),
            "extent": [ext.xMinimum(), ext.yMinimum(), ext.xMaximum(), ext.yMaximum()],
            "overviews": provider.hasPyramids() if hasattr(provider, "hasPyramids") else None,
            "renderer": layer.renderer().type() if layer.renderer() else None,
            "band1_mean": stats.mean}


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
        if path.endswith(".tif"):       # a raster (a scanned map's COG) as "Add Raster Layer"
            out["files"][path] = describe_raster(QgsRasterLayer(path, "r"))
            continue
        if path.endswith(".csv"):       # as QGIS's "Add Delimited Text Layer" opens it
            layer = QgsVectorLayer(f"file://{path}?delimiter=,&wktField=wkt&crs=EPSG:25832"
                                   "&detectTypes=yes", "f", "delimitedtext")
        else:
            layer = QgsVectorLayer(path, "f", "ogr")
        out["files"][path] = describe(layer)
    print(json.dumps(out))
    _leave()


def project(path, outdir):
    from qgis.core import QgsMapRendererSequentialJob, QgsMapSettings, QgsProject, QgsRectangle
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    app = QgsApplication([], False)
    app.initQgis()
    proj = QgsProject.instance()
    ok = proj.read(path)
    layers = {lay.name(): describe(lay) for lay in proj.mapLayers().values()}
    order = [node.name() for node in proj.layerTreeRoot().findLayers()]
    parcels = next(lay for lay in proj.mapLayers().values() if lay.name() == "Flurstücke")
    center = parcels.extent().center()
    renders = {}
    for scale in (1000, 25000):
        settings = QgsMapSettings()
        settings.setLayers([node.layer() for node in proj.layerTreeRoot().findLayers()])
        settings.setDestinationCrs(parcels.crs())
        settings.setOutputSize(QSize(800, 600))
        settings.setOutputDpi(96)
        settings.setBackgroundColor(QColor(255, 255, 255))
        half = 800 / 96 * 0.0254 * scale / 2
        settings.setExtent(QgsRectangle(center.x() - half, center.y() - half * 0.75,
                                        center.x() + half, center.y() + half * 0.75))
        job = QgsMapRendererSequentialJob(settings)
        job.start()
        job.waitForFinished()
        image = job.renderedImage()
        target = f"{outdir}/projekt_1_{scale}.png"
        image.save(target)
        drawn = sum(1 for y in range(0, 600, 4) for x in range(0, 800, 4)
                    if image.pixelColor(x, y).name() != "#ffffff")
        renders[scale] = {"file": target, "drawn": drawn, "scale": round(settings.scale())}
    print(json.dumps({"read": ok, "layers": layers, "order": order, "renders": renders}))
    _leave()


if __name__ == "__main__":
    if sys.argv[1] == "--project":
        project(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2], sys.argv[3:])
