"""A deterministic synthetic *Mülheim-like* cadastre in the shape of "ALKIS vereinfacht".

It uses the real 14 Gemarkung keys and Flur numbers of Mülheim an der Ruhr (shipped in
``schemas/data/nrw_gemarkungen.json``). Parcels are the cells of a Voronoi diagram of a jittered
grid (about 18 m × 33 m lots), so they tile the city without gaps or overlaps and neighbours
share their vertices exactly; Gemarkungen and Fluren are unions of whole parcels, so their
borders follow parcel edges. Every parcel gets a Flurstückskennzeichen, a book area
(amtliche Fläche) that differs from the computed area like real book values do, a street
address, and most get a building inside them.

The same seed always gives the same files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from pipeline.errors import UsageError
from schemas import DATA_DIR

# South-west corners in EPSG:25832: Mülheim an der Ruhr lies at about 347–359 km E,
# 5,693–5,705 km N; Oberhausen north of it (about 343–355 km E, 5,704–5,714 km N).
ORIGIN = (348_500.0, 5_693_500.0)
LOT = (18.0, 33.0)                    # grid spacing in metres: ~600 m² per parcel
JITTER = 0.32
AUTHORITY = "DENW36AL"               # DE + NW + authority + AL
STREET_STEMS = ["Ahorn", "Birken", "Eichen", "Linden", "Mühlen", "Kirch", "Schul", "Berg",
                "Wald", "Garten", "Bahnhof", "Ruhr", "Feld", "Rosen", "Tannen", "Buchen",
                "Hof", "Brunnen", "Kamp", "Heide", "Weiden", "Schloss", "Markt", "Sonnen"]
STREET_KINDS = ["straße", "weg", "allee", "ring", "gasse", "pfad"]
USES = [("Wohnbaufläche", 0.62), ("Industrie- und Gewerbefläche", 0.1), ("Grünanlage", 0.1),
        ("Landwirtschaft", 0.1), ("Wald", 0.08)]
BUILDING_KINDS = [("Wohnen", 1000), ("Gewerbe und Industrie", 2000), ("Öffentliche Zwecke", 3000)]
FORMATS = {"gpkg": ("GPKG", ".gpkg"), "shp": ("ESRI Shapefile", ".shp"),
           "geojson": ("GeoJSON", ".geojson"), "fgb": ("FlatGeobuf", ".fgb"),
           "gml": ("GML", ".gml")}
LAYERS = ("Flurstueck", "GebaeudeBauwerk", "KatasterBezirk")


CITIES = {
    "Mülheim": {"katasteramt": "Mülheim a.d. Ruhr", "gemeinde": "Mülheim an der Ruhr",
                "kreis": "17", "origin": ORIGIN, "authority": AUTHORITY},
    # A neighbour, for demos that need a second, non-overlapping data set.
    "Oberhausen": {"katasteramt": "Oberhausen", "gemeinde": "Oberhausen", "kreis": "19",
                   "origin": (344_500.0, 5_706_500.0), "authority": "DENW37AL"},
}


def muelheim(city="Mülheim"):
    """A city's Gemarkungen: list of (gemarkungsnummer, name, [flur numbers])."""
    data = json.loads((DATA_DIR / "nrw_gemarkungen.json").read_text(encoding="utf-8"))
    amt = CITIES[city]["katasteramt"]
    rows = [(g["gemarkungsnummer"], g["name"], g["fluren"]) for g in data["gemarkungen"]
            if g["katasteramt"] == amt]
    return sorted(rows)


