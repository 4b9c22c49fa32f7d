"""Commands that move data: ``import``, ``runs``, ``export``, ``generate``, ``changes``,
``eigentum``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from pipeline import api
from pipeline.cli.root import Progress, cli, echo_json
from pipeline.errors import KatasterError, UsageError
from pipeline.views import LAYERS as VIEW_LAYERS


# -- import -----------------------------------------------------------------------------------------
@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="auto", show_default=True,
              help="Importer: auto, or one of the registered importers (see 'kataster versions').")
@click.option("--profile", default="auto", show_default=True,
              help="Mapping profile: auto, alkis-vereinfacht, or a YAML file.")
@click.option("--srs", help="Coordinate system of the data, e.g. EPSG:31466 (overrides the file's).")
@click.option("--encoding", help="Text encoding of the attributes, e.g. ISO-8859-1.")
@click.option("--force", is_flag=True, help="Import even if these files were imported before.")
@click.option("--no-history", is_flag=True, help="Replace changed objects instead of keeping versions.")
@click.option("--allow-older", is_flag=True,
              help="Apply an NBA delivery older than the newest applied one of its profile "
                   "(after a human decision).")
@click.option("--no-validate", is_flag=True,
              help="Skip the validation that runs after a committed import (validation.after_import).")
@click.option("--gcps", type=click.Path(dir_okay=False, path_type=Path),
              help="Scans: the ground control points (QGIS .points or CSV; default: beside the "
                   "scan).")
@click.option("--transformation", type=click.Choice(["polynomial1", "polynomial2", "polynomial3",
                                                     "tps"]),
              help="Scans: how the points map the scan (default: karten.transformation).")
@click.option("--sheet", "sheet", multiple=True, metavar="KEY=VALUE",
              help="Scans: the sheet's data: blatt (id), titel, kartenart, massstab, jahr, "
                   "gemarkung (6 digits), flur, quelle. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary.")
@click.pass_obj
def import_(obj, paths, fmt, profile, srs, encoding, force, no_history, allow_older, no_validate,
            gcps, transformation, sheet, as_json):
    """Import source files into the database as one run (all or nothing)."""
    from importers.scan import SHEET_OPTIONS

    options = {"profile": profile}
    if gcps:
        options["gcps"] = str(gcps)
    if transformation:
        options["transformation"] = transformation
    for item in sheet:
        key, sep, value = item.partition("=")
        if not sep or key not in SHEET_OPTIONS:
            raise UsageError(f"--sheet {item!r}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(SHEET_OPTIONS)}")
        options[key] = value
    if allow_older:
        options["allow_older"] = True
    if srs:
        from importers.crs import parse_crs
        from pipeline.errors import CRSError

        try:
            parse_crs(srs, "--srs")
        except CRSError as err:          # a mistyped option: a usage error (exit 2)
            raise UsageError(err.message) from None
        options["srs"] = srs
    if encoding:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UsageError(f"--encoding {encoding!r} is not a known text encoding (e.g. "
                             "UTF-8, ISO-8859-1, CP1252)") from None
        options["encoding"] = encoding
    started = time.monotonic()
    with Progress(obj, "importing") as advance:
        try:
            summary = api.import_files(
                list(paths), fmt=fmt, options=options, force=force,
                history=False if no_history else None,
                validate_after=False if no_validate else None, config=obj.config,
                database=obj.database(), notify=obj.say, progress=advance)
        except KatasterError as err:
            if as_json:
                summary = getattr(err, "summary", None) or {
                    "run_id": None, "files": [{"path": str(p), "sha256": None, "status": "failed"}
                                              for p in paths],
                    "objects": {}, "findings": {"error": 0, "warning": 0, "info": 0}}
                summary.update(status="failed", error=str(err),
                               seconds=round(time.monotonic() - started, 3))
                echo_json(summary)
            raise
    if as_json:
        echo_json(summary)
        return
    if summary["status"] == "skipped":
        obj.say(f"already imported (run {summary['already_imported_in_run']}); nothing changed. "
                "Use --force to import again.")
        return
    objects = ", ".join(f"{n} {k}" for k, n in summary["objects"].items())
    f = summary["findings"]
    obj.say(f"run {summary['run_id']} committed in {summary['seconds']:.1f} s: {objects}; "
            f"findings: {f['error']} error, {f['warning']} warning, {f['info']} info")
    for table, m in summary["merge"].items():
        obj.say(f"  {table}: {m['inserted']} new or changed, {m['unchanged']} unchanged, "
                f"{m['closed']} closed")
    if "changes" in summary:
        c = {k: v for k, v in summary["changes"].items() if k != "since_run"}
        obj.say(f"changes since run {summary['changes']['since_run']}: "
                + ", ".join(f"{n} {k}" for k, n in c.items()))
    for m in summary.get("missing_parts", []):
        obj.say(f"NBA delivery {m['profilkennung']} of {m['datum']}: parts "
                f"{', '.join(map(str, m['parts']))} not yet delivered")
    for path in summary.get("acknowledgements", []):
        obj.say(f"acknowledgement for the Katasterbehörde: {path}")
    if "validation" in summary:
        v = summary["validation"]
        obj.say(f"validation run {v['run_id']}: {v['error']} error, {v['warning']} warning, "
                f"{v['info']} info findings ('kataster findings list' shows them)")


# -- runs -----------------------------------------------------------------------------------------
@cli.command("runs")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def runs(obj, limit, as_json):
    """List runs (imports, validations, repairs) with status and counts."""
    from pipeline.runs import list_runs

    rows = list_runs(obj.database("reader"), limit)
    if as_json:
        echo_json([{**r, "started": r["started"].isoformat(),
                     "finished": r["finished"].isoformat() if r["finished"] else None}
                    for r in rows])
        return
    for r in rows:
        objects = ", ".join(f"{n} {k}" for k, n in r["counts"].get("objects", {}).items())
        click.echo(f"{r['id']:>5}  {r['started']:%Y-%m-%d %H:%M:%S}  {r['status']:9}  "
                   f"{r['importer'] or r['kind']:8}  {objects or '-'}")
        for path in r["files"]:
            click.echo(f"       {path}")
        if r["error"]:
            click.echo(f"       error: {r['error']}")
    from pipeline.runs import missing_nba_parts

    for (profil, datum), parts in missing_nba_parts(obj.database("reader")).items():
        click.echo(f"NBA delivery {profil} of {datum}: parts {', '.join(map(str, parts))} "
                   "not yet delivered")


# -- export -----------------------------------------------------------------------------------------
def _bbox(ctx, param, value):
    if value is None:
        return None
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter("expected minx,miny,maxx,maxy in EPSG:25832") from None
    if len(parts) != 4 or parts[0] >= parts[2] or parts[1] >= parts[3]:
        raise click.BadParameter("expected minx,miny,maxx,maxy with min < max")
    return tuple(parts)


def _exporter_names():
    from pipeline import registry

    return registry.names("exporter")


@cli.command("export")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(_exporter_names()))
@click.option("--layer", type=click.Choice(list(VIEW_LAYERS)),
              help="The public view to export (every format but qgis, which takes all).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--gemarkung", help="Gemarkungsnummer (4 digits).")
@click.option("--flur", type=int, help="Flurnummer.")
@click.option("--bbox", callback=_bbox, help="minx,miny,maxx,maxy in EPSG:25832.")
@click.option("--service", help="qgis: read the layers through this pg_service entry (see "
                                "'kataster db service') instead of a GeoPackage beside.")
@click.option("--jahr", type=int, help="karte: only the scanned maps of this year.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def export(obj, fmt, layer, out, gemarkung, flur, bbox, service, jahr, as_json):
    """Export a public view to a file, every layer as a QGIS project (FORMAT qgis), or the
    scanned maps of an area as one GeoTIFF (FORMAT karte)."""
    summary = api.export(fmt, out, layer=layer, gemarkung=gemarkung, flur=flur, bbox=bbox,
                         service=service, jahr=jahr, config=obj.config,
                         database=obj.database("reader"))
    if as_json:
        echo_json(summary)
    else:
        where = summary["out"] if isinstance(summary["out"], str) else \
            " and ".join(summary["out"])
        what = (f"scanned maps ({', '.join(summary['sheets'])})" if "sheets" in summary else
                f"{layer} features" if layer else "features of all layers")
        obj.say(f"wrote {summary['features']} {what} to {where}")


# -- generate ---------------------------------------------------------------------------------------
@cli.command("generate")
@click.option("--parcels", type=click.IntRange(1), required=True, help="Number of parcels.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--format", "fmt", default="gpkg", show_default=True,
              type=click.Choice(["gpkg", "shp", "geojson", "fgb", "gml", "nas6", "nas7", "nba"]),
              help="ALKIS vereinfacht as a vector file, a NAS Bestandsdatenauszug (GID 6.0 or "
                   "7.1, with owners), or an NBA update for the extract of the same size and seed.")
@click.option("--srs", type=click.Choice(["utm", "gk"]), default="utm", show_default=True,
              help="NAS only: ETRS89/UTM32, or the legacy Gauß-Krüger variant (DHDN 3GK2).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output file (NAS: .xml or .xml.gz).")
@click.option("--city", type=click.Choice(["Mülheim", "Oberhausen"]), default="Mülheim",
              show_default=True, help="Where the sample lies (each city and seed has its own "
                                      "object ids).")
@click.option("--lean", is_flag=True,
              help="NAS only: parcels, buildings, addresses and owners only (very large "
                   "cities); without it the extract carries a real extract's type mix.")
@click.option("--nas-version", type=click.Choice(["6.0", "7.1"]), default="7.1",
              show_default=True, help="NBA only: the GeoInfoDok version of the update.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def generate(obj, parcels, seed, fmt, srs, out, city, lean, nas_version, as_json):
    """Write a deterministic synthetic Mülheim-like cadastre."""
    if fmt in ("nas6", "nas7"):
        from pipeline.synthetic.nas import write

        started = time.monotonic()
        res = write(parcels, out, version="6.0" if fmt == "nas6" else "7.1", seed=seed, srs=srs,
                    city=city, lean=lean)
        summary = {"out": str(out), "format": fmt, "parcels": parcels,
                   "buildings": None, "gemarkungen": 14, "fluren": None, "seed": seed,
                   "objects": res["objects"], "seconds": round(time.monotonic() - started, 3)}
    elif fmt == "nba":
        from pipeline.synthetic.nas import write_nba

        started = time.monotonic()
        res = write_nba(parcels, out, version=nas_version, seed=seed, city=city, lean=lean)
        summary = {"out": str(out), "format": fmt, "parcels": len(res["replaced"]),
                   "buildings": None, "gemarkungen": None, "fluren": None, "seed": seed,
                   "objects": len(res["replaced"]) + res["deleted"],
                   "seconds": round(time.monotonic() - started, 3)}
    else:
        from pipeline.synthetic.city import generate as run

        summary = run(parcels, out, fmt=fmt, seed=seed, city=city)
    if as_json:
        echo_json(summary)
    elif "objects" in summary:
        obj.say(f"wrote {summary['objects']} NAS objects ({summary['parcels']} parcels) to "
                f"{summary['out']} ({summary['seconds']:.1f} s)")
    else:
        obj.say(f"wrote {summary['parcels']} parcels, {summary['buildings']} buildings in "
                f"{summary['gemarkungen']} Gemarkungen / {summary['fluren']} Fluren to "
                f"{summary['out']} ({summary['seconds']:.1f} s)")


@cli.command("changes")
@click.argument("run_a", type=int)
@click.argument("run_b", type=int)
@click.option("--private", is_flag=True, help="Include owner changes (needs the owner-data role).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the changes to a GeoPackage (layer aenderungen).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def changes_cmd(obj, run_a, run_b, private, out, as_json):
    """Parcels added, removed, changed in geometry or area (or owners) from RUN_A to RUN_B."""
    from pipeline.changes import as_json as to_json
    from pipeline.changes import changes

    result = changes(obj.database(), run_a, run_b, private=private)   # reads the versions
    if out:
        from exporters.files import write_gpkg_layer

        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.unlink()
        frame = result["changes"]
        write_gpkg_layer(frame, out, "aenderungen", geometry_type="MultiPolygon",
                         promote_to_multi=True)
        obj.say(f"changes GeoPackage: {out} ({len(frame)} rows)")
    if as_json:
        echo_json(to_json(result))
    else:
        counts = ", ".join(f"{n} {k}" for k, n in result["counts"].items())
        obj.say(f"changes from run {run_a} to run {run_b}: {counts}")


@cli.command("eigentum")
@click.argument("flurstueckskennzeichen")
@click.option("--aktenzeichen", required=True, help="File reference of the legal reason (logged).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--bearbeiter", help="Who asks, as recorded in the audit (besides the database "
                                       "user and the operating-system user).")
@click.pass_obj
def eigentum_cmd(obj, flurstueckskennzeichen, aktenzeichen, bearbeiter, as_json):
    """Owners of one parcel (audited: user, time, parcel and Aktenzeichen are logged)."""
    from exporters.sql_access import owner_lookup, owner_rows_for_people

    rows = owner_rows_for_people(
        owner_lookup(obj.database("reader"), flurstueckskennzeichen, aktenzeichen, bearbeiter))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        obj.say(f"keine Eigentümer verzeichnet für {flurstueckskennzeichen}")
        return
    table = [("Buchungsblatt", "Buchungsart", "Anteil", "Eigentümer", "Gemeinschaft")] + [
        (r["buchungsblatt"] or "-", r["buchungsart_text"] or "-", r["anteil"] or "-",
         ", ".join(p for p in (r["name"], r["vorname"]) if p), r["rechtsgemeinschaft"] or "")
        for r in rows]
    widths = [max(len(str(row[k])) for row in table) for k in range(5)]
    for row in table:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


