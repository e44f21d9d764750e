"""Tenant config reaches a running worker through real Kafka and PostgreSQL, and survives a restart.

What the worker's agents use is its `tenant-config` global table; `GET /api/tenants/{id}/loaded`
returns exactly that, so these tests check the content that arrived, not only a version number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from schemas.tenant import TenantConfig
from store import tenant_config
from store.outbox import OutboxMessage, pending_count
from streams.commands.tenants import tenants
from streams.devstack import REPO, Stack, wait_for_config, wait_until

TOKEN = "test-api-token-0123456789"
ACME = REPO / "examples" / "tenants" / "acme-uk.yaml"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def stack(make_stack: Callable[[], Stack], monkeypatch: pytest.MonkeyPatch) -> Stack:
    """A worker (no config yet) whose API accepts TOKEN."""
    monkeypatch.setenv("LEDGERSTREAM_API_TOKEN", TOKEN)  # the worker's environment inherits ours
    stack = make_stack()
    stack.start_worker()
    return stack


def _url(stack: Stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.web_port}{path}"


def loaded(stack: Stack, tenant: str = "acme-uk") -> dict[str, Any] | None:
    answer = httpx.get(_url(stack, f"/api/tenants/{tenant}/loaded"), headers=AUTH, timeout=5)
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    return answer.json()


def wait_loaded(stack: Stack, version: int, timeout: float = 30.0) -> dict[str, Any]:
    """Until the worker's table holds `version`; returns what it holds."""
    return wait_until(
        lambda: (doc := loaded(stack)) is not None and doc["version"] == version and doc,
        timeout=timeout,
        interval=0.2,
    )  # type: ignore[return-value]


def cli_apply(stack: Stack, path: Path, *args: str) -> str:
    result = CliRunner().invoke(
        tenants,
        ["apply", str(path), "--topic", stack.names.tenant_config, *args],
        env=stack.env(),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


def expected(path: Path | str, version: int) -> dict[str, Any]:
    text = path.read_text() if isinstance(path, Path) else path
    return tenant_config.load_yaml(text).model_copy(update={"version": version}).model_dump(mode="json")


def test_applied_config_reaches_the_worker_and_survives_a_restart(stack: Stack) -> None:
    assert loaded(stack) is None
    assert httpx.get(_url(stack, "/api/tenants/acme-uk/loaded"), timeout=5).status_code == 401

    started = time.monotonic()
    output = cli_apply(stack, ACME, "--by", "alice")
    assert "published 1 outbox message(s)" in output
    wait_for_config(stack.web_port, "acme-uk", 1, timeout=30)  # the metric
    first = wait_loaded(stack, 1)  # and the content
    assert time.monotonic() - started < 30
    assert first["config"] == expected(ACME, 1)

    renamed = stack.workdir / "acme-renamed.yaml"
    renamed.write_text(ACME.read_text().replace("name: Acme Ltd", "name: Acme Limited"))
    cli_apply(stack, renamed, "-m", "legal name")
    wait_for_config(stack.web_port, "acme-uk", 2, timeout=30)
    second = wait_loaded(stack, 2)
    assert second["config"] == expected(renamed, 2)
    assert second["config"]["name"] == "Acme Limited"

    # Restart: nothing is re-published; the new worker recovers its table from the changelog.
    with stack.sessions() as session:
        assert pending_count(session) == 0
    records = stack.read_topic(stack.names.tenant_config, wait=1.0)
    assert [TenantConfig.model_validate_json(v).version for _, v in records] == [1, 2]
    assert stack.worker is not None
    stack.worker.stop()
    worker = stack.start_worker()
    recovered = wait_loaded(stack, 2)
    assert recovered["config"] == expected(renamed, 2)
    wait_for_config(stack.web_port, "acme-uk", 2, timeout=10)  # the metric too, set on recovery
    # The loading agent did not see the records again (its offsets were committed): the table
    # came back from its changelog.
    assert "config version" not in worker.log.read_text()
    assert len(stack.read_topic(stack.names.tenant_config, wait=1.0)) == 2  # no re-publish happened
    with stack.sessions() as session:
        assert pending_count(session) == 0


def test_put_over_http_reaches_the_running_worker_through_the_outbox_relay(stack: Stack) -> None:
    cli_apply(stack, ACME)
    wait_loaded(stack, 1)

    unauthorised = httpx.put(_url(stack, "/api/tenants/acme-uk"), content=ACME.read_bytes(), timeout=10)
    assert unauthorised.status_code == 401

    changed = ACME.read_text().replace('shipping: "425"', 'shipping: "430"')
    dry = httpx.put(_url(stack, "/api/tenants/acme-uk?dry_run=1"), content=changed, headers=AUTH, timeout=30)
    assert dry.status_code == 200, dry.text
    assert dry.json()["changes"] == ["ledgers.xero.accounts.shipping: 425 → 430"]

    bad = httpx.put(
        _url(stack, "/api/tenants/acme-uk"),
        content=changed.replace("base_currency: GBP", "base_currency: pounds"),
        headers=AUTH,
        timeout=30,
    )
    assert bad.status_code == 422
    assert bad.json()["problems"] == [
        "PUT /api/tenants/acme-uk:6: base_currency: String should match pattern '^[A-Z]{3}$'"
    ]

    started = time.monotonic()
    answer = httpx.put(
        _url(stack, "/api/tenants/acme-uk?by=carol&comment=new+courier"),
        content=changed,
        headers={**AUTH, "Content-Type": "application/yaml"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 2
    # The view only wrote the database (version + outbox row); the worker's leader timer relays it.
    arrived = wait_loaded(stack, 2, timeout=15)
    assert time.monotonic() - started < 15
    assert arrived["config"]["ledgers"]["xero"]["accounts"]["shipping"] == "430"
    assert arrived["config"] == expected(changed, 2)
    with stack.sessions() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [(r.key, r.published_at is not None) for r in rows] == [(b"acme-uk", True)] * 2

    current = httpx.get(_url(stack, "/api/tenants/acme-uk"), headers=AUTH, timeout=10).json()
    assert (current["version"], current["applied_by"], current["comment"]) == (2, "carol", "new courier")
    history = httpx.get(_url(stack, "/api/tenants/acme-uk/history"), headers=AUTH, timeout=10).json()
    assert [v["version"] for v in history["versions"]] == [1, 2]
    listing = httpx.get(_url(stack, "/api/tenants"), headers=AUTH, timeout=10).json()
    assert [(t["tenant_id"], t["version"]) for t in listing["tenants"]] == [("acme-uk", 2)]
    as_yaml = httpx.get(_url(stack, "/api/tenants/acme-uk?format=yaml"), headers=AUTH, timeout=10)
    assert tenant_config.load_yaml(as_yaml.text).model_dump(mode="json") == expected(changed, 2)
