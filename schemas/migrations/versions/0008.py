"""Derived Gemarkung boundaries from the materialised Flur boundaries (no second parcel union).

Revision ID: 0008
Revises: 0007
"""

from schemas import run_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0008_gemarkung_from_flur_karte.sql")
