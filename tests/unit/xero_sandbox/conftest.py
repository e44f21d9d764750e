"""Fixtures for the Xero sandbox tests: in-process servers driven like a client would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.xero.sandbox import SandboxConfig, create_app, default_config, sandbox_state
from tests.unit.xero_sandbox.sandbox_driver import Driver


@pytest.fixture
async def make_sandbox() -> AsyncIterator[Callable[..., Any]]:
    """Factory starting sandboxes (optionally with a config); all closed at teardown."""
    started: list[TestClient] = []

    async def start(config: SandboxConfig | None = None) -> Driver:
        app = create_app(config or default_config())
        http = TestClient(TestServer(app))
        await http.start_server()
        started.append(http)
        return Driver(http, sandbox_state(app))

    yield start
    for http in started:
        await http.close()


@pytest.fixture
async def sandbox(make_sandbox: Callable[..., Any]) -> Driver:
    """A default sandbox already connected to the UK org."""
    driver = await make_sandbox()
    await driver.connect()
    return driver


@pytest.fixture
async def fresh(make_sandbox: Callable[..., Any]) -> Driver:
    """A default sandbox with no connection yet."""
    return await make_sandbox()
