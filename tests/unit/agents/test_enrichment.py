"""`agents.enrichment.enrich`: raw bytes in, exactly one routed outcome out (no Kafka)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from accounting.state import OrderState
from agents.enrichment import Enriched, enrich
from schemas.commands import CreateInvoice
from schemas.dead_letter import Reason, SourcePosition
from schemas.tenant import (
    AccountMapping,
    LedgerMapping,
    PostingPolicy,
    TaxCode,
    TaxMapping,
    TaxRule,
    TenantConfig,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SOURCE = SourcePosition(topic="orders.events", partition=2, offset=41)
CONFIG = TenantConfig(
    tenant_id="acme",
    name="Acme Ltd",
    base_currency="GBP",
    policy=PostingPolicy(trigger="placed"),
    ledgers={
        "xero": LedgerMapping(
            tax=TaxMapping(
                rules=(TaxRule(country="GB", tax=TaxCode(code="OUTPUT2", rate=Decimal(20))),),
                fallback=TaxCode(code="OUTPUT2", rate=Decimal(20)),
            ),
            accounts=AccountMapping(
                revenue="200",
                shipping="425",
                gift_card_liability="801",
                rounding="497",
                default_payment="090",
            ),
        )
    },
)
ORDER = {
    "order_number": "1001",
    "currency": "GBP",
    "lines": [{"line_id": "l1", "name": "Mug", "quantity": "2", "unit_price": "10.00"}],
    "shipping_address": {"country": "GB"},
    "total": "24.00",
}


def event(kind: str, n: int, **fields: Any) -> bytes:
    body = {
        "type": kind,
        "event_id": f"e{n}",
        "tenant_id": "acme",
        "order_id": "o1",
        "occurred_at": "2026-01-01T10:00:00+00:00",
        **fields,
    }
    return json.dumps(body).encode()


PLACED = event("order.placed", 1, order=ORDER)


class Store:
    """The order-state table as the agent uses it: write back only what `enrich` returns."""

    def __init__(self) -> None:
        self.states: dict[str, OrderState] = {}

    def feed(self, raw: bytes, config: TenantConfig | None = CONFIG) -> Enriched:
        result = enrich(
            raw,
            source=SOURCE,
            config_for=lambda tenant: config if config and tenant == config.tenant_id else None,
            state_for=self.states.get,
            now=NOW,
        )
        if result.state is not None and result.order_id:
            self.states[result.order_id] = result.state
        return result


@pytest.fixture
def store() -> Store:
    return Store()


def test_posts_an_invoice_and_returns_the_state_to_store(store: Store) -> None:
    result = store.feed(PLACED)
    assert (result.outcome.kind, result.outcome.reason_code) == ("emitted", "posted")
    [command] = result.commands
    assert isinstance(command, CreateInvoice)
    assert (command.source_id, command.document.total) == ("order:o1", Decimal("24.00"))
    assert result.dead_letter is None
    assert result.order_id == "o1"
    assert store.states["o1"].processed_event_ids == ["e1"]


def test_invalid_json_is_dead_lettered_with_the_original_bytes(store: Store) -> None:
    raw = b'{"type": "order.placed", "event_id": '
    result = store.feed(raw)
    assert (result.outcome.kind, result.outcome.reason_code) == ("dead_letter", "invalid_json")
    letter = result.dead_letter
    assert letter is not None
    assert letter.reason_code is Reason.INVALID_JSON
    assert letter.original() == raw
    assert letter.payload is None
    assert letter.source == SOURCE
    assert letter.id == "input:orders.events:2:41"  # no event id to name it by
    assert (letter.first_failed_at, letter.last_failed_at) == (NOW, NOW)
    assert (result.commands, result.state) == ((), None)


def test_schema_violation_names_the_field(store: Store) -> None:
    bad = dict(ORDER, lines=[{"line_id": "l1", "name": "Mug", "quantity": "2", "unit_price": "-1"}])
    raw = event("order.placed", 1, order=bad)
    result = store.feed(raw)
    assert (result.outcome.kind, result.outcome.reason_code) == ("dead_letter", "schema_violation")
    letter = result.dead_letter
    assert letter is not None
    assert "order.placed.order.lines.0.unit_price" in letter.reason
    assert letter.original() == raw
    assert letter.payload == json.loads(raw)
    assert (letter.tenant_id, letter.order_id, letter.kind) == ("acme", "o1", "order.placed")
    assert letter.id == "input:e1"
    assert result.state is None


def test_an_unknown_event_type_is_a_schema_violation(store: Store) -> None:
    result = store.feed(event("order.teleported", 1))
    assert result.outcome.reason_code == "schema_violation"
    assert result.dead_letter is not None and "type" in result.dead_letter.reason


def test_unknown_tenant_is_dead_lettered(store: Store) -> None:
    result = store.feed(PLACED, config=None)
    assert (result.outcome.kind, result.outcome.reason_code) == ("dead_letter", "unknown_tenant")
    assert result.dead_letter is not None
    assert "acme" in result.dead_letter.reason
    assert result.dead_letter.tenant_id == "acme"
    assert (result.commands, result.state, store.states) == ((), None, {})


def test_a_rules_dead_letter_leaves_the_state_unchanged(store: Store) -> None:
    store.feed(PLACED)
    before = store.states["o1"].model_copy(deep=True)
    over = event(
        "order.refunded", 2, refund_id="r1", currency="GBP", lines=[{"line_id": "l1", "quantity": "3"}]
    )
    result = store.feed(over)
    assert (result.outcome.kind, result.outcome.reason_code) == ("dead_letter", "over_credit")
    assert result.dead_letter is not None
    assert "exceeds" in result.dead_letter.reason
    assert result.dead_letter.original() == over
    assert (result.commands, result.state) == ((), None)
    assert store.states["o1"] == before  # nothing recorded: a fixed replay is processed afresh
    # The same refund within what was invoiced is still accepted afterwards.
    ok = event(
        "order.refunded", 3, refund_id="r1", currency="GBP", lines=[{"line_id": "l1", "quantity": "2"}]
    )
    assert store.feed(ok).outcome.kind == "emitted"


def test_a_duplicate_event_id_is_skipped_and_sends_nothing(store: Store) -> None:
    store.feed(PLACED)
    before = store.states["o1"]
    result = store.feed(PLACED)
    assert (result.outcome.kind, result.outcome.reason_code) == ("skipped", "duplicate")
    assert (result.commands, result.summary, result.dead_letter) == ((), (), None)
    assert store.states["o1"] == before


def test_a_crash_in_the_rules_becomes_an_internal_error_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("agents.enrichment.apply", broken)
    result = Store().feed(PLACED)
    assert (result.outcome.kind, result.outcome.reason_code) == ("dead_letter", "internal_error")
    assert result.dead_letter is not None and "boom" in result.dead_letter.reason
