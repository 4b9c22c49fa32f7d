"""Indexes for the findings' typed geometry views (befund_punkt, befund_flaeche).

Revision ID: 0016
Revises: 0015
"""

from schemas import run_sql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0016_befund_index.sql")
