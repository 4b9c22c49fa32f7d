"""Data model: schemas, tables, indexes, the shipped NRW Gemarkung catalogue.

Revision ID: 0001
Revises:
"""

import json

from alembic import op

from schemas import DATA_DIR, queries, sql_text

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    bind.connection.driver_connection.execute(sql_text("0001_model.sql"))
    catalogue = json.loads((DATA_DIR / "nrw_gemarkungen.json").read_text(encoding="utf-8"))
    rows = {}
    for g in catalogue["gemarkungen"]:
        rows[(catalogue["land"], g["gemarkungsnummer"])] = {
            "land": catalogue["land"], "gemarkungsnummer": g["gemarkungsnummer"],
            "bezeichnung": g["name"], "katasteramt": g["katasteramt"], "fluren": g["fluren"]}
    cursor = bind.connection.driver_connection.cursor()
    cursor.executemany(queries("migrations")["add_gemarkung"], list(rows.values()))
