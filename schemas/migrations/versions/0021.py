"""The street names as a table that a run updates for the Fluren it touched.

Revision ID: 0021
Revises: 0020
"""

from schemas import run_sql

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0021_strassenname_table.sql")
