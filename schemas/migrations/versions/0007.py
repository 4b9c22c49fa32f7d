"""Gemarkung and Gemeinde names as indexed lookups (materialised, refreshed with the maps).

Revision ID: 0007
Revises: 0006
"""

from schemas import run_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0007_name_lookups.sql")
