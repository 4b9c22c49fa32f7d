"""What the map services share: who publishes them, the CRSs the mapfiles draw in, the
connection pieces for MapServer and pygeoapi, the paths of MapServer and the page's files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pyproj import Transformer

from schemas import queries

QUERIES = queries("serving")

WEB = Path(__file__).resolve().parents[1] / "web"
MAPSERV = "/usr/lib/cgi-bin/mapserv"


@dataclass(frozen=True)
class Publisher:
    """Who publishes the services, under which licence (configuration section ``serve``)."""

    organisation: str = "Stadtverwaltung, Vermessung und Kataster"
    contact_name: str = "GIS-Team Kataster"
    contact_email: str | None = None
    licence: str = "Datenlizenz Deutschland – Zero – Version 2.0 (dl-de/zero-2.0)"
    licence_url: str = "https://www.govdata.de/dl-de/zero-2-0"
    attribution: str = "Geobasis NRW"

    @classmethod
    def from_config(cls, config):
        return cls(**{f: config[f"serve.{f}"] for f in cls.__dataclass_fields__})


SRS = "EPSG:25832 EPSG:4258 EPSG:4326 EPSG:3857"
STATEMENT_TIMEOUT_MS = 10_000      # no map or feature request holds the database longer
TILE_LAYERS = "gemarkung,flur,gebaeude,flurstueck"     # the OGC API pages' base map
# The mapfiles, by the CRS they draw in: nginx sends a request in EPSG:3857 (the map page's and
# the OGC API pages' tiles) to kataster_3857, every other one to kataster (EPSG:25832, the
# data's CRS, which QGIS uses). Each is free of projection work in its own CRS.
MAP_CRS = {"kataster": 25832, "kataster_3857": 3857}
WEB_MAP = next(name for name, crs in MAP_CRS.items() if crs == 3857)


def conninfo(url):
    """libpq keyword conninfo (MapServer and pygeoapi take the pieces)."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    info = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 5432,
            "dbname": parts.path.lstrip("/"), "user": parts.username or ""}
    if parts.password:
        info["password"] = parts.password
    elif "passfile" in query:
        with open(query["passfile"]) as fh:     # MapServer/pygeoapi need the password itself
            for line in fh:
                host, port, _db, user, pw = line.rstrip("\n").split(":", 4)
                if user == info["user"] and port in (str(info["port"]), "*"):
                    info["password"] = pw
    return info


def transform_extent(extent, crs):
    box = Transformer.from_crs(25832, crs, always_xy=True).transform_bounds(*extent)
    return tuple(round(v, 1) for v in box)


def extent_of(db):
    with db.connect() as conn:
        row = conn.execute(QUERIES["extent"]).fetchone()
    if row[0] is None:
        return (340000.0, 5685000.0, 370000.0, 5710000.0)
    return tuple(round(v, 1) for v in row)
