"""Integration fixtures: a whole local pipeline (sandbox + worker) on the real broker and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.tenant import TenantConfig
from store import tenant_config
from streams.devstack import REPO, Stack


@pytest.fixture
def make_stack(
    kafka_bootstrap: str, make_fresh_database: Callable[[], str], tmp_path: Path
) -> Iterator[Callable[[], Stack]]:
    """Build stacks with a fresh PostgreSQL database and fresh topics; all closed after the test."""
    stacks: list[Stack] = []

    def make() -> Stack:
        run = f"it-{uuid.uuid4().hex[:10]}"
        stack = Stack(kafka_bootstrap, make_fresh_database(), tmp_path / run, run=run)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


@pytest.fixture
def acme_config() -> TenantConfig:
    return tenant_config.load_yaml((REPO / "examples/tenants/acme-uk.yaml").read_text())


@pytest.fixture
def running_stack(make_stack: Callable[[], Stack], acme_config: TenantConfig) -> Stack:
    """Sandbox up, acme-uk configured and connected to "Demo UK Ltd", a worker running with the config."""
    stack = make_stack()
    stack.start_sandbox()
    version = stack.apply_config(acme_config)
    stack.connect(acme_config.tenant_id, "Demo UK Ltd")
    stack.start_worker()
    stack.sync_config(acme_config.tenant_id, version)
    return stack
