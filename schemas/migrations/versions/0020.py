"""The Flur map as a table that a run updates for the Fluren it touched.

Revision ID: 0020
Revises: 0019
"""

from schemas import run_sql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0020_flur_karte_table.sql")
