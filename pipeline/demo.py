"""``make demo``: the main job end to end on the embedded default."""

from __future__ import annotations

import time
from pathlib import Path

import click


def run_demo(obj, parcels=3000):
    from pipeline import registry
    from pipeline.generator import generate
    from pipeline.runs import run_import

    cfg = obj.config
    out = Path(cfg["paths.output_dir"]) / "demo"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say = click.echo

    database = obj.database()
    where = "embedded PostGIS" if database.embedded else "configured PostGIS"
    say(f"1. database: {where} at {database.url}")

    sample = out / "muelheim_sample.gpkg"
    gen = generate(parcels, sample, fmt="gpkg", seed=1)
    say(f"2. generated a Mülheim-like sample: {gen['parcels']} parcels, {gen['buildings']} "
        f"buildings, {gen['gemarkungen']} Gemarkungen, {gen['fluren']} Fluren -> {sample}")

    summary = run_import(database, cfg, [sample], notify=obj.say)
    if summary["status"] == "skipped":
        say(f"3. import: {sample.name} was already imported in run "
            f"{summary['already_imported_in_run']}; nothing changed")
    else:
        objects = ", ".join(f"{n} {k}" for k, n in summary["objects"].items())
        say(f"3. imported in run {summary['run_id']} ({summary['seconds']:.1f} s): {objects}")

    exports = []
    for layer in ("flurstueck", "gebaeude", "flur", "gemarkung"):
        target = out / "kataster.gpkg"
        res = registry.load("exporter", "gpkg")(database, layer, target)
        exports.append(f"{layer} ({res['features']})")
    say(f"4. exported a GeoPackage for departments: {out / 'kataster.gpkg'} with layers "
        + ", ".join(exports))

    say(f"\nDone in {time.monotonic() - started:.1f} s.")
    say(f"  Open {out / 'kataster.gpkg'} in QGIS, or query the views with:")
    say(f"    psql \"$(.venv/bin/kataster db url)\" -c 'SELECT count(*) FROM kataster.flurstueck'")
    say("  Import runs:        .venv/bin/kataster runs")
    say("  Analyst notebook:   make notebook   (notebooks/01_flurstuecke.ipynb)")
    say("  Map server (WMS):   not part of this release yet; departments use the GeoPackage "
        "or SQL meanwhile")
    say("  Stop the database:  .venv/bin/kataster db down")
