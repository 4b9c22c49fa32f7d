"""The server process that owns a run (dead runs are marked by their own kind only).

Revision ID: 0011
Revises: 0010
"""

from schemas import run_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0011_run_owner.sql")
