"""Shared fixtures: a real Kafka broker and a real PostgreSQL server for integration tests.

Each service is found in this order, and only when a test asks for it (a unit-only run
starts nothing):

1. the environment: ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` (``make test`` sets both);
2. a container, when a Docker engine answers (testcontainers);
3. the local launchers ``deploy/local/kafka.sh`` / ``deploy/local/postgres.sh``.

A service started here is stopped at the end of the session; one found running is left alone.
Tests under ``tests/integration/`` are marked ``integration`` automatically.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"
POSTGRES_SH = REPO / "deploy" / "local" / "postgres.sh"
INTEGRATION_DIR = REPO / "tests" / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


@functools.cache
def docker_available() -> bool:
    """True when a Docker engine answers a ping (cheap; no engine means a fast failure)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no client library, no socket, no daemon: all mean "no Docker"
        return False


def _launcher(script: Path, command: str, env: dict[str, str]) -> bool:
    """Run a deploy/local launcher; for ``status`` return whether the service runs."""
    result = subprocess.run([str(script), command], env={**os.environ, **env}, check=False)
    if command == "status":
        return result.returncode == 0
    if result.returncode != 0:
        pytest.fail(f"{script.name} {command} failed (exit {result.returncode}); see output above")
    return True


# ---------------------------------------------------------------- Kafka


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka broker with topic auto-creation."""
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
        return
    if docker_available():
        try:  # testcontainers >= 4.15 moved the modules under testcontainers.community
            from testcontainers.community.kafka import KafkaContainer
        except ImportError:
            from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    # Dedicated test port; a stable data dir lets us recognise a broker we left running.
    port = os.environ.get("TEST_KAFKA_PORT", "19092")
    data_dir = Path(tempfile.gettempdir()) / f"ledgerstream-test-kafka-{port}"
    env = {"KAFKA_PORT": port, "KAFKA_DATA_DIR": str(data_dir)}
    started = not _launcher(KAFKA_SH, "status", env)
    if started:
        shutil.rmtree(data_dir, ignore_errors=True)  # leftovers of a crashed session
        _launcher(KAFKA_SH, "up", env)
    yield f"127.0.0.1:{port}"
    if started:
        _launcher(KAFKA_SH, "down", env)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def topic_prefix() -> str:
    """A fresh prefix such as ``t-1a2b3c4d.`` so every test gets its own topics."""
    return f"t-{uuid.uuid4().hex[:8]}."


# ---------------------------------------------------------------- PostgreSQL


def _with_psycopg(url: str) -> str:
    """Normalise ``postgresql://`` / ``postgres://`` URLs to the psycopg 3 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+psycopg://...``) of a role that may create databases."""
    if url := os.environ.get("DATABASE_URL"):
        yield _with_psycopg(url)
        return
    if docker_available():
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:
            from testcontainers.postgres import PostgresContainer

        with PostgresContainer(
            "postgres:16-alpine",
            username="ledgerstream",
            password="ledgerstream",
            dbname="ledgerstream",
            driver="psycopg",
        ) as container:
            yield container.get_connection_url()
        return
    env = {"PG_PORT": os.environ.get("PG_PORT", "55432")}
    started = not _launcher(POSTGRES_SH, "status", env)
    _launcher(POSTGRES_SH, "up", env)  # also ensures the role and database exist
    url = subprocess.run(
        [str(POSTGRES_SH), "url"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    yield url
    if started:
        _launcher(POSTGRES_SH, "down", env)


@pytest.fixture(scope="session")
def _pg_admin_engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def make_fresh_database(_pg_admin_engine: Engine) -> Iterator[Callable[[], str]]:
    """Factory: each call creates an empty database ``t_<hex>`` and returns its URL.

    Every database made during the test is dropped (``WITH (FORCE)``) afterwards.
    """
    created: list[str] = []
    base: URL = _pg_admin_engine.url

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with _pg_admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    yield make
    with _pg_admin_engine.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fresh_database_url(make_fresh_database: Callable[[], str]) -> str:
    """URL of a brand-new empty database, dropped after the test."""
    return make_fresh_database()
