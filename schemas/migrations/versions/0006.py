"""Materialised district boundaries for the map services.

Revision ID: 0006
Revises: 0005
"""

from schemas import run_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0006_district_maps.sql")
