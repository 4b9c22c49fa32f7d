"""Closing run of each version, repair log, ownership resolutions per run.

Revision ID: 0003
Revises: 0002
"""

from schemas import run_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0003_changes_repairs.sql")
