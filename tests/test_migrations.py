"""A later migration upgrades an existing database without losing data."""

from conftest import url_as

from pipeline.db import Database, migrate
from schemas.migrate import current, head, upgrade


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
        assert conn.execute("SELECT count(*) FROM kataster.import_run").fetchone()[0] == 1
    # The newest revision adds columns and tables to a database that holds data; the owner runs
    # it (not a superuser), the administrator lends CREATEROLE for the audit's role and takes
    # it back.
    migrate(admin, empty_db)
    assert current(empty_db.url) == head() != "0002"
    with empty_db.connect() as conn:
        assert conn.execute("SELECT gml_id, closed_run_id FROM kataster.ax_flurstueck"
                            ).fetchall() == [("DENW36AL00000001", None)]
        assert conn.execute("SELECT count(*) FROM kataster.repair_log").fetchone()[0] == 0
    with admin.connect() as conn:
        owner = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
                             " WHERE rolname = 'kataster'").fetchone()
    assert owner == (False, False, False)
    # Upgrading again is a no-op.
    upgrade(empty_db.url)
    assert current(empty_db.url) == head()
