"""NBA portions applied (profilkennung, datum, part), for delivery order and missing parts.

Revision ID: 0009
Revises: 0008
"""

from schemas import run_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0009_nba_portions.sql")
