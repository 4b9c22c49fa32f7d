"""Public views with their unique key first, findings by geometry type.

Revision ID: 0013
Revises: 0012
"""

from schemas import run_sql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0013_view_keys.sql")
