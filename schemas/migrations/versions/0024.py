"""The Flur map drawn from pieces of a grid cell each, so that a run redraws only the
pieces it touched.

Revision ID: 0024
Revises: 0023
"""

from schemas import run_sql

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0024_flur_stueck.sql")
