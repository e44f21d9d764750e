"""The daily-summary accumulator (`DayBook`) and `close_day` parts and cross-day credit notes."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import T0, D, line, order, placed, refunded, run, uk_config
from pydantic import TypeAdapter

from accounting.summary import DayBook, SummaryContribution, close_day, closes_at
from schemas.events import OrderRefunded

DAY = date(2024, 6, 1)
GRACE = timedelta(minutes=10)


def part(
    order_id: str, net: str, tax: str, *, account: str = "200", kind: str = "invoice"
) -> SummaryContribution:
    return SummaryContribution(
        tenant_id="acme",
        ledger="xero",
        day=DAY,
        currency="GBP",
        kind=kind,  # type: ignore[arg-type]
        account_code=account,
        tax_code="OUTPUT2",
        net=D(net),
        tax=D(tax),
        order_id=order_id,
        source_id=f"order:{order_id}",
    )


def book_with(*parts: SummaryContribution) -> DayBook:
    book = DayBook.for_contribution(parts[0])
    for p in parts:
        book.add(p)
    return book


def test_a_contribution_delivered_twice_is_counted_once() -> None:
    a, b = part("o1", "10.00", "2.00"), part("o2", "5.00", "1.00")
    book = book_with(a, b)
    assert book.add(a) is False
    assert book.items == [a, b]
    [invoice] = close_day(book.items)
    assert invoice.document.total == D("18.00")


def test_the_same_order_may_contribute_to_two_accounts_and_two_documents() -> None:
    shipping = part("o1", "5.00", "1.00", account="425")
    second_shipment = replace(part("o1", "10.00", "2.00"), source_id="order:o1:fulfillment:f2")
    book = book_with(part("o1", "10.00", "2.00"), shipping, second_shipment)
    assert len(book.items) == 3


def test_a_contribution_of_another_day_is_refused() -> None:
    book = book_with(part("o1", "10.00", "2.00"))
    with pytest.raises(ValueError, match="another day"):
        book.add(replace(part("o2", "1.00", "0.20"), day=DAY + timedelta(days=1)))


def test_a_day_is_due_after_midnight_in_the_tenant_zone_plus_grace() -> None:
    # 1 June in London is BST (UTC+1): the day ends at 23:00 UTC, due from 23:10 UTC.
    assert closes_at(DAY, "Europe/London", GRACE) == datetime(2024, 6, 1, 23, 10, tzinfo=UTC)
    book = book_with(part("o1", "10.00", "2.00"))
    assert not book.due(datetime(2024, 6, 1, 23, 9, 59, tzinfo=UTC), "Europe/London", GRACE)
    assert book.due(datetime(2024, 6, 1, 23, 10, tzinfo=UTC), "Europe/London", GRACE)
    assert not book.due(datetime(2024, 6, 1, 23, 10, tzinfo=UTC), "America/New_York", GRACE)
    assert not DayBook.for_contribution(part("o1", "1", "0")).due(
        datetime(2030, 1, 1, tzinfo=UTC), "UTC", GRACE
    )


def test_close_empties_the_book_and_a_late_contribution_becomes_part_2() -> None:
    book = book_with(part("o1", "10.00", "2.00"), part("o2", "5.00", "1.00"))
    copy = book.model_copy(deep=True)
    now = datetime(2024, 6, 3, tzinfo=UTC)
    [first] = book.close(uk_config().policy, now)
    assert (first.source_id, first.order_ids, first.document.total) == (
        "summary:2024-06-01:GBP",
        ("o1", "o2"),
        D("18.00"),
    )
    assert first.document.reference == "Daily sales 2024-06-01 GBP (2 orders)"
    assert (book.items, book.part, book.closed_at) == ([], 2, now)
    # Closing the same part again (a crash before the emptied book was stored) repeats the
    # same document and key: the connector binds it instead of posting it twice.
    assert copy.close(uk_config().policy, now) == (first,)

    assert book.add(part("o3", "7.00", "1.40"))
    assert book.add(part("o1", "10.00", "2.00")) is False  # a redelivery after the close
    [late] = book.close(uk_config().policy, now)
    assert (late.source_id, late.order_ids, late.document.total) == (
        "summary:2024-06-01:GBP:2",
        ("o3",),
        D("8.40"),
    )
    assert late.document.reference == "Daily sales 2024-06-01 GBP part 2 (1 orders)"
    assert late.idempotency_key != first.idempotency_key


def test_compacting_drops_the_dedup_keys_but_keeps_the_part_counter() -> None:
    book = book_with(part("o1", "10.00", "2.00"))
    closed = datetime(2024, 6, 2, tzinfo=UTC)
    book.close(uk_config().policy, closed)
    keep = timedelta(days=2)
    assert not book.compactable(closed + keep - timedelta(seconds=1), keep)
    assert book.compactable(closed + keep, keep)
    book.compact()
    assert (book.seen, book.part) == ([], 2)
    assert not book.compactable(closed + keep, keep)


def test_the_book_and_a_contribution_survive_their_wire_formats() -> None:
    book = book_with(part("o1", "10.10", "2.02"))
    assert DayBook.model_validate_json(book.model_dump_json()) == book
    # agents.enrich sends contributions as dataclasses.asdict JSON with str() for dates and decimals
    wire = json.dumps(asdict(book.items[0]), default=str)
    assert TypeAdapter(SummaryContribution).validate_python(json.loads(wire)) == book.items[0]


def test_a_refund_of_an_earlier_day_credits_that_day_s_summary_invoice() -> None:
    config = uk_config(("xero",), trigger="placed", mode="daily_summary")
    o1 = order(line("a", "3", "10.00"), total="36.00")
    late_refund = OrderRefunded(
        **{**refunded(lines={"a": "1"}).model_dump(), "occurred_at": T0 + timedelta(days=2)}
    )
    sale, refund = run(config, placed(o1), late_refund)
    assert {c.source_id for c in sale.summary} == {"order:o1"}
    assert {(c.day, c.invoice_day, c.source_id) for c in refund.summary} == {
        (date(2024, 3, 3), date(2024, 3, 1), "refund:o1:r4")
    }
    [note] = close_day(refund.summary, config.policy)
    assert (note.source_id, note.invoice_source_id, note.document.total) == (
        "summary:2024-03-03:GBP:refunds:2024-03-01",
        "summary:2024-03-01:GBP",
        D("12.00"),
    )
    assert note.document.reference == "Daily refunds 2024-03-03 GBP of sales 2024-03-01 (1 orders)"
    # Closing both days: one invoice on the 1st, one credit note on the 3rd referencing it.
    [invoice] = close_day(sale.summary, config.policy)
    assert invoice.source_id == note.invoice_source_id
