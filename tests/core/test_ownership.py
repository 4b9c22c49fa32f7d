"""Ownership chains resolved into kataster_privat.eigentum, and privacy of owner data."""

import shapely
from conftest import kataster, query, url_as
from owners import PEOPLE, B, anschrift, features, nn, parcel, person, pid, sheet, stelle

from pipeline.db import Database
from pipeline.synthetic.nas_writer import Ref, Writer, open_output


def test_ownership_chains(cli_env, db, tmp_path):
    path = tmp_path / "owners.xml"
    with open_output(path) as fh:
        Writer("7.1", prefix="adv").extract(features(), fh)
    proc = kataster("import", path, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    rows = query(db, "SELECT right(flurstueckskennzeichen, 9), buchungsart, name, vorname,"
                     " anteil_zaehler, anteil_nenner, rechtsgemeinschaft"
                     " FROM kataster_privat.eigentum ORDER BY 1, 3")
    got = [(fsk[:3], art, name, z and int(z), n and int(n), rg) for fsk, art, name, _, z, n, rg
           in rows]
    assert got == [
        ("001", 1100, "Adlerqx", None, None, "Erbengemeinschaft"),
        ("001", 1100, "Bergqx", None, None, "Erbengemeinschaft"),
        ("001", 1100, "Clausqx", 1, 2, None),
        ("002", 1301, "Dornqx", 3, 10, None),       # 3/10 × 1/1
        ("002", 1301, "Eichqx", 7, 20, None),       # 7/10 × 1/2, decimals read exactly
        ("002", 1301, "Finkqx", 7, 20, None),
        ("003", 1100, "Grafqx", None, None, None),  # the owner of the land …
        ("003", 2101, "Hahnqx", None, None, None),  # … and the Erbbaurecht, kept apart
    ]
    findings = query(db, "SELECT rule, object_id FROM kataster_privat.finding ORDER BY 1, 2")
    assert ("owner.unbooked", "DENW36AL0000P004") in findings     # no istGebucht
    assert ("owner.unbooked", "DENW36AL0000P005") in findings     # booking not stored
    assert any(rule == "owner.chain" for rule, _ in findings)      # the cycle
    # Owner findings never reach the public findings.
    assert query(db, "SELECT count(*) FROM kataster.finding WHERE rule LIKE 'owner.%'")[0][0] == 0


def test_owner_data_never_in_the_public_schema(cli_env, db, tmp_path):
    path = tmp_path / "owners.xml"
    with open_output(path) as fh:
        Writer("6.0").extract(features(), fh)
    kataster("import", path, env=cli_env, check=True)
    tables = query(db, "SELECT table_name FROM information_schema.tables"
                       " WHERE table_schema = 'kataster' AND table_type = 'BASE TABLE'")
    for (table,) in tables:
        text = query(db, f'SELECT coalesce(string_agg(t::text, \' \'), \'\') FROM kataster."{table}" t')[0][0]  # noqa: E501
        for name, vorname in PEOPLE.values():
            assert name not in text and vorname not in text, table
        assert "Geheimweg" not in text and "1970-01-01" not in text, table
    counts = dict(query(db, "SELECT objektart, count(*) FROM kataster_privat.ax_objekt GROUP BY 1"))
    assert counts == {}
    assert query(db, "SELECT count(*) FROM kataster_privat.ax_person")[0][0] == len(PEOPLE)
    assert query(db, "SELECT count(*) FROM kataster_privat.ax_anschrift")[0][0] == len(PEOPLE)


def test_owner_rules_planted(cli_env, db, tmp_path):
    import json

    from pipeline.validation.findings import may_see_owners

    f = features()
    # Plant: a sheet without owner, a booking reaching no parcel, an orphan person and address,
    # a Namensnummer whose sheet is missing, shares adding up to 5/6, a divided property at 9/10.
    f.append(sheet("DENW36AL00000S90"))
    f.append(stelle("DENW36AL00000B90", 1100, "DENW36AL00000S90"))
    f.append(person("DENW36AL00000X9P", "Waisqx", "Otto"))
    f.append(anschrift("DENW36AL00000X9A"))
    f.append(nn("DENW36AL0000N099", "DENW36AL00000S99", "0001.00.00.00.00", pid("P1")))
    f.append(parcel(7, "DENW36AL00000B71"))
    f += [sheet("DENW36AL00000S71"),
          stelle("DENW36AL00000B71", 1100, "DENW36AL00000S71"),
          nn("DENW36AL0000N711", "DENW36AL00000S71", "0001.00.00.00.00", pid("P2"), ("1", "2")),
          nn("DENW36AL0000N712", "DENW36AL00000S71", "0002.00.00.00.00", pid("P3"), ("1", "3"))]
    f.append(parcel(8, "DENW36AL00000B81"))
    f += [sheet("DENW36AL00000S81", 5000), sheet("DENW36AL00000S82"),
          stelle("DENW36AL00000B81", 1101, "DENW36AL00000S81"),
          stelle("DENW36AL00000B82", 1301, "DENW36AL00000S82", ("9", "10"), ["DENW36AL00000B81"]),
          nn("DENW36AL0000N821", "DENW36AL00000S82", "0001.00.00.00.00", pid("P4"), ("1", "1"))]
    path = tmp_path / "planted_owners.xml"
    with open_output(path) as fh:
        Writer("6.0").extract(f, fh)
    kataster("import", path, env=cli_env, check=True)
    rules = "owner.unbooked,owner.no_parcel,owner.sheet_without_owner,owner.orphan," \
            "owner.shares,owner.chain"
    public = json.loads(kataster("validate", "--rules", rules, "--json", env=cli_env,
                                 check=True).stdout)
    assert public["findings"] == []                 # nothing personal without --private
    private = json.loads(kataster("validate", "--rules", rules, "--json", "--private",
                                  env=cli_env, check=True).stdout)
    got = sorted((x["rule"], x["object"]) for x in private["findings"])
    assert got == sorted([
        ("owner.unbooked", "DENW36AL0000P004"), ("owner.unbooked", "DENW36AL0000P005"),
        ("owner.chain", "DENW36AL00000B08"),
        ("owner.no_parcel", "DENW36AL00000B90"),
        ("owner.sheet_without_owner", "DENW36AL00000S90"),
        ("owner.orphan", "DENW36AL00000X9P"),     # its Anschrift is reached (from it)
        ("owner.orphan", "DENW36AL0000N099"),
        ("owner.shares", "DENW36AL00000S71"), ("owner.shares", "DENW36AL00000B81"),
    ]), got
    assert all(x["rule"].startswith("owner.") for x in private["findings"])
    assert query(db, "SELECT count(*) FROM kataster.finding WHERE rule LIKE 'owner.%'")[0][0] == 0
    # A role without the owner-data role may not ask for --private.
    with db.connect() as conn:
        assert may_see_owners(conn)
    with Database(url_as(db.url, "admin")).connect() as conn:
        conn.execute("CREATE ROLE kataster_test_reader NOLOGIN")
        conn.execute("SET ROLE kataster_test_reader")
        assert not may_see_owners(conn)
        conn.rollback()


def test_owner_rules_exact_shares_cycles_and_dead_ends(cli_env, db, tmp_path):
    """The set-based owner rules on the cases the generated data never has: mixed
    denominators that add up to 1 (no finding), DIN numbers with a 10 in them, a zero
    denominator, a cycle no parcel reaches, and a divided booking nobody points at."""
    import json

    f = features()
    f += [sheet("DENW36AL00000S20"), stelle("DENW36AL00000B20", 1100, "DENW36AL00000S20"),
          parcel(9, "DENW36AL00000B20"),
          nn("DENW36AL0000N201", "DENW36AL00000S20", "0001.00.00.00.00", pid("P1"), ("1", "2")),
          nn("DENW36AL0000N202", "DENW36AL00000S20", "0002.00.00.00.00", pid("P2"),
             ("0.25", "1")),
          nn("DENW36AL0000N203", "DENW36AL00000S20", "0003.00.00.00.00", pid("P3"), ("2", "8"))]
    # "0010" is the tenth owner on the sheet, not part of owner 1's community: 1/3 + 1/3.
    f += [sheet("DENW36AL00000S21"), stelle("DENW36AL00000B21", 1100, "DENW36AL00000S21"),
          parcel(10, "DENW36AL00000B21"),
          nn("DENW36AL0000N211", "DENW36AL00000S21", "0001.00.00.00.00", pid("P4"), ("1", "3")),
          nn("DENW36AL0000N212", "DENW36AL00000S21", "0010.00.00.00.00", pid("P5"), ("1", "3"))]
    f += [sheet("DENW36AL00000S22"), stelle("DENW36AL00000B22", 1100, "DENW36AL00000S22"),
          parcel(11, "DENW36AL00000B22"),
          nn("DENW36AL0000N221", "DENW36AL00000S22", "0001.00.00.00.00", pid("P6"), ("0", "0"))]
    # Two Miteigentum bookings pointing at each other, reached from no parcel.
    f += [stelle("DENW36AL00000B30", 1302, "DENW36AL00000S04", ("1", "2"), ["DENW36AL00000B31"]),
          stelle("DENW36AL00000B31", 1302, "DENW36AL00000S04", ("1", "2"), ["DENW36AL00000B30"])]
    # A parcel booked on a fictive sheet's divided booking that nobody divides.
    f += [sheet("DENW36AL00000S40", 5000), stelle("DENW36AL00000B40", 1101, "DENW36AL00000S40"),
          parcel(12, "DENW36AL00000B40")]
    path = tmp_path / "edge_owners.xml"
    with open_output(path) as fh:
        Writer("6.0").extract(f, fh)
    kataster("import", path, env=cli_env, check=True)
    out = json.loads(kataster("validate", "--rules", "owner.shares,owner.chain,owner.no_parcel",
                              "--json", "--private", env=cli_env, check=True).stdout)
    got = {(x["rule"], x["object"]): x for x in out["findings"]}
    assert sorted(got) == sorted([
        ("owner.shares", "DENW36AL00000S21"), ("owner.shares", "DENW36AL00000S22"),
        ("owner.shares", "DENW36AL00000B30"), ("owner.shares", "DENW36AL00000B31"),
        ("owner.chain", "DENW36AL00000B08"), ("owner.chain", "DENW36AL00000B30"),
        ("owner.chain", "DENW36AL00000B40"),
        ("owner.no_parcel", "DENW36AL00000B30"), ("owner.no_parcel", "DENW36AL00000B31"),
    ]), sorted(got)
    assert "add up to 2/3" in got["owner.shares", "DENW36AL00000S21"]["message"]
    assert "denominator 0" in got["owner.shares", "DENW36AL00000S22"]["message"]
    # Each divides the other by 1/2: the other half is missing.
    assert "add up to 1/2" in got["owner.shares", "DENW36AL00000B30"]["message"]
    cycle = got["owner.chain", "DENW36AL00000B30"]
    assert "cycle" in cycle["message"] and cycle["related"] == ["DENW36AL00000B31"]
    dead = got["owner.chain", "DENW36AL00000B40"]
    assert "dead end" in dead["message"] and dead["related"] == ["DENW36AL0000P012"]


def test_cycles_are_strongly_connected_components():
    from pipeline.validation.owner import _strongly_connected

    edges = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": ["e"], "e": ["d"], "f": ["f"],
             "g": ["a"]}
    components = sorted(sorted(c) for c in _strongly_connected(edges))
    assert components == [["a", "b", "c"], ["d", "e"], ["f"], ["g"]]


