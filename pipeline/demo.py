"""``make demo``: the main job end to end on the embedded default, through the API."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline import api


def run_demo(cfg, say=print, notify=None, parcels=3000):
    """Set up the database, generate and import a sample (GeoPackage, NAS, NBA, a scan),
    validate, write the report and a QGIS project; ``say`` prints each step, ``notify`` the
    imports' messages (lock waits)."""
    from exporters.files import write_gpkg_layer
    from pipeline.synthetic.city import build, plant_errors

    out = Path(cfg["paths.output_dir"]) / "demo"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    from pipeline.db import set_up

    database, _created, _started = set_up(cfg)    # what 'kataster db up' does
    where = "embedded PostGIS" if database.embedded else "configured PostGIS"
    say(f"1. database: {where} at {database.url}")

    sample = out / "muelheim_sample.gpkg"
    layers, planted = plant_errors(build(parcels, seed=1), per_kind=1, seed=1)
    if sample.exists():
        sample.unlink()
    for name, gdf in layers.items():
        write_gpkg_layer(gdf, sample, name, append=sample.exists())
    say(f"2. generated a Mülheim-like sample: {len(layers['Flurstueck'])} parcels, "
        f"{len(layers['GebaeudeBauwerk'])} buildings, 14 Gemarkungen, "
        f"{len(layers['KatasterBezirk'])} Fluren, with {len(planted)} planted errors "
        f"({', '.join(sorted({r for r, _ in planted}))}) -> {sample}")

    summary = _import(database, cfg, [sample], notify)
    if summary["status"] == "skipped":
        say(f"3. import: {sample.name} was already imported in run "
            f"{summary['already_imported_in_run']}; nothing changed")
    else:
        objects = ", ".join(f"{n} {k}" for k, n in summary["objects"].items())
        say(f"3. imported in run {summary['run_id']} ({summary['seconds']:.1f} s): {objects}")

    from pipeline.synthetic.nas import write as write_nas
    from pipeline.synthetic.nas import write_nba

    nas = out / "oberhausen_gid71.xml.gz"
    nas_gen = write_nas(1000, nas, version="7.1", seed=2, city="Oberhausen")
    nas_run = _import(database, cfg, [nas], notify)
    owners = nas_run["objects"].get("AX_Person", 0)
    say(f"   and a NAS Bestandsdatenauszug of the neighbour Oberhausen (GeoInfoDok 7.1, "
        f"{nas_gen['objects']} objects of {len(nas_gen['types'])} types, "
        f"{owners} owners) -> run {nas_run['run_id']} "
        f"({nas_run.get('seconds') or 0:.1f} s); owners are in kataster_privat.eigentum")
    nba = out / "oberhausen_nba_1von1.xml"
    nba_gen = write_nba(1000, nba, version="7.1", seed=2, city="Oberhausen")
    nba_run = _import(database, cfg, [nba], notify)
    if nba_run["status"] == "skipped":
        say(f"   its NBA portion was already imported in run "
            f"{nba_run['already_imported_in_run']}")
    else:
        say(f"   then its NBA portion ({len(nba_gen['replaced'])} parcels replaced, "
            f"{nba_gen['deleted']} addresses deleted) -> run {nba_run['run_id']}; "
            f"acknowledgement for the Katasterbehörde: {nba_run['acknowledgements'][0]}")

    scan_run, cog = _scan(database, cfg, layers["Flurstueck"], out, notify)
    if scan_run["status"] == "skipped":
        say(f"   its scanned Flurkarte of 1936 was already imported in run "
            f"{scan_run['already_imported_in_run']}")
    else:
        say(f"   and a scanned Flurkarte of 1936 (generated from the sample's parcels, distorted; "
            f"12 control points, thin-plate spline, RMS {cog['rms']:.2f} m) -> run "
            f"{scan_run['run_id']}; COG: {cog['path']}; served as the WMS layer "
            "historische_karte under the parcels (map page: Historische Karten)")

    from exporters.findings import write_report

    result = api.validate(config=cfg, database=database)
    report = out / "pruefbericht.html"
    write_report(database, result, report)
    sev = result.counts["by_severity"]
    say(f"4. validated in run {result.run_id} ({result.seconds:.1f} s): {sev['error']} error, "
        f"{sev['warning']} warning, {sev['info']} info findings; report: {report}")

    project = api.export("qgis", out / "kataster.qgz", config=cfg, database=database)
    say(f"5. exported a QGIS project for departments: {project['out']}, its layers styled like "
        f"the map service, in {out / 'kataster.gpkg'} beside it ({project['features']} "
        "features: parcels, buildings, house numbers, street names, boundary points, Fluren, "
        "Gemarkungen, land use, findings)")

    say(f"\nDone in {time.monotonic() - started:.1f} s.")
    say(f"  Open {out / 'kataster.qgz'} in QGIS, or query the views with:")
    say("    psql \"$(.venv/bin/kataster db url)\" -c 'SELECT count(*) FROM kataster.flurstueck'")
    say("  Import runs:        .venv/bin/kataster runs")
    say("  Findings:           .venv/bin/kataster findings list   (report: "
        f"{report})")
    say("  Analyst notebook:   make notebook   (notebooks/01_flurstuecke.ipynb)")
    say("  Map server:         .venv/bin/kataster serve   (then open http://127.0.0.1:"
        f"{cfg['serve.port']}/ ; WMS at /wms, OGC API Features at /ogcapi)")
    say("  Stop the database:  .venv/bin/kataster db down")


def _import(database, cfg, paths, notify, options=None):
    """An import as ``kataster import`` does it, but validated once after all of them
    (step 4)."""
    return api.import_files(paths, options=options, validate_after=False, config=cfg,
                            database=database, notify=notify)


def _scan(database, cfg, parcels, out, notify):
    """Georeference a generated scan of some of the sample's parcels (as a Flurkarte of 1936
    would be: drawn, distorted, with control points at parcel corners)."""
    import shapely

    from pipeline.rasters import karten_dir
    from pipeline.synthetic.scan import generate_scan

    x0, y0 = parcels.total_bounds[:2]
    inside = parcels[parcels.geometry.within(shapely.box(x0 + 200, y0 + 200, x0 + 500,
                                                         y0 + 420))]
    scan = generate_scan(inside.geometry.values, out / "flurkarte_1936.tif", kind="smooth")
    frame = ",".join(f"{v:.3f}" for v in inside.total_bounds)
    summary = _import(database, cfg, [scan.image], notify, options={
        "transformation": "tps", "jahr": "1936", "kartenart": "Flurkarte",
        "blatt": "FLURKARTE-1936", "titel": "Flurkarte 1936 (erzeugter Scan)", "rahmen": frame})
    sheet = api.maps(database=database).set_index("id").loc["FLURKARTE-1936"]
    return summary, {"path": karten_dir(cfg) / sheet["pfad"], "rms": sheet["rms_m"]}
