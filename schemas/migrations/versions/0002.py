"""Public views for departments and the point-in-time parcel function.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from schemas import sql_text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.get_bind().exec_driver_sql(sql_text("0002_views.sql"))
