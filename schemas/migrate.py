"""Alembic, configured in code: migrations live in ``schemas/migrations/versions``.

Each revision runs one versioned SQL file from ``schemas/sql/``. The version table is
``kataster.alembic_version``.
"""

from schemas import MIGRATIONS_DIR, queries

QUERIES = queries("migrations")


def alembic_config(url):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url, revision="head"):
    """Bring the database at ``url`` to ``revision`` (default: the newest)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current(source):
    """The revision the database is at, or None; ``source`` is a libpq URL or an open psycopg
    connection."""
    import psycopg

    if isinstance(source, str):
        with psycopg.connect(source) as conn:
            return current(conn)
    row = source.execute(QUERIES["has_version_table"]).fetchone()
    if not row[0]:
        return None
    row = source.execute(QUERIES["version"]).fetchone()
    return row[0] if row else None


def head():
    """The newest revision the migrations define: the highest-numbered file of
    ``schemas/migrations/versions`` (each names its revision; every command checks the
    database against it, and reading Alembic's script directory cost 0.2 s of each).
    ``tests/model/test_migrations.py`` holds it equal to Alembic's head."""
    return max(p.stem for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))


def alembic_head():
    """The newest revision as Alembic reads the chain of ``down_revision``s."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
