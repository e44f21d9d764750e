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


_ORDER_ID = object()
NO_KEY = object()


def _key_of(raw: bytes) -> bytes | None:
    """The key a well-behaved producer uses: the event's order id."""
    try:
        return str(json.loads(raw)["order_id"]).encode()
    except (ValueError, KeyError, TypeError):
        return None


class Store:
    """The order-state table as the agent uses it: write back only what `enrich` returns."""

    def __init__(self) -> None:
        self.states: dict[str, OrderState] = {}

    def feed(self, raw: bytes, config: TenantConfig | None = CONFIG, key: object = _ORDER_ID) -> Enriched:
        """`key`: the Kafka key, by default the event's order id; NO_KEY for none."""
        result = enrich(
            raw,
            key=_key_of(raw) if key is _ORDER_ID else None if key is NO_KEY else key,  # type: ignore[arg-type]
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


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        pytest.param(b"o2", "key 'o2'", id="another-order"),
        pytest.param(b"acme", "key 'acme'", id="the-tenant"),
        pytest.param(b"", "key ''", id="empty"),
        pytest.param(NO_KEY, "no key", id="no-key"),
    ],
)
def test_an_event_not_keyed_by_its_order_id_is_dead_lettered(store: Store, key, shown) -> None:
    result = store.feed(PLACED, key=key)
    assert (result.outcome.kind, result.outcome.reason_code) == ("dead_letter", "schema_violation")
    letter = result.dead_letter
    assert letter is not None and letter.original() == PLACED and letter.source == SOURCE
    assert "key must be the order id" in letter.reason and shown in letter.reason and "'o1'" in letter.reason
    assert (result.commands, result.state, store.states) == ((), None, {})


def test_an_invalid_stored_config_is_a_dead_letter_not_a_crash() -> None:
    from pydantic import ValidationError

    def broken(_: str) -> TenantConfig:
        raise ValidationError.from_exception_data("TenantConfig", [])

    result = enrich(PLACED, key=b"o1", source=SOURCE, config_for=broken, state_for=lambda _: None, now=NOW)
    assert (result.outcome.kind, result.outcome.reason_code) == ("dead_letter", "unknown_tenant")


def test_an_over_payment_left_parked_becomes_its_own_dead_letter(store: Store) -> None:
    pay = event("payment.captured", 1, payment_id="p1", gateway="stripe", amount="30.00", currency="GBP")
    assert store.feed(pay).outcome.kind == "parked"
    result = store.feed(event("order.placed", 2, order=ORDER))
    assert (result.outcome.kind, result.outcome.reason_code) == ("emitted", "posted")
    assert [c.kind for c in result.commands] == ["invoice.create", "payment.create"]
    [letter] = result.unapplied
    assert letter.reason_code is Reason.ACCOUNTING_RULE and "over-payment" in letter.reason
    assert (letter.tenant_id, letter.ledger, letter.order_id, letter.amount, letter.currency) == (
        "acme",
        "xero",
        "o1",
        Decimal("6.00"),
        "GBP",
    )
    assert letter.id == "unapplied:acme:xero:o1:p1"
    assert letter.payload is not None and letter.payload["payment_id"] == "p1"
    assert json.loads(letter.original()) == letter.payload
    assert store.states["o1"].ledgers["xero"].pending == []


def test_a_fee_in_another_currency_is_reported_as_a_warning(store: Store) -> None:
    store.feed(PLACED)
    pay = event(
        "payment.captured",
        2,
        payment_id="p1",
        gateway="stripe",
        amount="24.00",
        currency="GBP",
        fee="0.50",
        fee_currency="USD",
    )
    result = store.feed(pay)
    assert result.warnings == ("fee_dropped",) and "dropped" in result.outcome.reason


CONFIG_JSON = CONFIG.model_dump_json().encode()
CONFIG_SOURCE = SourcePosition(topic="tenant-config", partition=0, offset=7)


def route(key: bytes | None, value: bytes | None, loaded: TenantConfig | None = None):
    from agents.enrichment import route_tenant_config

    return route_tenant_config(
        key, value, current=lambda tenant: loaded if tenant == "acme" else None, source=CONFIG_SOURCE, now=NOW
    )


def test_a_valid_tenant_config_is_stored_under_its_tenant_id() -> None:
    update = route(b"acme", CONFIG_JSON)
    assert (update.action, update.tenant_id, update.config) == ("store", "acme", CONFIG)


def test_an_older_tenant_config_version_is_ignored() -> None:
    newer = CONFIG.model_copy(update={"version": 3})
    assert route(b"acme", CONFIG_JSON, loaded=newer).action == "ignore"
    assert route(b"acme", newer.model_dump_json().encode(), loaded=CONFIG).action == "store"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        pytest.param(b"{not json", "not valid JSON", id="invalid-json"),
        pytest.param(
            json.dumps(json.loads(CONFIG_JSON) | {"policy": {"timezone": "Mars/Base"}}).encode(),
            "policy.timezone",
            id="bad-timezone",
        ),
        pytest.param(
            json.dumps(json.loads(CONFIG_JSON) | {"policy": {"reference_template": "{nr}"}}).encode(),
            "unknown field {nr}",
            id="bad-template",
        ),
        pytest.param(json.dumps({"tenant_id": "acme"}).encode(), "ledgers", id="missing-fields"),
    ],
)
def test_an_invalid_tenant_config_is_dead_lettered(value: bytes, needle: str) -> None:
    update = route(b"acme", value)
    assert (update.action, update.config) == ("dead_letter", None)
    letter = update.dead_letter
    assert letter is not None
    assert letter.reason_code is Reason.SCHEMA_VIOLATION and needle in letter.reason
    assert letter.original() == value and letter.source == CONFIG_SOURCE
    assert (letter.tenant_id, letter.kind) == ("acme", "tenant.config")


@pytest.mark.parametrize("key", [b"globex", None])
def test_a_tenant_config_under_another_key_is_dead_lettered(key: bytes | None) -> None:
    update = route(key, CONFIG_JSON)
    assert update.action == "dead_letter" and update.dead_letter is not None
    assert "key must be the tenant id" in update.dead_letter.reason
    assert update.dead_letter.original() == CONFIG_JSON


def test_a_tombstone_deletes_the_tenant() -> None:
    assert (route(b"acme", None).action, route(b"acme", None).tenant_id) == ("delete", "acme")
    assert route(None, None).action == "ignore"
