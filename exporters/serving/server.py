"""The services' supervisor: prepares the run directory (mapfiles, nginx, pygeoapi, page),
starts MapServer's FastCGI pool, nginx and gunicorn, waits for them, and stops every child
TERM → wait → KILL by pid, so that no process is left behind."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pyproj import Transformer

from exporters.serving import mapfile, page
from exporters.serving.ogcapi import pygeoapi_config, pygeoapi_pages
from exporters.serving.settings import MAP_CRS, MAPSERV, Publisher, extent_of
from exporters.serving.webserver import check_port_free, nginx_conf
from pipeline.errors import KatasterError
from pipeline.processes import free_port, service_child
from schemas import queries

log = logging.getLogger(__name__)
QUERIES = queries("serving")


class Server:
    """The running services; use as a context manager or call :meth:`stop`."""

    def __init__(self, db, run_dir, host="127.0.0.1", port=8080, workers=2, with_ogcapi=True,
                 service=None, publisher=None, karten=None):
        # MapServer and pygeoapi connect as ``service`` (a read-only role), default ``db``.
        self.db = service or db
        self.publisher = publisher or Publisher()
        self.karten = Path(karten).resolve() if karten is not None else None
        self.run = Path(run_dir).resolve()
        self.host, self.port = host, port
        self.workers = workers
        self.with_ogcapi = with_ogcapi
        self.pids = []
        self.procs = []

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    def prepare(self):
        for need in (MAPSERV, shutil.which("spawn-fcgi"), shutil.which("nginx")):
            if not need or not os.path.exists(need):
                raise KatasterError("MapServer, spawn-fcgi or nginx is missing (run 'make setup', "
                                    "which installs cgi-mapserver, spawn-fcgi and nginx-light)")
        if self.run.exists():
            self._kill_stale_workers()
            shutil.rmtree(self.run)
        for d in ("tmp/body", "tmp/fastcgi", "tmp/proxy", "tmp/uwsgi", "tmp/scgi", "www"):
            (self.run / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.run, 0o700)
        self._check_read_only()
        extent = extent_of(self.db)
        for name, crs in MAP_CRS.items():
            (self.run / f"{name}.map").write_text(
                mapfile.mapfile(self.db.url, self.base_url, extent, self.publisher,
                                self.karten, crs), encoding="utf-8")
            os.chmod(self.run / f"{name}.map", 0o600)
        mapfile.templates(self.run)
        (self.run / "mapserver.conf").write_text(
            f'CONFIG\n  ENV\n    MS_MAP_PATTERN "^{self.run}/"\n'
            f'    MS_MAPFILE "{self.run}/kataster.map"\n    PROJ_DATA "/usr/share/proj"\n'
            '  END\n  MAPS\n' + "".join(f'    "{name}" "{self.run}/{name}.map"\n'
                                          for name in MAP_CRS) + '  END\nEND\n',
            encoding="utf-8")
        self.ogc_port = free_port()
        (self.run / "nginx.conf").write_text(nginx_conf(self.run, self.host, self.port,
                                                        self.ogc_port), encoding="utf-8")
        page.write(self.run / "www", self.db, extent, self.karten)

    def _check_read_only(self):
        """The services should connect as a role that can change nothing: say so if not."""
        with self.db.connect() as conn:
            role, writes = conn.execute(QUERIES["role_writes"]).fetchone()
        if writes:
            log.warning("the map services connect as %s, which may change the data; set "
                        "database.service_url to a read-only role (a member of kataster_leser, "
                        "see SECURITY.md)", role)

    def start(self):
        # Checked before anything is started or stopped: a busy port, or another instance
        # serving from this state directory, is refused without touching its processes.
        self._claim()
        check_port_free(self.host, self.port)
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _claim(self):
        """Hold a lock on the state directory's serve lock file for the life of this process:
        a second `kataster serve` on the same state would replace the first one's run
        directory and stop its MapServer workers."""
        import fcntl

        lock = self.run.parent / (self.run.name + ".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(lock, "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "?"
            self._lock.close()
            raise KatasterError(f"another 'kataster serve' (process {holder}) serves from this "
                                f"state directory ({self.run.parent}); stop it first, or use "
                                "another --state-dir") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(str(os.getpid()))
        self._lock.flush()

    def _start(self):
        self.prepare()
        env = dict(os.environ, MAPSERVER_CONFIG_FILE=str(self.run / "mapserver.conf"),
                   PROJ_DATA="/usr/share/proj")
        out = subprocess.run(["spawn-fcgi", "-s", str(self.run / "mapserv.sock"),
                              "-F", str(self.workers), "-M", "0600", "--", MAPSERV],
                             env=env, capture_output=True, text=True, timeout=30)
        for line in (out.stdout + out.stderr).splitlines():
            if "PID:" in line:
                self.pids.append(int(line.rsplit("PID:", 1)[1].strip()))
        if out.returncode != 0 or not self.pids:
            self.stop()
            raise KatasterError(f"spawn-fcgi failed: {out.stderr.strip() or out.stdout.strip()}")
        # spawn-fcgi daemonises the workers, so they cannot die with a killed launcher; the
        # next start in this run directory stops them (see _kill_stale_workers).
        (self.run / "mapserv.pids").write_text("\n".join(map(str, self.pids)) + "\n")
        self.procs.append(subprocess.Popen(
            ["nginx", "-c", str(self.run / "nginx.conf"), "-p", str(self.run)],
            stdout=subprocess.DEVNULL, stderr=open(self.run / "nginx.out", "w"),
            preexec_fn=service_child))
        if self.with_ogcapi:
            self._start_pygeoapi()
        self._wait()
        return self

    def _start_pygeoapi(self):
        import yaml

        cfg = self.run / "pygeoapi.yml"
        pages = pygeoapi_pages(self.run / "pygeoapi")
        extent = extent_of(self.db)
        tr = Transformer.from_crs(25832, 4326, always_xy=True)
        west, south = tr.transform(extent[0], extent[1])
        east, north = tr.transform(extent[2], extent[3])
        bbox = tuple(round(v, 6) for v in (west, south, east, north))
        cfg.write_text(yaml.safe_dump(pygeoapi_config(self.db.url, self.base_url, pages, bbox,
                                                      self.publisher),
                                      allow_unicode=True, sort_keys=False), encoding="utf-8")
        os.chmod(cfg, 0o600)
        openapi = self.run / "openapi.yml"
        env = dict(os.environ, PYGEOAPI_CONFIG=str(cfg), PYGEOAPI_OPENAPI=str(openapi))
        bindir = Path(sys.executable).parent
        with open(openapi, "w") as fh:
            gen = subprocess.run([str(bindir / "pygeoapi"), "openapi", "generate", str(cfg)],
                                 env=env, stdout=fh, stderr=subprocess.PIPE, text=True,
                                 timeout=120)
        if gen.returncode != 0:
            raise KatasterError(f"pygeoapi openapi generate failed: {gen.stderr[-500:]}")
        self.procs.append(subprocess.Popen(
            [str(bindir / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{self.ogc_port}",
             "--timeout", "120", "pygeoapi.flask_app:APP"], env=env,
            stdout=subprocess.DEVNULL, stderr=open(self.run / "pygeoapi.log", "w"),
            preexec_fn=service_child))

    def _wait(self, timeout=60):
        import urllib.request

        deadline = time.monotonic() + timeout
        urls = [f"{self.base_url}/wms?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0"]
        if self.with_ogcapi:
            urls.append(f"{self.base_url}/ogcapi/collections?f=json")
        for url in urls:
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=10) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    logs = ""
                    for name in ("nginx-error.log", "nginx.out", "pygeoapi.log"):
                        f = self.run / name
                        if f.exists():
                            logs += f"\n{name}: {f.read_text()[-800:]}"
                    self.stop()
                    raise KatasterError(f"the services did not come up at {url}{logs}")
                time.sleep(0.2)

    def _kill_stale_workers(self):
        """KILL MapServer workers left by a launcher that was killed (they carry our config)."""
        pidfile = self.run / "mapserv.pids"
        if not pidfile.exists():
            return
        marker = f"MAPSERVER_CONFIG_FILE={self.run / 'mapserver.conf'}".encode()
        for pid in map(int, pidfile.read_text().split()):
            try:
                with open(f"/proc/{pid}/environ", "rb") as fh:
                    if marker in fh.read().split(b"\0"):
                        os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass

    def stop(self, grace=5.0):
        """TERM every child, wait, then KILL what is left (by pid)."""
        pids = self.pids + [p.pid for p in self.procs]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for pid in pids:
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.pids, self.procs = [], []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # reap our own zombie children (spawn-fcgi's are reparented to init)
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