def test_owner_changes_need_private(cli_env, db, tmp_path):
    import json

    from pipeline.synthetic.nas_writer import versioned_id

    path = tmp_path / "owners.xml"
    with open_output(path) as fh:
        Writer("6.0").extract(features(), fh)
    r1 = json.loads(kataster("import", path, "--json", env=cli_env, check=True).stdout)
    # An update: Namensnummer 0002 of sheet S01 now names Dornqx instead of Clausqx.
    new = nn("DENW36AL0000N014", "DENW36AL00000S01", "0002.00.00.00.00", pid("P4"), ("1", "2"))
    new["beginnt"] = "2021-01-01T00:00:00Z"
    update = tmp_path / "nba.xml"
    with open_output(update) as fh:
        Writer("6.0").nba([], [(new, versioned_id("DENW36AL0000N014", B), False)], [],
                          "2021-01-02T00:00:00Z", fh)
    r2 = json.loads(kataster("import", update, "--json", env=cli_env, check=True).stdout)
    public = json.loads(kataster("changes", r1["run_id"], r2["run_id"], "--json", env=cli_env,
                                 check=True).stdout)
    assert "eigentum" not in public["counts"] and public["changes"] == []
    private = json.loads(kataster("changes", r1["run_id"], r2["run_id"], "--json", "--private",
                                  env=cli_env, check=True).stdout)
    assert [(c["art"], c["gml_id"]) for c in private["changes"]] == [
        ("eigentum", "DENW36AL0000P001")]
    names = [r[0] for r in query(db, "SELECT name FROM kataster_privat.eigentum"
                                     " WHERE flurstueckskennzeichen LIKE '05309600100001%'"
                                     " ORDER BY 1")]
    assert names == ["Adlerqx", "Bergqx", "Dornqx"]


