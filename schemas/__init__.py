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
