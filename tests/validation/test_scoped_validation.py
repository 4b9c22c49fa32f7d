"""The validation after an update looks only where the update can change findings, and leaves
exactly what a full validation of the same state would leave."""

import json
import random

import pytest
import shapely
import shapely.affinity
from conftest import kataster, query

from pipeline.synthetic.nas import write
from pipeline.synthetic.nas_writer import Amount, Ref, Writer, open_output, versioned_id

pytestmark = pytest.mark.slow

PARCEL = """
SELECT gml_id, to_char(beginnt AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), land,
       gemarkungsnummer, flurnummer, zaehler, nenner, flurstueckskennzeichen, amtliche_flaeche,
       ist_gebucht, weist_auf, ST_AsBinary(ST_GeometryN(geom, 1))
FROM kataster.ax_flurstueck WHERE endet IS NULL"""
STORED = """
SELECT 'kataster', key, status FROM kataster.finding WHERE rule <> 'coverage.precision'
UNION ALL SELECT 'kataster_privat', key, status FROM kataster_privat.finding"""


def feature(row, beginnt, geom=None, fsk=None, flur=None, area=None):
    """A complete new version of a stored parcel (``row`` from PARCEL), optionally changed."""
    gml_id, _, land, gem, old_flur, zaehler, nenner, old_fsk, old_area, gebucht, weist, wkb = row
    flur = old_flur if flur is None else flur
    fsk = old_fsk if fsk is None else fsk
    nummer = {"zaehler": str(zaehler), **({"nenner": nenner} if nenner else {})}
    props = [("gemarkung", {"AX_Gemarkung_Schluessel": {"land": land, "gemarkungsnummer": gem}}),
             ("flurstuecksnummer", {"AX_Flurstuecksnummer": nummer}),
             ("flurstueckskennzeichen", fsk),
             ("amtlicheFlaeche", Amount(f"{old_area if area is None else area:.2f}")),
             ("flurnummer", str(flur)), ("zeitpunktDerEntstehung", beginnt[:10])]
    props += [("istGebucht", Ref(b)) for b in gebucht or []]
    props += [("weistAuf", Ref(w)) for w in weist or []]
    return {"type": "AX_Flurstueck", "id": gml_id, "beginnt": beginnt,
            "geom": ("position", geom if geom is not None else shapely.from_wkb(bytes(wkb))),
            "props": props}