def id_tag(city, seed, n):
    """Two characters that give each generated city (name, seed and size) its own object ids,
    so that a sample generated after another never reuses the other's ids."""
    import zlib

    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    h = zlib.crc32(f"{city}:{seed}:{n}".encode()) % (36 * 36)
    return digits[h // 36] + digits[h % 36]


def _nearest(points, seeds):
    """Index of the nearest seed for every point (chunked, vectorised)."""
    out = np.empty(len(points), dtype=np.int64)
    step = max(1, 4_000_000 // max(len(seeds), 1))
    for i in range(0, len(points), step):
        p = points[i:i + step]
        d = ((p[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=2)
        out[i:i + step] = d.argmin(axis=1)
    return out


# The layout of a delivery without a real Flur structure (the daily-updates issue, point 5).
FLAT_FLUREN = 20


def build(n, seed=1, city="Mülheim", layout="city"):
    """Build the synthetic cadastre in memory.

    ``layout`` "city" spreads the parcels over the city's Gemarkungen and their Fluren;
    "flat" puts them all into the first Gemarkung, in :data:`FLAT_FLUREN` Fluren that are
    bands of the grid's rows (50,000 parcels each at 1,000,000), and writes no district
    boundaries, as a delivery without a real Flur structure has.

    Returns
    -------
    dict of GeoDataFrame
        ``Flurstueck``, ``GebaeudeBauwerk`` and (layout "city") ``KatasterBezirk`` in
        EPSG:25832.

    Examples
    --------
    >>> layers = build(500, seed=3)
    >>> len(layers["Flurstueck"])
    500
    """
    rng = np.random.default_rng(seed)
    gemarkungen = muelheim(city)
    spec = CITIES[city]
    ORIGIN = spec["origin"]  # noqa: N806 - the city's corner
    AUTHORITY = spec["authority"]  # noqa: N806
    cols = int(np.ceil(np.sqrt(n * LOT[1] / LOT[0])))
    rows = int(np.ceil(n / cols))
    idx = np.arange(n)
    gx, gy = idx % cols, idx // cols
    x = ORIGIN[0] + (gx + 0.5 + rng.uniform(-JITTER, JITTER, n)) * LOT[0]
    y = ORIGIN[1] + (gy + 0.5 + rng.uniform(-JITTER, JITTER, n)) * LOT[1]
    pts = np.column_stack([x, y])
    frame = shapely.box(ORIGIN[0], ORIGIN[1], ORIGIN[0] + cols * LOT[0], ORIGIN[1] + rows * LOT[1])
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame,
                                                       ordered=True))
    cells = shapely.intersection(cells, frame)
    # Millimetre coordinates, as in real extracts; shared vertices round identically.
    cells = shapely.transform(cells, lambda c: np.round(c, 3))

    # Gemarkungen: nearest of 14 seeds on a jittered 4 x 4 grid; Fluren: nearest of seeds
    # drawn from the Gemarkung's own parcels, so every Flur holds at least one parcel.
    w, h = cols * LOT[0], rows * LOT[1]
    gseed = np.array([[ORIGIN[0] + (i % 4 + 0.5 + rng.uniform(-0.25, 0.25)) * w / 4,
                       ORIGIN[1] + (i // 4 + 0.5 + rng.uniform(-0.25, 0.25)) * h / 4]
                      for i in range(len(gemarkungen))])
    gem = _nearest(pts, gseed)
    flur = np.zeros(n, dtype=np.int64)
    if layout == "flat":
        gem[:] = 0
        flur = 1 + gy * FLAT_FLUREN // rows
        gemarkungen = gemarkungen[:1]
    elif layout != "city":
        raise UsageError(f"unknown layout {layout!r}; choose city or flat")
    for g, (_, _, fluren) in enumerate([] if layout == "flat" else gemarkungen):
        members = np.flatnonzero(gem == g)
        k = min(len(fluren), len(members))
        if k == 0:
            continue
        seeds = pts[rng.choice(members, size=k, replace=False)]
        flur[members] = np.asarray(fluren)[:k][_nearest(pts[members], seeds)]

    df = pd.DataFrame({"g": gem, "flur": flur, "x": x, "y": y, "row": gy})
    df["gemnr"] = [gemarkungen[g][0] for g in gem] if n < 50_000 else \
        np.asarray([g[0] for g in gemarkungen])[gem]
    df["gemname"] = np.asarray([g[1] for g in gemarkungen])[gem]
    # Numbering: west to east, north to south within each Flur; ~15 % are split parcels
    # that share their Zähler with the previous one and carry a Nenner.
    df = df.sort_values(["gemnr", "flur", "y", "x"], ascending=[True, True, False, True])
    first = ~df.duplicated(["gemnr", "flur"])
    split = (rng.random(n) < 0.15) & ~first.to_numpy()
    df["zaehler"] = (~pd.Series(split, index=df.index)).groupby(
        [df["gemnr"], df["flur"]]).cumsum().astype(int)
    grp = df.groupby(["gemnr", "flur", "zaehler"])
    size = grp["x"].transform("size")
    df["nenner"] = np.where(size > 1, grp.cumcount() + 1, 0)
    df = df.sort_index()

    area = shapely.area(cells)
    book = np.maximum(1, np.round(area * (1 + rng.normal(0, 0.0015, n))))
    prefix = AUTHORITY + id_tag(city, seed, n)     # 10 characters; 6 hex digits follow
    gml = np.char.add(prefix, np.char.mod("%06X", idx))
    nenner = df["nenner"].to_numpy()
    fsk = (pd.Series("05", index=df.index) + df["gemnr"] + df["flur"].map("{:03d}".format)
           + df["zaehler"].map("{:05d}".format)
           + np.where(nenner > 0, pd.Series(nenner).map("{:04d}".format), "____") + "__")
    # Streets: each grid row of a Flur is one street; house numbers run west to east.
    street_id = (df["gemnr"].astype(int) * 7 + df["flur"] * 3 + df["row"] // 2) % (
        len(STREET_STEMS) * len(STREET_KINDS))
    street = (np.asarray(STREET_STEMS)[street_id // len(STREET_KINDS)]
              + np.asarray(STREET_KINDS)[street_id % len(STREET_KINDS)])
    house = df.assign(s=street).sort_values("x").groupby(["gemnr", "s"]).cumcount() + 1
    address = pd.Series(street, index=df.index) + " " + house.sort_index().astype(str)
    use = rng.choice(len(USES), size=n, p=[u[1] for u in USES])
    use_name = np.asarray([u[0] for u in USES])[use]

    parcels = gpd.GeoDataFrame({
        "idflurst": gml,
        "flstkennz": fsk.to_numpy(),
        "land": "Nordrhein-Westfalen",
        "landschl": "05",
        "gemarkung": df["gemname"].to_numpy(),
        "gemaschl": ("05" + df["gemnr"]).to_numpy(),
        "flur": df["flur"].map("{:03d}".format).to_numpy(),
        "flurschl": ("05" + df["gemnr"] + df["flur"].map("{:03d}".format)).to_numpy(),
        "flstnrzae": df["zaehler"].astype(str).to_numpy(),
        "flstnrnen": np.where(nenner > 0, nenner.astype(str), None),
        "regbezirk": "Düsseldorf",
        "regbezschl": "051",
        "kreis": spec["gemeinde"],
        "kreisschl": "051" + spec["kreis"],
        "gemeinde": spec["gemeinde"],
        "gmdschl": "051" + spec["kreis"] + "000",
        "oid": np.char.add(gml, "FL"),
        "aktualit": "2026-01-15",
        "flaeche": book,
        "abwrecht": "Kein abweichender Rechtszustand",
        "lagebeztxt": address.to_numpy(),
        "tntxt": np.char.add(np.char.add(use_name.astype(str), ";"), book.astype(int).astype(str)),
    }, geometry=gpd.GeoSeries(shapely.multipolygons(cells, indices=idx), crs=25832))

    # Buildings: 70 % of parcels, the parcel shrunk to 45 % about its centroid (cells are
    # convex, so the building lies inside its parcel).
    built = np.flatnonzero((rng.random(n) < 0.7) & (use_name == "Wohnbaufläche")
                           | (rng.random(n) < 0.3))
    bcells = cells[built]
    coords, which = shapely.get_coordinates(bcells, return_index=True)
    centre = shapely.get_coordinates(shapely.centroid(bcells))[which]
    coords = np.round(centre + (coords - centre) * 0.45, 3)
    bgeoms = shapely.set_coordinates(bcells.copy(), coords)
    kind = rng.choice(len(BUILDING_KINDS), size=len(built), p=[0.8, 0.15, 0.05])
    buildings = gpd.GeoDataFrame({
        "oid": np.char.add(np.char.add(prefix, np.char.mod("%06X", built + 0x800000)), "BW"),
        "aktualit": "2026-01-15",
        "gebnutzbez": np.asarray([k[0] for k in BUILDING_KINDS])[kind],
        "gfkzshh": np.asarray([k[1] for k in BUILDING_KINDS])[kind],
        "anzahlgs": rng.integers(1, 5, len(built)),
        "lagebeztxt": address.to_numpy()[built],
        "gemaschl": parcels["gemaschl"].to_numpy()[built],
    }, geometry=gpd.GeoSeries(shapely.multipolygons(bgeoms, indices=np.arange(len(built))),
                              crs=25832))
    if layout == "flat":
        return {"Flurstueck": parcels, "GebaeudeBauwerk": buildings}

    # Flur boundaries: the coverage union of each Flur's parcels.
    keys = parcels["flurschl"].to_numpy()
    order = np.argsort(keys, kind="stable")
    uniq, starts = np.unique(keys[order], return_index=True)
    bounds = np.split(order, starts[1:])
    unions = [shapely.coverage_union_all(cells[b]) for b in bounds]
    first_idx = [b[0] for b in bounds]
    districts = gpd.GeoDataFrame({
        "land": "Nordrhein-Westfalen", "landschl": "05",
        "gemarkung": parcels["gemarkung"].to_numpy()[first_idx],
        "gemaschl": parcels["gemaschl"].to_numpy()[first_idx],
        "flur": parcels["flur"].to_numpy()[first_idx],
        "flurschl": uniq, "aktualit": "2026-01-15",
    }, geometry=gpd.GeoSeries([shapely.MultiPolygon(shapely.get_parts(u)) if u.geom_type ==
                               "Polygon" else u for u in unions], crs=25832))
    return {"Flurstueck": parcels, "GebaeudeBauwerk": buildings, "KatasterBezirk": districts}


def generate(n, out, fmt="gpkg", seed=1, city="Mülheim", layout="city"):
    """Write the synthetic cadastre with ``n`` parcels to ``out`` (``layout``: see
    :func:`build`).

    ``gpkg`` writes one file with three layers; ``shp``, ``geojson``, ``fgb`` and ``gml``
    write a directory with one file per layer (GML as GML 3.2, like a WFS answer).
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    started = time.monotonic()
    layers = build(n, seed, city, layout)
    driver, suffix = FORMATS[fmt]
    out = Path(out)
    if fmt == "gpkg":
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.unlink()
        for name, gdf in layers.items():
            pyogrio.write_dataframe(gdf, out, layer=name, driver=driver, append=out.exists())
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name, gdf in layers.items():
            target = out / f"{name}{suffix}"
            opts = {"encoding": "UTF-8"} if fmt == "shp" else {}
            if fmt == "gml":
                opts = {"dataset_options": {"FORMAT": "GML3.2"}}
            pyogrio.write_dataframe(gdf, target, driver=driver, **opts)
    flur_count = int(layers["Flurstueck"]["flurschl"].nunique())
    return {"out": str(out), "format": fmt, "parcels": int(len(layers["Flurstueck"])),
            "buildings": int(len(layers["GebaeudeBauwerk"])),
            "gemarkungen": int(layers["Flurstueck"]["gemaschl"].nunique()),
            "fluren": flur_count, "seed": seed,
            "seconds": round(time.monotonic() - started, 3)}


PLANTED = ("coverage.overlap", "coverage.gap", "coverage.hole", "geometry.invalid", "id.duplicate",
           "area.deviation", "district.outside", "id.syntax", "geometry.sliver")


def plant_errors(layers, per_kind=3, seed=1):
    """Plant known errors into generated layers (for validation tests and benchmarks).

    Each victim is an interior parcel in its own Flur, so planted errors do not touch each
    other. Returns ``(layers, expected)``: the changed layers and a list of
    ``(rule, gml_id)`` that validation must report (the parcel is the finding's object or
    among its related objects). ``coverage.hole`` is reported as ``coverage.gap``.
    """
    rng = np.random.default_rng(seed)
    parcels = layers["Flurstueck"].copy()
    geoms = parcels.geometry.values
    frame = shapely.box(*shapely.total_bounds(geoms))
    interior = ~shapely.intersects(shapely.buffer(geoms, 1.0), frame.boundary)
    candidates = parcels.index[interior].to_numpy()
    by_flur = pd.Series(candidates).groupby(parcels.loc[candidates, "flurschl"].to_numpy()).first()
    victims = rng.permutation(by_flur.to_numpy())
    need = per_kind * len(PLANTED)
    if len(victims) < need:
        raise UsageError(f"need at least {need} Fluren with interior parcels to plant errors")
    expected, drop, add = [], [], []
    flurs = parcels["flurschl"].unique()
    for k, kind in enumerate(PLANTED):
        for i in victims[k * per_kind:(k + 1) * per_kind]:
            gml = parcels.at[i, "idflurst"]
            g = parcels.geometry.at[i]
            if kind == "coverage.overlap":
                parcels.loc[i, "geometry"] = _multi(shapely.buffer(g, 0.5, join_style="mitre"))
            elif kind == "coverage.gap":
                parcels.loc[i, "geometry"] = _multi(shapely.buffer(g, -0.2, join_style="mitre"))
            elif kind == "coverage.hole":
                drop.append(i)
                neighbour = parcels.index[shapely.touches(geoms, g)][0]
                expected.append(("coverage.gap", parcels.at[neighbour, "idflurst"]))
                continue
            elif kind == "geometry.invalid":
                x0, y0, x1, y1 = g.bounds
                parcels.loc[i, "geometry"] = shapely.MultiPolygon([shapely.Polygon(
                    [(x0, y0), (x1, y1), (x1, y0), (x0, y1)])])
            elif kind == "id.duplicate":
                j = parcels.index[shapely.touches(geoms, g)][0]
                parcels.loc[i, "flstkennz"] = parcels.at[j, "flstkennz"]
            elif kind == "area.deviation":
                parcels.loc[i, "flaeche"] = round(parcels.at[i, "flaeche"] * 1.25)
            elif kind == "district.outside":
                other = next(f for f in rng.permutation(flurs) if f != parcels.at[i, "flurschl"])
                fsk = parcels.at[i, "flstkennz"]
                parcels.loc[i, "flstkennz"] = "05" + other[2:6] + other[6:9] + "9" + fsk[10:]
                parcels.loc[i, ["gemaschl", "flurschl", "flur"]] = [other[:6], other, other[6:9]]
            elif kind == "id.syntax":
                parcels.loc[i, "flstkennz"] = parcels.at[i, "flstkennz"][:-3] + "X"
            elif kind == "geometry.sliver":
                ring = shapely.get_exterior_ring(shapely.get_geometry(g, 0))
                a, b = shapely.get_coordinates(ring)[:2]
                edge = shapely.LineString([a, b])
                strip = shapely.intersection(g, shapely.buffer(edge, 0.3, cap_style="flat"))
                rest = shapely.difference(g, strip)
                parcels.loc[i, "geometry"] = _multi(rest)
                new = parcels.loc[[i]].copy()
                new["idflurst"] = gml[:10] + "S" + gml[11:]
                new["flstkennz"] = parcels.at[i, "flstkennz"][:14] + "0099__"
                new["flaeche"] = max(1, round(strip.area))
                new["geometry"] = [_multi(strip)]
                add.append(new)
                expected.append((kind, new["idflurst"].iat[0]))
                continue
            expected.append((kind, gml))
    parcels = pd.concat([parcels.drop(index=drop), *add], ignore_index=True)
    out = dict(layers)
    out["Flurstueck"] = gpd.GeoDataFrame(parcels, geometry="geometry", crs=25832)
    return out, expected


def _multi(geom):
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    return shapely.MultiPolygon(parts)
