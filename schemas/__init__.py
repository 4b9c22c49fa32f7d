"""The data model: SQL files, migrations, JSON schemas and bundled reference data."""

import functools
import re
import types
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


@functools.cache
def queries(name):
    """The named statements of ``schemas/sql/queries/<name>.sql`` as ``{name: text}``.

    The file holds statements headed by a ``-- name: <identifier>`` line, in the manner of
    yesql/aiosql: one file per module that issues them, so that the SQL lives in ``.sql`` files
    while each statement stays next to its siblings. Values are bound as psycopg parameters
    (``%(name)s``); where a statement names a table or column chosen at run time it carries
    a ``{placeholder}`` that the caller fills with ``psycopg.sql.Identifier`` values.
    """
    text = sql_text(f"queries/{name}.sql")
    parts = re.split(r"^-- name: *(\w+) *\n", text, flags=re.MULTILINE)
    if not all(line.startswith("--") or not line.strip() for line in parts[0].splitlines()):
        raise ValueError(f"schemas/sql/queries/{name}.sql: SQL before the first '-- name:'")
    found = {}
    for key, body in zip(parts[1::2], parts[2::2], strict=True):
        if key in found:
            raise ValueError(f"schemas/sql/queries/{name}.sql: '{key}' twice")
        found[key] = body.strip().removesuffix(";")
    return types.MappingProxyType(found)


def run_sql(name):
    """Execute ``schemas/sql/<name>`` inside the running Alembic migration.

    Goes to psycopg directly without parameters, so ``%`` in PL/pgSQL stays literal.
    """
    from alembic import op

    op.get_bind().connection.driver_connection.execute(sql_text(name))
