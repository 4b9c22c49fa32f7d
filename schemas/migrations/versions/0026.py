"""The an references between bookings kept as a table that runs update for the bookings they
touch, instead of a temporary edge table built from every booking by every run.

Revision ID: 0026
Revises: 0025
"""

from schemas import run_sql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0026_buchung_an.sql")