def test_ownership_history_grows_with_the_change(cli_env, db, tmp_path):
    """Every NAS run stored the resolved owners of the whole city again (a daily portion added
    the city each day). A run now stores only the parcels whose owners changed, and a marker
    for a parcel whose owners are gone; the current resolution is the same as a full one."""
    import json

    from pipeline.ownership import resolved
    from pipeline.synthetic.nas_writer import versioned_id

    path = tmp_path / "owners.xml"
    with open_output(path) as fh:
        Writer("6.0").extract(features(), fh)
    r1 = json.loads(kataster("import", path, "--json", env=cli_env, check=True).stdout)
    first = query(db, "SELECT count(*) FROM kataster_privat.eigentum_aufgeloest"
                      " WHERE run_id = %s", (r1["run_id"],))[0][0]
    assert first == 8
    # Parcel 1 changes an owner (Namensnummer 0002 names Dornqx), parcel 3 ends; parcel 2 and
    # its chain through the fictive sheet stay as they are.
    new = nn("DENW36AL0000N014", "DENW36AL00000S01", "0002.00.00.00.00", pid("P4"), ("1", "2"))
    new["beginnt"] = "2021-01-01T00:00:00Z"
    update = tmp_path / "nba.xml"
    with open_output(update) as fh:
        Writer("6.0").nba([], [(new, versioned_id("DENW36AL0000N014", B), False)],
                          [("AX_Flurstueck", versioned_id("DENW36AL0000P003", B))],
                          "2021-01-02T00:00:00Z", fh)
    r2 = json.loads(kataster("import", update, "--json", env=cli_env, check=True).stdout)
    stored = query(db, "SELECT right(flurstueck_gml_id, 3), person_gml_id, entfallen"
                       " FROM kataster_privat.eigentum_aufgeloest WHERE run_id = %s"
                       " ORDER BY 1, 2", (r2["run_id"],))
    assert stored == [("001", pid("P1"), False), ("001", pid("P2"), False),
                      ("001", pid("P4"), False), ("003", None, True)]
    # The current resolution equals a full one of the same state.
    with db.connect() as conn:
        resolved(conn)
        columns = ("flurstueck_gml_id, flurstueckskennzeichen, buchungsblatt, buchungsart,"
                   " person_gml_id, anteil_zaehler, anteil_nenner, rechtsgemeinschaft")
        full = conn.execute(f"SELECT {columns} FROM ownership_resolved ORDER BY 1, 5").fetchall()
        current = conn.execute(f"SELECT {columns} FROM kataster_privat.eigentum_aktuell"
                               " ORDER BY 1, 5").fetchall()
        conn.rollback()
    assert current == full and len(full) == 6
    names = [r[0] for r in query(db, "SELECT name FROM kataster_privat.eigentum ORDER BY 1")]
    assert names == ["Adlerqx", "Bergqx", "Dornqx", "Dornqx", "Eichqx", "Finkqx"]
    # The change list reads the same owners as before: parcel 1's changed; parcel 3 is a
    # removed parcel, not an owner change.
    private = json.loads(kataster("changes", r1["run_id"], r2["run_id"], "--json", "--private",
                                  env=cli_env, check=True).stdout)
    assert sorted((c["art"], c["gml_id"]) for c in private["changes"]) == [
        ("eigentum", "DENW36AL0000P001"), ("entfernt", "DENW36AL0000P003")]
    # A run that changes no owner records none.
    same = nn("DENW36AL0000N014", "DENW36AL00000S01", "0002.00.00.00.00", pid("P4"), ("1", "2"))
    same["beginnt"] = "2021-02-01T00:00:00Z"
    again = tmp_path / "nba2.xml"
    with open_output(again) as fh:
        Writer("6.0").nba([], [(same, versioned_id("DENW36AL0000N014", new["beginnt"]), False)],
                          [], "2021-02-02T00:00:00Z", fh)
    r3 = json.loads(kataster("import", again, "--json", env=cli_env, check=True).stdout)
    assert query(db, "SELECT count(*) FROM kataster_privat.eigentum_aufgeloest"
                     " WHERE run_id = %s", (r3["run_id"],))[0][0] == 0


