"""An owner look-up audit that no transaction can undo (dblink, own role, hash chain, limit).

Revision ID: 0010
Revises: 0009
"""

from schemas import run_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    run_sql("0010_audit_outside_transaction.sql")
