"""Indexes that let a run find the versions it wrote or closed and the parcels naming a
changed Lagebezeichnung.

Revision ID: 0023
Revises: 0022
"""

from schemas import run_sql

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0023_change_indexes.sql")
