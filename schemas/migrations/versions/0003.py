"""Closing run of each version, repair log, ownership resolutions per run.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from schemas import sql_text

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.get_bind().exec_driver_sql(sql_text("0003_changes_repairs.sql"))
