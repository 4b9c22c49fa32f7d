"""The catalogue of scanned maps (kataster.karte) and its public view.

Revision ID: 0015
Revises: 0014
"""

from schemas import run_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0015_karte.sql")
