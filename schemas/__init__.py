"""The data model: SQL files, migrations, JSON schemas and bundled reference data."""

from pathlib import Path

SCHEMAS_DIR = Path(__file__).resolve().parent
SQL_DIR = SCHEMAS_DIR / "sql"
DATA_DIR = SCHEMAS_DIR / "data"
MIGRATIONS_DIR = SCHEMAS_DIR / "migrations"


def json_schema(name):
    """Return the parsed JSON schema ``schemas/<name>.schema.json``."""
    import json

    return json.loads((SCHEMAS_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


def sql_text(name):
    """Return the text of ``schemas/sql/<name>``."""
    return (SQL_DIR / name).read_text(encoding="utf-8")


def run_sql(name):
    """Execute ``schemas/sql/<name>`` inside the running Alembic migration.

    Goes to psycopg directly without parameters, so ``%`` in PL/pgSQL stays literal.
    """
    from alembic import op

    op.get_bind().connection.driver_connection.execute(sql_text(name))
