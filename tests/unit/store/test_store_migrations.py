"""The 0001 migration creates exactly the tables the models describe (SQLite)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import store.models  # noqa: F401
from store.base import Base
from store.db import make_engine, migrate

OURS = {"tenants", "tenant_config_versions", "outbox"}


def schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_object": lambda obj, name, type_, reflected, other: (
                        type_ != "table" or name in OURS
                    ),
                },
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_migrate_creates_the_model_tables_without_diff(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        assert set(inspect(engine).get_table_names()) >= OURS
    finally:
        engine.dispose()
    assert schema_diff(sqlite_url) == []


def test_migrate_is_idempotent_and_0001_downgrades(sqlite_url: str) -> None:
    migrate(sqlite_url)
    migrate(sqlite_url)
    migrate(sqlite_url, "0001_tenant_config")
    from alembic import command

    from store.db import alembic_config

    command.downgrade(alembic_config(sqlite_url), "base")
    engine = make_engine(sqlite_url)
    try:
        assert not OURS & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
