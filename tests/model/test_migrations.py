"""A later migration upgrades an existing database without losing data."""

from conftest import url_as

from pipeline.db import Database, migrate
from schemas.migrate import alembic_head, current, head, upgrade


def test_the_head_is_alembics_and_each_file_names_its_revision():
    """head() reads the file names; Alembic follows the down_revision chain: they agree, and
    every migration file is named by its revision."""
    import re

    from schemas import MIGRATIONS_DIR

    files = sorted((MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))
    assert len(files) > 20
    for f in files:
        assert re.search(rf'^revision = "{f.stem}"$', f.read_text(), re.MULTILINE), f.name
    assert head() == alembic_head() == files[-1].stem


def test_upgrade_from_previous_revision_keeps_data(empty_db):
    admin = Database(url_as(empty_db.url, "admin"))
    with admin.connect(autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
    upgrade(empty_db.url, "0001")
    assert current(empty_db.url) == "0001"
    with empty_db.connect() as conn:
        assert conn.execute("SELECT to_regclass('kataster.flurstueck')").fetchone()[0] is None
        run = conn.execute("INSERT INTO kataster.import_run (os_user, importer, status)"
                           " VALUES ('test', 'ogr', 'committed') RETURNING id").fetchone()[0]
        # Until 0018 a validation was recorded with its kind as the importer.
        conn.execute("INSERT INTO kataster.import_run (os_user, importer, status)"
                     " VALUES ('test', 'validate', 'committed')")
        conn.execute(
            "INSERT INTO kataster.ax_flurstueck (gml_id, beginnt, flurstueckskennzeichen, land,"
            " gemarkungsnummer, flurnummer, zaehler, amtliche_flaeche, geom, content_hash,"
            " source, run_id) VALUES ('DENW36AL00000001', '2020-01-01T00:00:00Z',"
            " '05309600100001______', '05', '3096', 1, 1, 100,"
            " ST_Multi(ST_MakeEnvelope(0, 0, 10, 10, 25832)), 'h', 'test', %s)", (run,))
        conn.commit()
    upgrade(empty_db.url, "0002")
    assert current(empty_db.url) == "0002"
    with empty_db.connect() as conn:
        row = conn.execute("SELECT gml_id, gemarkung, amtliche_flaeche, geometrie_flaeche"
                           " FROM kataster.flurstueck").fetchone()
        assert row == ("DENW36AL00000001", "Broich", 100.0, 100.0)
        assert conn.execute("SELECT count(*) FROM kataster.import_run").fetchone()[0] == 2
    # The newest revision adds columns and tables to a database that holds data; the owner runs
    # it (not a superuser), the administrator lends CREATEROLE for the audit's role and takes
    # it back.
    migrate(admin, empty_db)
    assert current(empty_db.url) == head() != "0002"
    with empty_db.connect() as conn:
        assert conn.execute("SELECT gml_id, closed_run_id FROM kataster.ax_flurstueck"
                            ).fetchall() == [("DENW36AL00000001", None)]
        assert conn.execute("SELECT count(*) FROM kataster.repair_log").fetchone()[0] == 0
        assert conn.execute("SELECT kind, importer FROM kataster.import_run ORDER BY id"
                            ).fetchall() == [("import", "ogr"), ("validate", None)]
    with admin.connect() as conn:
        owner = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
                             " WHERE rolname = 'kataster'").fetchone()
    assert owner == (False, False, False)
    # Upgrading again is a no-op.
    upgrade(empty_db.url)
    assert current(empty_db.url) == head()


def test_ownership_history_converted_without_loss(empty_db):
    """Migration 0017 turns the full copy of the city's owners that every NAS run wrote into
    the changed parcels per run (and markers for owners gone): the owners after each run stay
    what they were, the current owners too, and the unchanged copies are gone."""
    admin = Database(url_as(empty_db.url, "admin"))
    migrate(admin, empty_db, "0016")
    assert current(empty_db.url) == "0016"
    # Three NAS runs as 0016 stored them: run 2 changes B's owner and adds C, run 3 drops B.
    copies = {1: [("A", "p1"), ("A", "p2"), ("B", "p3")],
              2: [("A", "p1"), ("A", "p2"), ("B", "p4"), ("C", "p5")],
              3: [("A", "p1"), ("A", "p2"), ("C", "p5")]}
    with empty_db.connect() as conn:
        runs = {k: conn.execute("INSERT INTO kataster.import_run (os_user, importer, status)"
                                " VALUES ('test', 'nas', 'committed') RETURNING id"
                                ).fetchone()[0] for k in copies}
        for parcel in "ABC":
            conn.execute(
                "INSERT INTO kataster.ax_flurstueck (gml_id, beginnt, flurstueckskennzeichen,"
                " land, gemarkungsnummer, flurnummer, zaehler, amtliche_flaeche, geom,"
                " content_hash, source, run_id) VALUES (%s, '2020-01-01T00:00:00Z', %s, '05',"
                " '3096', 1, 1, 100, ST_Multi(ST_MakeEnvelope(0, 0, 10, 10, 25832)), 'h', 'nas',"
                " %s)", (f"DENW36AL0000000{parcel}", f"0530960010000{ord(parcel)}_____",
                         runs[1]))
        for k, rows in copies.items():
            for parcel, person in rows:
                conn.execute(
                    "INSERT INTO kataster_privat.eigentum_aufgeloest (flurstueck_gml_id,"
                    " flurstueckskennzeichen, buchungsblatt, buchungsart, person_gml_id,"
                    " anteil_zaehler, anteil_nenner, run_id) VALUES (%s, %s, 'S', 1100, %s, 1,"
                    " 2, %s)", (f"DENW36AL0000000{parcel}", f"0530960010000{ord(parcel)}_____",
                                person, runs[k]))
        view_before = conn.execute("SELECT * FROM kataster_privat.eigentum ORDER BY 1, 4"
                                   ).fetchall()
        conn.commit()
    migrate(admin, empty_db)
    assert current(empty_db.url) == head()
    with empty_db.connect() as conn:
        assert conn.execute("SELECT * FROM kataster_privat.eigentum ORDER BY 1, 4"
                            ).fetchall() == view_before
        stored = conn.execute("SELECT run_id, right(flurstueck_gml_id, 1), person_gml_id,"
                              " entfallen FROM kataster_privat.eigentum_aufgeloest"
                              " ORDER BY 1, 2, 3").fetchall()
        assert stored == [(runs[1], "A", "p1", False), (runs[1], "A", "p2", False),
                          (runs[1], "B", "p3", False), (runs[2], "B", "p4", False),
                          (runs[2], "C", "p5", False), (runs[3], "B", None, True)]
        # The owners after each run, as a change list reads them: the newest rows per parcel.
        for k, rows in copies.items():
            after = conn.execute(
                "SELECT right(flurstueck_gml_id, 1), person_gml_id FROM"
                " kataster_privat.eigentum_aufgeloest e WHERE run_id <= %(r)s AND NOT entfallen"
                " AND run_id = (SELECT max(run_id) FROM kataster_privat.eigentum_aufgeloest n"
                " WHERE n.flurstueck_gml_id = e.flurstueck_gml_id AND n.run_id <= %(r)s)"
                " ORDER BY 1, 2", {"r": runs[k]}).fetchall()
            assert after == rows, k
