"""Fixtures for the store tests: a migrated SQLite database in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from store.db import make_engine, make_sessions, migrate

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "tenants"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def sessions(sqlite_url: str) -> sessionmaker[Session]:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    yield make_sessions(engine)
    engine.dispose()


@pytest.fixture
def acme_yaml() -> str:
    return (EXAMPLES / "acme-uk.yaml").read_text()
