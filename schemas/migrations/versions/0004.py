"""Audited owner look-up function and the append-only audit log.

Revision ID: 0004
Revises: 0003
"""

from schemas import run_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0004_owner_access.sql")
