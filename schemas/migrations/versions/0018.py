"""A run's kind (import, validate, repair) in its own column; the importer for imports only.

Revision ID: 0018
Revises: 0017
"""

from schemas import run_sql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0018_run_kind.sql")
