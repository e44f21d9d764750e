"""Fixtures for the inbox tests: a migrated SQLite database, the acme config, dead-letter records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from inbox_helpers import REPO, T0, invoice, rejected
from sqlalchemy.orm import Session, sessionmaker

from schemas.dead_letter import DeadLetter
from schemas.tenant import TenantConfig
from store import tenant_config
from store.db import make_engine, make_sessions, migrate


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'inbox.db'}"


@pytest.fixture
def sessions(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    yield make_sessions(engine)
    engine.dispose()


@pytest.fixture
def acme() -> TenantConfig:
    return tenant_config.load_yaml((REPO / "examples/tenants/acme-uk.yaml").read_text())


@pytest.fixture
def make_letter() -> Callable[..., DeadLetter]:
    def make(order: str = "1001", at: datetime = T0, **kw: str) -> DeadLetter:
        return rejected(invoice(order, **kw), at=at)

    return make
