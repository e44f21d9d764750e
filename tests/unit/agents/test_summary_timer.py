"""`agents.summary`: one tenant's broken config or zone must not stop the timer or the agent."""

from __future__ import annotations

import asyncio
import inspect
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

import agents.summary as summary
from accounting.summary import DayBook, SummaryContribution
from schemas.tenant import PostingPolicy, TenantConfig


def book(tenant: str) -> tuple[str, str]:
    part = SummaryContribution(
        tenant_id=tenant,
        ledger="xero",
        day=date(2020, 1, 1),
        currency="GBP",
        kind="invoice",
        account_code="200",
        tax_code="OUTPUT2",
        net=Decimal("10.00"),
        tax=Decimal("2.00"),
        order_id="o1",
        source_id="order:o1",
    )
    day = DayBook.for_contribution(part)
    day.add(part)
    return DayBook.key_of(part), day.model_dump_json()


class Topic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, *, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


def errors(stage: str) -> float:
    return summary.summary_errors.labels(stage)._value.get()


def test_a_tenant_with_a_broken_zone_is_skipped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    books = dict([book("bad-zone"), book("bad-config"), book("good")])
    topic = Topic()
    broken = TenantConfig.model_construct(
        tenant_id="bad-zone", policy=PostingPolicy.model_construct(timezone="Mars/Base")
    )

    def config(tenant: str) -> Any:
        if tenant == "bad-config":
            raise ValueError("stored config no longer validates")
        return broken if tenant == "bad-zone" else None

    monkeypatch.setattr(summary, "day_books", books)
    monkeypatch.setattr(summary, "summaries_topic", topic)
    monkeypatch.setattr(summary, "tenant_config", config)
    before = errors("due_check")
    asyncio.run(inspect.unwrap(summary.close_due_days)())  # one tick: the decorated timer loops forever
    assert [key for key, _ in topic.sent] == [b"good"]
    assert errors("due_check") == before + 2


def test_a_close_that_raises_anything_is_logged_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(key: str) -> None:
        raise KeyError("zoneinfo")  # ZoneInfoNotFoundError is a KeyError, not a ValueError

    monkeypatch.setattr(summary, "_close", boom)
    before = errors("close")
    asyncio.run(summary._close_logged("some-book"))
    assert errors("close") == before + 1
