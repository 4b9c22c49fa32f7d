"""Public views for departments and the point-in-time parcel function.

Revision ID: 0002
Revises: 0001
"""

from schemas import run_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0002_views.sql")
