"""Ownership history that grows with the change: runs record changed parcels only.

Revision ID: 0017
Revises: 0016
"""

from schemas import run_sql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0017_eigentum_delta.sql")
