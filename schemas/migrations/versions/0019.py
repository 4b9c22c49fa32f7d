"""Indexes for the ownership resolution scoped to a run's change.

Revision ID: 0019
Revises: 0018
"""

from schemas import run_sql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0019_ownership_scope.sql")
