"""The web server: nginx's configuration (one port for the WMS, the tiles, the OGC API and the
page) and the check that the port is free."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from exporters.serving.settings import MAPSERV, TILE_LAYERS, WEB_MAP
from pipeline.errors import KatasterError


def check_port_free(host, port):
    """Refuse a port something already listens on, naming the process where it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            holder = port_holder(port)
            raise KatasterError(f"port {port} on {host} is in use"
                                + (f" by {holder}" if holder else "")
                                + f" ({err.strerror}); stop it or choose another with "
                                  "--port") from None


def port_holder(port):
    """'process PID (command)' listening on ``port``, found through /proc, or ''."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    cmd = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
                    return f"process {proc.name} ({cmd})"
        except OSError:
            continue
    return ""


def nginx_conf(run, host, port, pygeoapi_port):  # noqa: W605
    # Started by root, nginx would hand its workers to an unprivileged user that cannot enter
    # the (mode 700) run directory; the services listen on loopback only by default.
    user = "user root root;" if os.geteuid() == 0 else ""
    return f"""daemon off;
{user}
worker_processes 2;
pid {run}/nginx.pid;
error_log {run}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {run}/tmp/body;
  fastcgi_temp_path {run}/tmp/fastcgi;
  proxy_temp_path {run}/tmp/proxy;
  uwsgi_temp_path {run}/tmp/uwsgi;
  scgi_temp_path {run}/tmp/scgi;
  types {{ text/html html; application/javascript js; text/css css; image/png png;
          application/json json; }}
  # MapServer 8.0 answers an unknown CRS with InvalidSRS; WMS 1.3.0 says InvalidCRS.
  map $args $wms_crs_code {{
    "~*(^|&)version=1[.]3[.]0" 'code="InvalidCRS"';
    default 'code="InvalidSRS"';
  }}
  # The mapfile drawing a GetMap in the request's CRS (MAP_CRS); WMS 1.3.0 names it CRS,
  # 1.1.1 SRS. Every other request (feature info, legends, capabilities, WFS) goes to the
  # first: the web map's mapfile clips large polygons to the box (_clip_token).
  map "$arg_request:$arg_crs$arg_srs" $kataster_map {{
    "~*^getmap:epsg:3857$" {WEB_MAP};
    default kataster;
  }}
  server {{
    listen {host}:{port};
    location /wms {{
      set $args "$args&map=$kataster_map";
      sub_filter 'code="InvalidSRS"' $wms_crs_code;
      sub_filter_once off;
      sub_filter_types text/xml application/vnd.ogc.se_xml;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME {MAPSERV};
      fastcgi_pass unix:{run}/mapserv.sock;
    }}
    # XYZ tiles of the WMS for the OGC API pages' maps (MapServer's tile mode); a path without
    # '&', which the pages' templates would escape.
    location ~ "^/kacheln/([0-9]+)/([0-9]+)/([0-9]+)[.]png$" {{
      set $args "mode=tile&tilemode=gmap&tile=$2+$3+$1&layers={TILE_LAYERS}&map={WEB_MAP}";
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME {MAPSERV};
      fastcgi_pass unix:{run}/mapserv.sock;
    }}
    location = /ogcapi {{ return 301 /ogcapi/; }}
    location /ogcapi/ {{
      proxy_pass http://127.0.0.1:{pygeoapi_port}/;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto http;
    }}
    location / {{ root {run}/www; index index.html; }}
  }}
}}
"""
