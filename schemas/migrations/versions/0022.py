"""The house numbers as a table that a run updates for what its delivery can have changed.

Revision ID: 0022
Revises: 0021
"""

from schemas import run_sql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0022_hausnummer_table.sql")
