"""One key name in every public view; house numbers, street names and boundary points.

Revision ID: 0014
Revises: 0013
"""

from schemas import run_sql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0014_cartography.sql")
