"""The streets of a parcel's address text, indexed, so that a run recomputes the street names
only of the streets it touched.

Revision ID: 0025
Revises: 0024
"""

from schemas import run_sql

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0025_strassen_index.sql")
