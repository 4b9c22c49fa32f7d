"""The SQLAlchemy/GeoAlchemy2 models describe exactly the tables the migrations create."""

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.orm import Session

from schemas import models


def test_models_match_the_migrated_database(db):
    engine = db.engine()
    inspector = sa.inspect(engine)
    tables = {(t.schema, t.name): t for t in models.Base.metadata.tables.values()}
    for schema in ("kataster", "kataster_privat"):
        in_db = set(inspector.get_table_names(schema=schema)) - {"alembic_version"}
        in_models = {name for s, name in tables if s == schema}
        assert in_db == in_models, (schema, in_db ^ in_models)
    for (schema, name), table in tables.items():
        db_cols = {c["name"]: c for c in inspector.get_columns(name, schema=schema)}
        assert set(db_cols) == set(table.columns.keys()), (name, set(db_cols) ^ set(table.columns.keys()))
        for col in table.columns:
            found = db_cols[col.name]["type"]
            if isinstance(col.type, Geometry):
                assert isinstance(found, Geometry), (name, col.name)
                assert (found.geometry_type, found.srid) == (col.type.geometry_type, 25832)
            else:
                assert found._type_affinity is col.type._type_affinity or \
                    type(found).__name__ == type(col.type).__name__, (name, col.name, found, col.type)
    engine.dispose()


def test_models_query_the_data(db, config, sample_gpkg):
    from pipeline.runs import run_import

    run_import(db, config, [sample_gpkg])
    engine = db.engine()
    with Session(engine) as session:
        n = session.scalar(sa.select(sa.func.count()).select_from(models.Flurstueck)
                           .where(models.Flurstueck.endet.is_(None)))
        assert n == 1200
        run = session.scalars(sa.select(models.ImportRun)).one()
        assert run.status == "committed" and run.counts["objects"]["AX_Flurstueck"] == 1200
    engine.dispose()
