"""Tenant config store on a real PostgreSQL: migrations, apply, outbox relay, CLI show."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect

import store.models  # noqa: F401
from store import tenant_config
from store.base import Base
from store.db import make_engine, make_sessions, migrate
from store.outbox import pending_count, publish_pending
from store.tenant_config import load_yaml
from streams.commands.tenants import tenants

pytestmark = pytest.mark.integration

ACME = Path(__file__).resolve().parents[2] / "examples" / "tenants" / "acme-uk.yaml"
OURS = {"tenants", "tenant_config_versions", "outbox"}


def test_migrate_apply_publish_show_on_postgresql(fresh_database_url: str) -> None:
    migrate(fresh_database_url)
    engine = make_engine(fresh_database_url)
    try:
        assert set(inspect(engine).get_table_names()) >= OURS
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
            assert compare_metadata(context, Base.metadata) == []

        sessions = make_sessions(engine)
        config = load_yaml(ACME.read_text(), ACME.name)
        with sessions.begin() as session:
            first = tenant_config.apply(session, config, "alice", "first setup")
        with sessions.begin() as session:
            again = tenant_config.apply(session, config, "alice")
        changed = config.model_copy(update={"name": "Acme Limited"})
        with sessions.begin() as session:
            second = tenant_config.apply(session, changed, "bob")
        assert (first.version, again.unchanged, second.version) == (1, True, 2)
        assert second.changes == ["name: Acme Ltd → Acme Limited"]

        with sessions() as session:
            stored = tenant_config.current(session, "acme-uk")
            assert stored == changed.model_copy(update={"version": 2})
            assert [v.version for v in tenant_config.history(session, "acme-uk")] == [1, 2]
            assert [c.tenant_id for c in tenant_config.all_current(session)] == ["acme-uk"]
            assert pending_count(session) == 2

        sent: list[tuple[str, bytes, bytes]] = []

        async def send(topic: str, key: bytes, value: bytes) -> None:
            sent.append((topic, key, value))

        assert asyncio.run(publish_pending(sessions, send)) == 2
        assert asyncio.run(publish_pending(sessions, send)) == 0
        assert [(t, k) for t, k, _ in sent] == [("tenant-config", b"acme-uk")] * 2
        assert tenant_config.TenantConfig.model_validate_json(sent[1][2]).version == 2
    finally:
        engine.dispose()

    result = CliRunner().invoke(
        tenants, ["show", "acme-uk", "--database-url", fresh_database_url], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert load_yaml(result.output) == changed.model_copy(update={"version": 2})
