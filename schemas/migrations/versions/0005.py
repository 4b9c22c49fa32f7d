"""Public land-use view for the map services.

Revision ID: 0005
Revises: 0004
"""

from schemas import run_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0005_nutzung_view.sql")
