"""Alembic environment: connects with the URL handed over by ``schemas.migrate``."""

from alembic import context
from sqlalchemy import create_engine, pool

from pipeline.db import sqlalchemy_url
from schemas import queries

url = context.config.attributes["url"]
engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
with engine.connect() as connection:
    connection.exec_driver_sql(queries("migrations")["create_schema"])
    connection.commit()
    context.configure(
        connection=connection,
        version_table_schema="kataster",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
