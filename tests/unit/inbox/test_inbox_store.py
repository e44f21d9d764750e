"""The inbox store: upsert by record id, failures again, resolution via bindings, retention, audit."""

from __future__ import annotations

from datetime import timedelta

from inbox_helpers import T0, invoice, later, rejected
from sqlalchemy import inspect

from store import bindings
from store import dead_letters as dl
from store.base import utcnow
from store.db import make_engine


def test_migration_creates_inbox_tables(sqlite_url, sessions) -> None:
    engine = make_engine(sqlite_url)
    try:
        names = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"dead_letter_items", "dead_letter_audit", "alert_marks", "inbox_users"} <= names


def test_a_record_becomes_an_open_item_with_its_fields(sessions, make_letter) -> None:
    letter = make_letter("1001")
    with sessions.begin() as s:
        item, created = dl.upsert(s, letter, "dlq:0:5")
    assert created
    with sessions() as s:
        [item] = dl.search(s, dl.Filters())
        assert (item.tenant_id, item.ledger, item.kind, item.order_id) == (
            "acme-uk",
            "xero",
            "invoice.create",
            "1001",
        )
        assert (item.amount, item.currency, item.status, item.attempts) == ("30.00", "GBP", "open", 1)
        assert item.reason_code == "ledger_rejected"
        assert "OUTPUT2" in item.ledger_messages[0]
        assert item.source_id == "order:1001:f:f1"
        assert item.letter() == letter


def test_the_same_command_failing_again_updates_the_same_item(sessions, make_letter) -> None:
    with sessions.begin() as s:
        item, _ = dl.upsert(s, make_letter("1001"), "dlq:0:5")
        dl.mark_retrying(s, item, "alice", "retry", None)
    again = rejected(
        invoice("1001"), at=later(5), message="Account code '999' is not a valid code for this document."
    )
    with sessions.begin() as s:
        item, created = dl.upsert(s, again, "dlq:0:9")
    assert not created
    with sessions() as s:
        [item] = dl.search(s, dl.Filters())
        assert (item.status, item.attempts, item.failures) == ("open", 2, 2)
        assert item.last_failed_at == later(5) and item.first_failed_at == T0
        assert "999" in item.ledger_messages[0]
        actions = [e.action for e in dl.history(s, item_id=item.id)]
        assert actions == ["failed_again", "retry", "received"]


def test_redelivery_of_the_same_record_counts_nothing(sessions, make_letter) -> None:
    letter = make_letter("1001")
    for _ in range(3):
        with sessions.begin() as s:
            dl.upsert(s, letter, "dlq:0:5")
    with sessions() as s:
        [item] = dl.search(s, dl.Filters())
        assert (item.attempts, item.failures) == (1, 1)


def test_a_failure_under_the_replay_key_updates_the_original_item(sessions, make_letter) -> None:
    with sessions.begin() as s:
        item, _ = dl.upsert(s, make_letter("1001"))
        dl.mark_retrying(s, item, "alice", "remapped", "k2")
    replayed = make_letter("1001").model_copy(update={"id": "k2"})
    with sessions.begin() as s:
        _, created = dl.upsert(s, replayed)
    assert not created
    with sessions() as s:
        assert dl.count(s, dl.Filters()) == 1


def test_retrying_items_are_resolved_when_their_source_is_bound(sessions, make_letter) -> None:
    with sessions.begin() as s:
        for order in ("1", "2"):
            item, _ = dl.upsert(s, make_letter(order))
            dl.mark_retrying(s, item, "alice", "retry", None)
        bindings.record_intent(
            s,
            tenant_id="acme-uk",
            ledger="xero",
            source_id="order:2:f:f1",
            kind="invoice.create",
            idempotency_key="k",
        )
        bindings.record(
            s,
            tenant_id="acme-uk",
            ledger="xero",
            source_id="order:1:f:f1",
            external_id="INV-1",
            kind="invoice.create",
            idempotency_key="k",
        )
    with sessions.begin() as s:
        done = dl.resolve_bound(s)
        assert [i.order_id for i in done] == ["1"]
    with sessions() as s:
        statuses = {i.order_id: i.status for i in dl.search(s, dl.Filters())}
        assert statuses == {"1": "resolved", "2": "retrying"}  # a pending intent is not a binding


def test_filters_scope_and_counts(sessions, make_letter) -> None:
    with sessions.begin() as s:
        dl.upsert(s, make_letter("1", tenant="acme-uk"))
        dl.upsert(s, make_letter("2", tenant="other"))
        dl.upsert(s, make_letter("3", tenant="other", at=later(60 * 48)))
    with sessions() as s:
        assert dl.count(s, dl.Filters(tenants=frozenset({"acme-uk"}))) == 1
        assert dl.count(s, dl.Filters(tenant="other", tenants=frozenset({"acme-uk"}))) == 0
        assert dl.count(s, dl.Filters(since=later(60 * 24))) == 1
        assert dl.counts_by_reason(s, dl.Filters()) == {"ledger_rejected": 3}
        assert dl.open_by_reason(s) == {"ledger_rejected": 3}


def test_retention_purges_closed_items_but_keeps_the_audit(sessions, make_letter) -> None:
    with sessions.begin() as s:
        old, _ = dl.upsert(s, make_letter("1"))
        dl.discard(s, old, "alice", "duplicate order, cancelled in the shop")
        old.closed_at = utcnow() - timedelta(days=91)
        recent, _ = dl.upsert(s, make_letter("2"))
        dl.discard(s, recent, "alice", "test order")
        dl.upsert(s, make_letter("3"))
    with sessions.begin() as s:
        assert dl.purge(s, utcnow() - timedelta(days=90)) == 1
    with sessions() as s:
        assert sorted(i.order_id for i in dl.search(s, dl.Filters())) == ["2", "3"]
        discards = [e for e in dl.history(s) if e.action == "discarded"]
        assert {e.detail for e in discards} == {"duplicate order, cancelled in the shop", "test order"}
        assert any(e.action == "purged" for e in dl.history(s))


def test_discard_needs_a_reason(sessions, make_letter) -> None:
    import pytest

    with sessions.begin() as s:
        item, _ = dl.upsert(s, make_letter("1"))
        with pytest.raises(ValueError):
            dl.discard(s, item, "alice", "  ")