def test_nested_communities_decimal_shares_and_walk_findings(cli_env, db, tmp_path):
    """Shares multiply exactly down nested communities and divided properties (decimals
    included), the nearest head names the community, and the walk reports the cycle with its
    path and a divided booking nobody points at."""
    extra = [parcel(7, "DENW36AL00000B11"), parcel(8, "DENW36AL00000B12"),
             parcel(9, "DENW36AL00000B15")]
    extra += [sheet(f"DENW36AL00000S{k:02d}") for k in (8, 9, 10, 11, 12)]
    extra += [stelle("DENW36AL00000B11", 1100, "DENW36AL00000S08"),
              stelle("DENW36AL00000B12", 1102, "DENW36AL00000S09"),
              stelle("DENW36AL00000B13", 1302, "DENW36AL00000S10", ("0.25", "1"),
                     ["DENW36AL00000B12"]),
              stelle("DENW36AL00000B14", 1302, "DENW36AL00000S11", ("3", "4"),
                     ["DENW36AL00000B12"]),
              stelle("DENW36AL00000B15", 1101, "DENW36AL00000S12")]
    s08 = "DENW36AL00000S08"
    extra += [nn("DENW36AL0000N081", s08, "0001.00.00.00.00", None, ("1", "2"), 2000),
              nn("DENW36AL0000N082", s08, "0001.01.00.00.00", None, ("0.5", "1")),
              nn("DENW36AL0000N083", s08, "0001.01.01.00.00", pid("P1"), ("1", "3")),
              nn("DENW36AL0000N084", s08, "0001.02.00.00.00", pid("P2"), ("1", "2")),
              nn("DENW36AL0000N085", s08, "0002.00.00.00.00", pid("P3"), ("1", "2")),
              nn("DENW36AL0000N101", "DENW36AL00000S10", "0001.00.00.00.00", pid("P4"),
                 ("1", "1")),
              nn("DENW36AL0000N111", "DENW36AL00000S11", "0001.00.00.00.00", pid("P5"))]
    path = tmp_path / "owners.xml"
    with open_output(path) as fh:
        Writer("7.1", prefix="adv").extract(features() + extra, fh)
    proc = kataster("import", "--no-validate", path, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    rows = query(db, "SELECT right(flurstueck_gml_id, 3), buchungsart, person_gml_id,"
                     " anteil_zaehler, anteil_nenner, rechtsgemeinschaft"
                     " FROM kataster_privat.eigentum_aufgeloest"
                     " WHERE flurstueck_gml_id >= 'DENW36AL0000P007' ORDER BY 1, 3")
    assert [(p, art, who, z and int(z), n and int(n), rg) for p, art, who, z, n, rg in rows] == [
        ("007", 1100, pid("P1"), 1, 12, "Rechtsgemeinschaft"),   # 1/3 × 0.5 × 1/2
        ("007", 1100, pid("P2"), 1, 4, "Gütergemeinschaft"),     # 1/2 × 1/2
        ("007", 1100, pid("P3"), 1, 2, None),
        ("008", 1302, pid("P4"), 1, 4, None),                    # 1/1 × 0.25
        ("008", 1302, pid("P5"), 3, 4, None),                    # no sheet share: 3/4
    ]
    # Only the import's findings (no validation): the cycle, the dead end and the unbooked
    # parcels, as the owner rules word them, so that a later validation finds the same ones.
    b08, b10, b15 = "DENW36AL00000B08", "DENW36AL00000B10", "DENW36AL00000B15"
    expected = [
        ("owner.chain", b08, [b10], f"booking {b08}: its an chain returns to itself (cycle of"
                                    f" {b08} → {b10} → {b08})"),
        ("owner.chain", b15, ["DENW36AL0000P009"], f"divided booking {b15} (buchungsart 1101):"
                                                   " no booking points at it (dead end)"),
        ("owner.unbooked", "DENW36AL0000P004", [], "parcel 05309600100004______ has no booking"
                                                   " (istGebucht missing)"),
        ("owner.unbooked", "DENW36AL0000P005", ["DENW36AL00000B99"],
         "parcel 05309600100005______: its booking DENW36AL00000B99 is not stored"),
    ]
    found = ("SELECT rule, object_id, related, message FROM kataster_privat.finding"
             " WHERE rule IN ('owner.chain', 'owner.unbooked') ORDER BY 1, 2")
    assert [tuple(r) for r in query(db, found)] == expected
    # Validation finds the same problems: the same findings, not a second one each.
    proc = kataster("validate", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert [tuple(r) for r in query(db, found)] == expected


def test_scoped_steps_equal_full_on_random_updates(cli_env, db, tmp_path):
    """A run resolves the owners only of the parcels its change can reach (from the objects it
    delivered or ended, through sheets, Namensnummern and an chains, old references included),
    and redraws only the Fluren of the parcels it delivered or ended. Random sequences of NBA
    updates (owners and shares changed, an references moved, parcels rebooked or moved into
    another Flur with another shape, sheets turned fictive and back, Namensnummern and bookings
    deleted, parcels ended): after every run the recorded current owners equal a full
    resolution of the same state, the kept an references (kataster_privat.buchung_an) equal
    their definition, the Flur map equals its definition (kataster.flur) and its pieces theirs
    (kataster.flur_stueck_quelle), and the
    validation after the run, which looks only at what the run can change, left the findings
    (owner findings included) a full validation of the same state leaves."""
    import json
    import random

    from pipeline.ownership import resolved
    from pipeline.synthetic.nas_writer import versioned_id

    columns = ("flurstueck_gml_id, flurstueckskennzeichen, buchungsblatt, buchungsart,"
               " person_gml_id, anteil_zaehler, anteil_nenner, rechtsgemeinschaft")

    def full_equals_recorded():
        with db.connect() as conn:
            resolved(conn)
            full = conn.execute(f"SELECT {columns} FROM ownership_resolved ORDER BY 1, 5, 4"
                                ).fetchall()
            current = conn.execute(f"SELECT {columns} FROM kataster_privat.eigentum_aktuell"
                                   " ORDER BY 1, 5, 4").fetchall()
            conn.rollback()
        return current, full

    path = tmp_path / "owners.xml"
    with open_output(path) as fh:
        Writer("7.1", prefix="adv").extract(features(), fh)
    env = {**cli_env, "KATASTER_VALIDATION_AFTER_IMPORT": "true"}
    kataster("import", path, env=env, check=True)
    objects = {f["id"]: f for f in features()}
    stored = ("SELECT key, status FROM kataster_privat.finding UNION ALL"
              " SELECT key, status FROM kataster.finding WHERE rule <> 'coverage.precision'")
    owner_rules = set()
    rng = random.Random(20261202)
    cells = random.Random(24)
    people = [pid(k) for k in PEOPLE]
    scoped_sizes = []
    for step in range(12):
        beginnt = f"2021-{step + 1:02d}-01T00:00:00Z"
        live = {k: f for k, f in objects.items() if f is not None}
        replaces, deletes, done = [], [], []
        # First a booking leaves the divided property it divided for another (parcel 2's
        # owners shrink, parcel 3's grow), then random changes.
        # Then parcel 2 ends (its divided booking and the two pointing at it reach no parcel),
        # and Namensnummer N031 names P1 instead of P4 (P4 is named by nobody).
        kinds = {0: ["move"], 1: ["end parcel 2"], 2: ["rename N031"]}.get(step) or [
            rng.choice(["person", "share", "an", "rebook", "sheet", "delete", "end", "flur"])
            for _ in range(rng.randint(1, 3))]
        for kind in kinds:
            if kind == "move":
                oid = "DENW36AL00000B03"
                new = _with(live[oid], "an", Ref("DENW36AL00000B05"))
            elif kind == "end parcel 2":
                oid, new = "DENW36AL0000P002", None
            elif kind == "rename N031":
                oid = "DENW36AL0000N031"
                new = _with(live[oid], "benennt", Ref(pid("P1")))
            elif kind == "person":
                oid = rng.choice([k for k, f in live.items() if f["type"] == "AX_Namensnummer"
                                  and any(p == "benennt" for p, _ in f["props"])])
                new = _with(live[oid], "benennt", Ref(rng.choice(people)))
            elif kind == "share":
                oid = rng.choice([k for k, f in live.items() if f["type"] == "AX_Namensnummer"])
                z, n = rng.choice([("1", "2"), ("1", "3"), ("2", "3"), ("1", "1")])
                new = _with(live[oid], "anteil", {"AX_Anteil": {"zaehler": z, "nenner": n}})
            elif kind == "an":
                oid = rng.choice([k for k, f in live.items() if f["type"] == "AX_Buchungsstelle"
                                  and any(p == "an" for p, _ in f["props"])])
                targets = [k for k, f in live.items() if f["type"] == "AX_Buchungsstelle"
                           and k != oid]
                new = _with(live[oid], "an", Ref(rng.choice(targets)))
            elif kind == "rebook":
                oid = rng.choice([k for k, f in live.items() if f["type"] == "AX_Flurstueck"])
                bookings = [k for k, f in live.items() if f["type"] == "AX_Buchungsstelle"]
                new = _with(live[oid], "istGebucht", Ref(rng.choice(bookings)))
            elif kind == "flur":      # the parcel moves into another Flur, and its shape
                oid = rng.choice([k for k, f in live.items() if f["type"] == "AX_Flurstueck"])
                new = _with(live[oid], "flurnummer", str(rng.choice([1, 2, 3])))
                # (sometimes into another 200 m cell of the Flur map's pieces)
                x = 350000 + rng.randrange(0, 60, 10) + cells.choice([0, 400, 800])
                new["geom"] = ("position", shapely.box(x, 5700000, x + rng.choice([5, 10, 15]),
                                                       5700010))
            elif kind == "sheet":
                oid = rng.choice([k for k, f in live.items() if f["type"] == "AX_Buchungsblatt"])
                art = dict(live[oid]["props"])["blattart"]
                new = _with(live[oid], "blattart", "1000" if art == "5000" else "5000")
            else:
                types = {"delete": ("AX_Namensnummer", "AX_Buchungsstelle"),
                         "end": ("AX_Flurstueck",)}[kind]
                oid = rng.choice([k for k, f in live.items() if f["type"] in types])
                new = None
            if oid in done:
                continue
            done.append(oid)
            old = versioned_id(oid, live[oid]["beginnt"])
            if new is None:
                deletes.append((live[oid]["type"], old))
            else:
                new["beginnt"] = beginnt
                replaces.append((new, old, False))
            objects[oid] = new
            live.pop(oid)
        update = tmp_path / f"nba_{step}.xml"
        with open_output(update) as fh:
            Writer("7.1", prefix="adv").nba([], replaces, deletes,
                                            beginnt.replace("01T", "02T"), fh)
        run = json.loads(kataster("import", update, "--json", env=env, check=True).stdout)
        assert run["status"] == "committed"
        # The validation after the update looked at what it touched; a full validation of the
        # same state changes no stored finding, owner findings included.
        before = sorted(query(db, stored))
        full_run = json.loads(kataster("validate", "--private", "--json", env=cli_env,
                                       check=True).stdout)
        assert sorted(query(db, stored)) == before, (step, done)
        owner_rules |= {f["rule"] for f in full_run["findings"] if f["rule"].startswith("owner.")}
        current, full = full_equals_recorded()
        assert current == full, (step, done)
        # The Flur map, updated for the Fluren the run touched, equals its definition.
        assert query(db, "SELECT count(*) FROM kataster.flur_karte m FULL JOIN kataster.flur v"
                         " USING (id) WHERE NOT (m.geom IS NOT DISTINCT FROM v.geom OR"
                         " ST_Equals(m.geom, v.geom)) OR m.id IS NULL OR v.id IS NULL"
                         " OR (m.land, m.gemarkungsnummer, m.flurnummer, m.gemarkung, m.herkunft)"
                         " IS DISTINCT FROM (v.land, v.gemarkungsnummer, v.flurnummer,"
                         " v.gemarkung, v.herkunft)")[0][0] == 0, (step, done)
        # The kept an references equal their definition.
        assert query(db, "(SELECT src, dst FROM kataster_privat.buchung_an EXCEPT ALL"
                         " SELECT src, dst FROM kataster_privat.buchung_an_quelle) UNION ALL"
                         " (SELECT src, dst FROM kataster_privat.buchung_an_quelle EXCEPT ALL"
                         " SELECT src, dst FROM kataster_privat.buchung_an)") == [], (step, done)
        # ... and its pieces, which the run redrew where its parcels lie, theirs.
        assert query(db, "SELECT count(*) FROM kataster.flur_stueck m"
                         " FULL JOIN kataster.flur_stueck_quelle v USING (id, zelle)"
                         " WHERE m.id IS NULL OR v.id IS NULL OR NOT ST_Equals(m.geom, v.geom)"
                         )[0][0] == 0, (step, done)
        scoped_sizes.append(query(db, "SELECT count(*) FROM kataster_privat.eigentum_aufgeloest"
                                      " WHERE run_id = %s", (run["run_id"],))[0][0])
    # The sequence changed owners (the comparison was not of two empty lists), and raised
    # owner findings of several rules.
    assert sum(scoped_sizes) > 0 and len(full) > 0
    assert len(owner_rules) >= 3, owner_rules


def _with(feature, name, value):
    """A copy of a feature with the property ``name`` set to ``value`` (replaced, or added)."""
    props = [(p, v) for p, v in feature["props"] if p != name] + [(name, value)]
    return {**feature, "props": props}


def test_rebuild_recomputes_what_runs_keep_scoped(cli_env, db, tmp_path):
    """``kataster db rebuild`` resolves every parcel's owners, redraws every Flur and refills
    the kept pieces of the Flur map and an references in one run: what drifted from the data
    (here by hand) is set right, and a consistent database gets no owner rows."""
    import json

    path = tmp_path / "owners.xml"
    with open_output(path) as fh:
        Writer("7.1", prefix="adv").extract(features(), fh)
    kataster("import", path, "--no-validate", env=cli_env, check=True)
    clean = json.loads(kataster("db", "rebuild", "--json", env=cli_env, check=True).stdout)
    assert clean["status"] == "committed" and clean["counts"] == {"eigentum_parcels": 0}
    flur_map = "SELECT id, ST_AsBinary(geom) FROM kataster.flur_karte ORDER BY id"
    before = query(db, flur_map)
    owners = "SELECT * FROM kataster_privat.eigentum_aktuell ORDER BY 1, 5, 4"
    recorded = query(db, owners)
    kept = {"kataster.flur_stueck": "kataster.flur_stueck_quelle",
            "kataster_privat.buchung_an": "kataster_privat.buchung_an_quelle"}
    # The pieces are unioned by GEOS, the definition by ST_Union: the same outline, its
    # vertices perhaps from another start (compared with ST_Equals, as test_derived does).
    differ = ("SELECT count(*) FROM ((SELECT * FROM {0} EXCEPT ALL SELECT * FROM {1})"
              " UNION ALL (SELECT * FROM {1} EXCEPT ALL SELECT * FROM {0})) d")
    differ_pieces = ("SELECT count(*) FROM {0} m FULL JOIN {1} v USING (id, zelle)"
                     " WHERE m.id IS NULL OR v.id IS NULL OR NOT ST_Equals(m.geom, v.geom)")
    with db.connect() as conn:
        conn.execute("DELETE FROM kataster.flur_karte")
        for table in kept:
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM kataster_privat.eigentum_aufgeloest"
                     " WHERE flurstueck_gml_id = 'DENW36AL0000P002'")
        conn.commit()
    def differing(table, source):
        return query(db, (differ_pieces if table == "kataster.flur_stueck" else differ).format(
            table, source))[0][0]

    assert all(differing(t, q) > 0 for t, q in kept.items())
    fixed = json.loads(kataster("db", "rebuild", "--json", env=cli_env, check=True).stdout)
    assert fixed["counts"] == {"eigentum_parcels": 1}
    assert query(db, flur_map) == before and len(before) > 0
    # The kept pieces of the Flur map and an references are whole again.
    assert [differing(t, q) for t, q in kept.items()] == [0, 0]
    assert [r[:-1] for r in query(db, owners)] == [r[:-1] for r in recorded]   # (run_id aside)
    assert query(db, "SELECT kind, importer, status FROM kataster.import_run"
                     " WHERE id = %s", (fixed["run_id"],)) == [("rebuild", None, "committed")]
