"""The Gemarkung map as a table that a run updates for the Gemarkungen of the Fluren it
touched.

Revision ID: 0027
Revises: 0026
"""

from schemas import run_sql

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0027_gemarkung_karte_table.sql")
