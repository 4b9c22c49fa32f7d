"""Benchmark: the served map services under load, against MapServer's own ceiling.

On the generated city with 100,000 parcels, validated (its findings are drawn), it starts
``kataster serve``'s services and loads them on loopback with ``wrk`` (Debian), 4 connections
for 20 s per request type: random
256×256 tiles (EPSG:3857, zoom 17), 1024×768 views (EPSG:25832, ~600 m wide), GetFeatureInfo,
and OGC API item pages. For the WMS types the same requests go, in the same run, to a minimal
one-layer MapServer configuration on the same data and FastCGI pool size (the engine's own
ceiling); the ratio is ours / ceiling. The full cartography (every layer of the style source
with its texts) is measured as tiles at zoom 19 (about 1:1,000) and 17 (about 1:5,000), beside
the previous round's five-layer map at zoom 19 in the same run. The types and the ceiling run
in interleaved rounds (4 × 5 s). Prints req/s and p95 latency per type.
Not a test; record the figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyogrio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_vector import fresh_database  # noqa: E402

from exporters.layers import LAYERS  # noqa: E402
from exporters.serving.server import Server  # noqa: E402
from exporters.serving.settings import MAPSERV, conninfo  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.db import Database  # noqa: E402
from pipeline.embedded import EmbeddedCluster  # noqa: E402
from pipeline.processes import free_port  # noqa: E402
from pipeline.runs import run_import  # noqa: E402
from pipeline.synthetic.city import build, plant_errors  # noqa: E402
from pipeline.validation.run import validate  # noqa: E402

LUA = r"""
math.randomseed(%(seed)d)
local minx, miny, maxx, maxy = %(minx)f, %(miny)f, %(maxx)f, %(maxy)f
request = function()
  local x = minx + math.random() * (maxx - minx)
  local y = miny + math.random() * (maxy - miny)
  local path = string.format("%(template)s", %(args)s)
  return wrk.format("GET", path)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%f %%f %%d\n", summary.requests,
           summary.requests / (summary.duration / 1e6), latency:percentile(95) / 1000,
           summary.errors.status + summary.errors.connect + summary.errors.read +
           summary.errors.timeout))
  -- The latency distribution in steps of 0.5 %%, so that rounds combine into one p95.
  local cdf = {}
  for p = 0.5, 99.5, 0.5 do cdf[#cdf + 1] = string.format("%%.3f", latency:percentile(p) / 1000) end
  cdf[#cdf + 1] = string.format("%%.3f", latency.max / 1000)
  io.write("CDF " .. table.concat(cdf, " ") .. "\n")
end
"""


def wrk(url, script, seconds):
    out = subprocess.run(["wrk", "-t", "2", "-c", "4", "-d", f"{seconds}s", "-s", str(script),
                          url], capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"RESULT (\d+) ([\d.]+) ([\d.]+) (\d+)", out)
    cdf = re.search(r"CDF ([\d. ]+)", out)
    if not m or not cdf:
        raise SystemExit(f"wrk failed:\n{out}")
    return (int(m.group(1)), float(m.group(2)), float(m.group(3)), int(m.group(4)),
            [float(v) for v in cdf.group(1).split()])


def combine(results):
    """(requests, mean req/s, p95 of all requests, errors) of the rounds of one request type.

    The p95 of all rounds together: the smallest latency at or below which 95 % of all
    requests lie, from each round's distribution in 0.5 % steps (exact to that step)."""
    total = sum(r[0] for r in results)

    def at_or_below(latency):
        return sum(r[0] * sum(1 for v in r[4] if v <= latency) / len(r[4]) for r in results)

    p95 = min(v for r in results for v in r[4] if at_or_below(v) >= 0.95 * total)
    return (total, sum(r[1] for r in results) / len(results), p95,
            sum(r[3] for r in results))


def script(path, template, args, box, seed=1):
    path.write_text(LUA % {"seed": seed, "minx": box[0], "miny": box[1], "maxx": box[2],
                           "maxy": box[3], "template": template, "args": args})
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=20, help="per request type, all rounds")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    cluster = EmbeddedCluster(work / "state_serve")
    cluster.up()
    procs = []
    pids = []
    try:
        url = fresh_database(cluster.url("postgres", "admin"), "bench_serve")
        db = Database(url)
        db.prepare()
        # The generated city with planted errors (30 of each kind), so that the findings layers
        # have something to draw, as after a real validation.
        sample = work / f"muelheim_{args.parcels}_befunde.gpkg"
        if not sample.exists():
            layers, _expected = plant_errors(build(args.parcels, seed=1), per_kind=30, seed=1)
            for name, gdf in layers.items():
                pyogrio.write_dataframe(gdf, sample, layer=name, driver="GPKG",
                                        append=sample.exists())
        cfg = load_config(environ={"KATASTER_DATABASE_URL": url,
                                   "KATASTER_PATHS_STATE_DIR": str(work / "s5")})
        run_import(db, cfg, [sample])
        validate(db, cfg)
        # Settle the fresh import as autovacuum would (hint bits, visibility map, statistics), so
        # that neither side pays first-touch costs or competes with autovacuum while measured.
        with db.connect(autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
            conn.execute("CHECKPOINT")      # the import's and validation's writes on disk
        with db.connect() as conn:
            box = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
                               " (SELECT ST_Extent(geom) e FROM kataster.flurstueck) x").fetchone()
            box3857 = conn.execute(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT"
                " ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 25832), 3857) e) x", box).fetchone()
            n = conn.execute("SELECT count(*) FROM kataster.flurstueck").fetchone()[0]
            findings = conn.execute("SELECT count(*) FROM kataster.befund").fetchone()[0]
        port = free_port()
        server = Server(db, work / "serve_run", port=port, workers=2)
        server.start()
        # The ceiling: one layer, plain outlines, no labels, same data and pool size.
        run = server.run
        ci = " ".join(f"{k}={v}" for k, v in conninfo(url).items())
        (run / "ceiling.map").write_text(f"""MAP
  EXTENT {' '.join(map(str, box))}
  PROJECTION "EPSG:25832" END
  OUTPUTFORMAT NAME "png" DRIVER AGG/PNG MIMETYPE "image/png" IMAGEMODE RGBA END
  WEB METADATA "ows_enable_request" "*" "ows_srs" "EPSG:25832 EPSG:3857" END END
  LAYER NAME "flurstueck" TYPE POLYGON STATUS ON CONNECTIONTYPE POSTGIS CONNECTION "{ci}"
    PROCESSING "CLOSE_CONNECTION=DEFER"
    DATA "geom FROM kataster.ax_flurstueck USING UNIQUE gml_id USING SRID=25832"
    TEMPLATE "x" PROJECTION "EPSG:25832" END
    METADATA "ows_title" "f" "ows_include_items" "flurstueckskennzeichen" END
    CLASS STYLE OUTLINECOLOR 0 0 0 END END
  END
END
""")
        (run / "ceiling.conf").write_text(
            f'CONFIG ENV MS_MAP_PATTERN "^{run}/" MS_MAPFILE "{run}/ceiling.map" '
            'PROJ_DATA "/usr/share/proj" END END\n')
        env = dict(os.environ, MAPSERVER_CONFIG_FILE=str(run / "ceiling.conf"))
        out = subprocess.run(["spawn-fcgi", "-s", str(run / "ceiling.sock"), "-F", "2", "--",
                              MAPSERV], env=env, capture_output=True, text=True)
        pids = [int(line.rsplit("PID:", 1)[1]) for line in out.stdout.splitlines() + out.stderr.splitlines()
                if "PID:" in line]
        cport = free_port()
        (run / "ceiling-nginx.conf").write_text(f"""daemon off; worker_processes 2;
{"user root root;" if os.geteuid() == 0 else ""}
pid {run}/ceiling-nginx.pid; error_log {run}/ceiling-nginx.log;
events {{ worker_connections 256; }}
http {{ access_log off; client_body_temp_path {run}/tmp/body; fastcgi_temp_path {run}/tmp/fastcgi;
  proxy_temp_path {run}/tmp/proxy; uwsgi_temp_path {run}/tmp/uwsgi; scgi_temp_path {run}/tmp/scgi;
  server {{ listen 127.0.0.1:{cport};
    location /wms {{ include /etc/nginx/fastcgi_params; fastcgi_pass unix:{run}/ceiling.sock; }} }} }}
""")
        procs.append(subprocess.Popen(["nginx", "-c", str(run / "ceiling-nginx.conf"), "-p",
                                       str(run)]))
        import time

        time.sleep(1)
        layers_ours = "nutzung,flurstueck,gebaeude,flur,gemarkung"   # the previous round's map
        # The full cartography: every layer of the style source (texts, points, findings).
        layers_full = ",".join(lay.name for lay in LAYERS)
        tile = ("/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&STYLES=&LAYERS=%s&CRS=EPSG:3857"
                "&FORMAT=image/png&TRANSPARENT=TRUE&WIDTH=256&HEIGHT=256&BBOX=%%f,%%f,%%f,%%f")
        view = ("/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&STYLES=&LAYERS=%s&CRS=EPSG:25832"
                "&FORMAT=image/png&WIDTH=1024&HEIGHT=768&BBOX=%%f,%%f,%%f,%%f")
        gfi = ("/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetFeatureInfo&STYLES=&LAYERS=%s"
               "&QUERY_LAYERS=flurstueck&CRS=EPSG:25832&WIDTH=256&HEIGHT=256&I=128&J=128"
               "&INFO_FORMAT=text/plain&BBOX=%%f,%%f,%%f,%%f")
        t = 305.748   # a 256 px tile at zoom 17 is 305.7 m wide (about 1:4,300, "1:5,000")
        t19 = 76.437  # zoom 19: about 1:1,070 ("1:1,000"), where every text is drawn
        # The goal compares the same request (the parcel layer) on our styled configuration and
        # on the minimal one; the full five-layer map is measured too and printed for reference.
        cases = [
            ("tiles 256x256", tile, "flurstueck", f"x, y, x + {t}, y + {t}", box3857),
            ("views 1024x768", view, "flurstueck", "x, y, x + 600, y + 450", box),
            ("GetFeatureInfo", gfi, "flurstueck", "x - 30, y - 30, x + 30, y + 30", box),
            ("tiles, full map", tile, layers_ours, f"x, y, x + {t}, y + {t}", box3857),
            ("views, full map", view, layers_ours, "x, y, x + 600, y + 450", box),
            ("tiles 1:1,000, 5 layers", tile, layers_ours, f"x, y, x + {t19}, y + {t19}",
             box3857),
            ("tiles 1:1,000, cartography", tile, layers_full, f"x, y, x + {t19}, y + {t19}",
             box3857),
            ("tiles 1:5,000, cartography", tile, layers_full, f"x, y, x + {t}, y + {t}",
             box3857),
        ]
        # Interleaved rounds: every request type and its ceiling in turn, seconds/rounds each,
        # so that a drift of the machine (CPU steal, frequency) meets both sides alike; the
        # figures are the mean req/s over the rounds and the p95 of all their requests.
        runs = {name: [] for name, *_ in cases}
        ceiling_runs = {}
        for rnd in range(args.rounds):
            part = max(1, args.seconds // args.rounds)
            for name, template, layers, targs, b in cases:
                runs[name].append(wrk(server.base_url, script(run / "o.lua", template % layers,
                                                               targs, b, seed=rnd + 1), part))
                key = (template, targs)
                if len(ceiling_runs.setdefault(key, [])) <= rnd:
                    ceiling_runs[key].append(wrk(
                        f"http://127.0.0.1:{cport}",
                        script(run / "c.lua", template % "flurstueck", targs, b, seed=rnd + 1),
                        part))
        rows = []
        for name, template, _layers, targs, _b in cases:
            ours, ceiling = combine(runs[name]), combine(ceiling_runs[(template, targs)])
            rows.append((name, ours, ceiling))
            print(f"{name:28} ours {ours[1]:8.1f} req/s p95 {ours[2]:7.1f} ms (errors {ours[3]});"
                  f" ceiling {ceiling[1]:8.1f} req/s p95 {ceiling[2]:7.1f} ms; ratio "
                  f"{ours[1] / ceiling[1]:.2f}", flush=True)
        by_name = {name: o for name, o, _c in rows}
        for scale, full, five in (("1:1,000", "tiles 1:1,000, cartography",
                                   "tiles 1:1,000, 5 layers"),
                                  ("1:5,000", "tiles 1:5,000, cartography", "tiles, full map")):
            print(f"full cartography / five-layer map at {scale}: "
                  f"{by_name[full][1] / by_name[five][1]:.2f}", flush=True)
        # Random pages of 10 parcels; the Lua template gets a plain %d and Lua's own modulo.
        items = "/ogcapi/collections/flurstueck/items?f=json&limit=10&offset=%d"
        ogc = wrk(server.base_url, script(run / "i.lua", items,
                                          f"math.floor(x) % {max(n - 10, 1)}", (0, 0, n, 1)),
                  args.seconds)
        rows.append(("OGC API items", ogc, None))
        print(f"{'OGC API items':28} ours {ogc[1]:8.1f} req/s p95 {ogc[2]:7.1f} ms "
              f"(errors {ogc[3]})", flush=True)
        print(f"\n{n:,} parcels, {findings:,} public findings, 4 connections, {args.seconds} s per"
              f" type in {args.rounds} interleaved rounds\n")
        print("| request | req/s | p95 | ceiling req/s | ceiling p95 | ratio |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, o, c in rows:
            if c:
                print(f"| {name} | {o[1]:.1f} | {o[2]:.1f} ms | {c[1]:.1f} | {c[2]:.1f} ms | "
                      f"{o[1] / c[1]:.2f} |")
            else:
                print(f"| {name} | {o[1]:.1f} | {o[2]:.1f} ms | - | - | - |")
        server.stop()
        for p in procs:
            p.terminate()
    finally:
        # MapServer's FastCGI loop only honours TERM after its next request: KILL the pool.
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(10)          # nginx's master stops its workers on TERM
            except subprocess.TimeoutExpired:
                p.kill()
        cluster.destroy()
        shutil.rmtree(work / "s5", ignore_errors=True)


if __name__ == "__main__":
    main()
