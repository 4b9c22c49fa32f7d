"""Commands that serve and show: ``serve``, ``versions``, ``demo``."""

from __future__ import annotations

import sys
import time

import click

from pipeline.cli.root import cli, echo_json


# -- serve ------------------------------------------------------------------------------------
@cli.command("serve")
@click.option("--host", help="Address to listen on (default: serve.host, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: serve.port).")
@click.option("--workers", type=int, default=2, show_default=True, help="MapServer FastCGI workers.")
@click.pass_obj
def serve(obj, host, port, workers):
    """Serve WMS/WFS (MapServer), OGC API Features (pygeoapi) and the map page on one port."""
    import signal as _signal

    from exporters.serving.server import Publisher, Server
    from pipeline.rasters import karten_dir

    cfg = obj.config
    server = Server(obj.database(), cfg.state_dir / "serve",
                    host or cfg["serve.host"], port or cfg["serve.port"], workers,
                    service=obj.database("service"), publisher=Publisher.from_config(cfg),
                    karten=karten_dir(cfg))
    # Handlers first: a TERM that arrives while the services start must still stop them all.
    stopping = []

    def handler(signum, frame):
        stopping.append(signum)

    _signal.signal(_signal.SIGTERM, handler)
    _signal.signal(_signal.SIGINT, handler)
    server.start()
    base = server.base_url
    click.echo(f"Karte:              {base}/\n"
               f"WMS 1.3.0 / WFS 2.0: {base}/wms?SERVICE=WMS&REQUEST=GetCapabilities\n"
               f"OGC API Features:   {base}/ogcapi\n"
               "Stop with Ctrl-C.")
    try:
        while not stopping and all(p.poll() is None for p in server.procs):
            time.sleep(0.5)
    finally:
        server.stop()
        obj.say("stopped all services")


# -- versions ---------------------------------------------------------------------------------------
@cli.command("versions")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def versions(obj, as_json):
    """Versions of Kataster, Python, GDAL, GEOS, PROJ, PostgreSQL and PostGIS."""
    from importlib.metadata import version

    import pyogrio
    import pyproj
    import shapely

    from pipeline import registry
    from pipeline.db import server_versions

    data = {"kataster": version("kataster"), "Python": sys.version.split()[0],
            "GDAL (pyogrio)": pyogrio.__gdal_version_string__,
            "GEOS (shapely)": shapely.geos_version_string,
            "PROJ (pyproj)": pyproj.proj_version_str}
    data.update(server_versions(obj.database("reader")))
    data["importers"] = ", ".join(registry.names("importer"))
    data["exporters"] = ", ".join(registry.names("exporter"))
    if as_json:
        echo_json(data)
    else:
        for k, v in data.items():
            click.echo(f"{k:16} {v}")


# -- demo -----------------------------------------------------------------------------------------
@cli.command("demo")
@click.option("--parcels", default=3000, show_default=True)
@click.pass_obj
def demo(obj, parcels):
    """The main job end to end on the embedded default: generate, import, export."""
    from pipeline.demo import run_demo

    run_demo(obj.config, say=click.echo, notify=obj.say, parcels=parcels)
