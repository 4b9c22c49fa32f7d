"""The tile of a parcel, by which a full validation partitions its work besides the
Gemarkung.

Revision ID: 0028
Revises: 0027
"""

from schemas import run_sql

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0028_kachel.sql")
