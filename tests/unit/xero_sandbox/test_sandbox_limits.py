"""Rate limits: minute/day windows, concurrency, per-app limit and their headers."""

from __future__ import annotations

import asyncio

from connectors.xero.sandbox import SandboxConfig, default_config
from tests.unit.xero_sandbox.sandbox_driver import UK, US


def _config(**limits: int) -> SandboxConfig:
    config = default_config()
    config.limits = config.limits.model_copy(update=limits)
    return config


async def test_every_response_carries_limit_headers(sandbox):
    _, _, headers = await sandbox.api("GET", "Invoices")
    assert headers["X-DayLimit-Remaining"] == "4999"
    assert headers["X-MinLimit-Remaining"] == "59"
    assert headers["X-AppMinLimit-Remaining"] == "9999"


async def test_minute_limit_gives_429_with_retry_after(make_sandbox):
    driver = await make_sandbox()
    await driver.connect()
    for n in range(60):
        status, _, headers = await driver.api("GET", "Accounts")
        assert status == 200 and headers["X-MinLimit-Remaining"] == str(59 - n)
    status, body, headers = await driver.api("GET", "Accounts")
    assert status == 429 and body["Status"] == 429
    assert headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(headers["Retry-After"]) <= 60
    await driver.admin("POST", "clock", {"advance_seconds": int(headers["Retry-After"])})
    status, _, headers = await driver.api("GET", "Accounts")
    assert status == 200 and headers["X-MinLimit-Remaining"] == "59"
    state = await driver.admin("GET", "state?log=false")
    assert state["api_calls"][UK] == 61 and state["refused_calls"] == {UK: 1}


async def test_day_limit(make_sandbox):
    driver = await make_sandbox(_config(day=20))
    await driver.connect()
    for _ in range(20):
        assert (await driver.api("GET", "Accounts"))[0] == 200
    status, _, headers = await driver.api("GET", "Accounts")
    assert status == 429 and headers["X-Rate-Limit-Problem"] == "day"
    assert headers["X-DayLimit-Remaining"] == "0"
    assert 86000 < int(headers["Retry-After"]) <= 86400


async def test_limits_are_per_tenant_but_app_limit_is_shared(make_sandbox):
    driver = await make_sandbox(_config(minute=3, app_minute=5))
    await driver.connect(org=None)
    for _ in range(3):
        assert (await driver.api("GET", "Accounts"))[0] == 200
    assert (await driver.api("GET", "Accounts"))[2]["X-Rate-Limit-Problem"] == "minute"
    for _ in range(2):
        assert (await driver.api("GET", "Accounts", tenant=US))[0] == 200
    status, _, headers = await driver.api("GET", "Accounts", tenant=US)
    assert status == 429 and headers["X-Rate-Limit-Problem"] == "appminute"


async def test_concurrent_limit(sandbox):
    await sandbox.admin("POST", "faults", {"delay_seconds": 0.3, "count": 5})
    slow = [asyncio.create_task(sandbox.api("GET", "Accounts")) for _ in range(5)]
    await asyncio.sleep(0.1)
    status, _, headers = await sandbox.api("GET", "Accounts")
    assert status == 429 and headers["X-Rate-Limit-Problem"] == "concurrent"
    assert "Retry-After" not in headers
    assert [r[0] for r in await asyncio.gather(*slow)] == [200] * 5
    assert (await sandbox.api("GET", "Accounts"))[0] == 200
