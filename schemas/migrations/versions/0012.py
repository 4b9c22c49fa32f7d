"""The look-up limit is set through a function of the audit's own role.

Revision ID: 0012
Revises: 0011
"""

from schemas import run_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0012_audit_limit_function.sql")