def test_scoped_validation_equals_full_on_random_updates(cli_env, db, tmp_path):
    """A generated city, validated whole; then random NBA updates (parcels moved, shrunk,
    grown over their neighbours, relabelled to another Flur, moved into a parcel of another
    Flur, given another parcel's key or a wrong area, deleted, new slivers inserted, earlier
    shapes restored), each imported with the
    default validation after the import, which looks only at what the update touched. After
    every update a full validation of the same state finds exactly the findings stored, with
    the same status (some were accepted on the way), creates none and fixes none."""
    env = {**cli_env, "KATASTER_VALIDATION_AFTER_IMPORT": "true"}
    city = tmp_path / "city.xml"
    write(160, city, version="7.1", seed=11)
    kataster("import", city, env=env, check=True)
    original = {r[0]: r for r in query(db, PARCEL)}
    fluren = sorted({(r[2], r[3], r[4]) for r in original.values()})
    rng = random.Random(20261202)
    seen_rules, scoped_sizes = set(), []
    for step in range(8):
        beginnt = f"2026-05-{step + 1:02d}T00:00:00Z"
        current = {r[0]: r for r in query(db, PARCEL)}
        ids = sorted(current)
        inserts, replaces, deletes, done = [], [], [], set()
        for _ in range(rng.randint(2, 5)):
            gid = rng.choice(ids)
            if gid in done:
                continue
            done.add(gid)
            row = current[gid]
            geom = shapely.from_wkb(bytes(row[-1]))
            kind = rng.choice(["shift", "shrink", "grow", "flur", "intrude", "duplicate", "area",
                               "delete", "sliver", "restore"])
            new = None
            if kind == "shift":
                new = feature(row, beginnt, geom=shapely.affinity.translate(
                    geom, rng.uniform(-2, 2), rng.uniform(-2, 2)))
            elif kind == "shrink":
                new = feature(row, beginnt, geom=shapely.affinity.scale(geom, 0.9, 0.9))
            elif kind == "grow":
                new = feature(row, beginnt, geom=shapely.affinity.scale(geom, 1.05, 1.05))
            elif kind == "flur":
                land, gem, flur = rng.choice([f for f in fluren if f[:2] == row[2:4]
                                              and f[2] != row[4]] or [row[2:5]])
                new = feature(row, beginnt, flur=flur,
                              fsk=row[7][:6] + f"{flur:03d}" + row[7][9:])
            elif kind == "intrude":    # a small copy of it inside a parcel of another Flur
                other = current[rng.choice([i for i in ids if current[i][2:5] != row[2:5]])]
                at = shapely.point_on_surface(shapely.from_wkb(bytes(other[-1])))
                small = shapely.affinity.scale(geom, 0.2, 0.2)
                c = shapely.centroid(small)
                new = feature(row, beginnt, geom=shapely.affinity.translate(
                    small, at.x - c.x, at.y - c.y))
            elif kind == "duplicate":
                other = current[rng.choice(ids)]
                new = feature(row, beginnt, fsk=other[7])
            elif kind == "area":
                new = feature(row, beginnt, area=row[8] * 1.5 + 10)
            elif kind == "restore":
                new = feature(original.get(gid, row), beginnt)
            elif kind == "sliver":
                centre = shapely.point_on_surface(geom)
                sliver = shapely.box(centre.x - 0.1, centre.y - 5, centre.x + 0.1, centre.y + 5)
                sid = f"DENWSC{step:02d}{len(inserts):08d}"
                zaehler = 90000 + step * 100 + len(inserts)
                inserts.append(feature(
                    (sid, None, row[2], row[3], row[4], zaehler, None,
                     row[7][:9] + f"{zaehler:05d}______", 2.0, row[9], [], None),
                    beginnt, geom=sliver))
                continue
            if new is None:
                deletes.append(("AX_Flurstueck", versioned_id(gid, row[1])))
            else:
                replaces.append((new, versioned_id(gid, row[1]), False))
        update = tmp_path / f"nba_{step}.xml"
        with open_output(update) as fh:
            Writer("7.1", prefix="adv").nba(inserts, replaces, deletes, beginnt, fh)
        run = json.loads(kataster("import", update, "--json", env=env, check=True).stdout)
        assert run["status"] == "committed"
        [(options,)] = query(db, "SELECT options FROM kataster.import_run WHERE id = %s",
                             (run["validation"]["run_id"],))
        scoped_sizes.append(options["touched"])     # the validation after it was scoped
        if step in (2, 5):       # people accepted some findings
            with db.connect() as conn:
                conn.execute("UPDATE kataster.finding SET status = 'accepted' WHERE id IN ("
                             "SELECT id FROM kataster.finding WHERE status = 'open'"
                             " ORDER BY key LIMIT 3)")
                conn.commit()
        stored = sorted(query(db, STORED))
        full = json.loads(kataster("validate", "--json", env=cli_env, check=True).stdout)
        after = sorted(query(db, STORED))
        assert after == stored, (step, sorted(set(after) ^ set(stored)))
        seen_rules |= {f["rule"] for f in full["findings"]}
    # The updates raised findings of every kind the scope treats differently.
    assert {"coverage.overlap", "coverage.gap", "district.outside", "id.duplicate",
            "area.deviation", "geometry.sliver"} <= seen_rules, seen_rules
    assert all(0 < n < 40 for n in scoped_sizes), scoped_sizes
