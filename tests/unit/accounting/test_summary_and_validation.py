"""Daily summaries and the small line helpers: one case per row (mapping checks: tests/unit/store)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from conftest import line, order, placed, refunded, run, uk_config

from accounting.engine import apply
from accounting.lines import allocate, line_tax
from accounting.summary import close_day
from schemas.events import OrderPlaced

D = Decimal


@pytest.mark.parametrize(
    ("amount", "rate", "kind", "tax"),
    [
        pytest.param("59.97", "20", "inclusive", "10.00", id="inclusive-half-up"),
        pytest.param("59.97", "20", "exclusive", "11.99", id="exclusive"),
        pytest.param("0.01", "20", "exclusive", "0.00", id="one-cent"),
        pytest.param("0.03", "20", "exclusive", "0.01", id="three-cents"),
        pytest.param("-10.00", "20", "exclusive", "-2.00", id="negative-discount-line"),
        pytest.param("0.025", "20", "exclusive", "0.01", id="sub-cent-rounds-half-up"),
        pytest.param("99.99", "23", "inclusive", "18.70", id="inclusive-23"),
    ],
)
def test_line_tax(amount, rate, kind, tax):
    assert str(line_tax(D(amount), D(rate), kind)) == tax


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        pytest.param("10.00", ["1", "1", "1"], ["3.34", "3.33", "3.33"], id="thirds"),
        pytest.param("0.01", ["1", "1"], ["0.01", "0.00"], id="one-cent-to-the-first"),
        pytest.param("1.00", ["0", "0"], ["0.50", "0.50"], id="zero-weights-even"),
        pytest.param("5.00", ["1", "2", "7"], ["0.50", "1.00", "3.50"], id="exact"),
        pytest.param("0.05", ["3", "3", "1"], ["0.02", "0.02", "0.01"], id="largest-remainder"),
    ],
)
def test_allocate_sums_exactly(total, weights, parts):
    out = allocate(D(total), [D(w) for w in weights])
    assert [str(p) for p in out] == parts and sum(out) == D(total)


def _placed(oid: str, minutes: int, the_order):
    event = placed(the_order, minutes)
    return OrderPlaced(**{**event.model_dump(), "order_id": oid, "event_id": f"{oid}-{minutes}"})


def test_daily_summary_contributes_then_closes_one_invoice_per_day_and_currency():
    config = uk_config(("xero",), trigger="placed", mode="daily_summary", timezone="Europe/London")
    o1 = order(line("a", "3", "19.99"), shipping="5.00", total="77.97")
    o2 = order(line("a", "1", "10.00", sku="BK-1"), line("g", "1", "20", gift_card=True), total="32.00")
    d1 = apply(None, _placed("o1", 1, o1), config)
    d2 = apply(None, _placed("o2", 2, o2), config)
    assert d1.commands == () and d1.outcome.kind == "emitted" and d1.outcome.reason_code == "summarised"
    assert {(c.account_code, c.tax_code, str(c.net), str(c.tax)) for c in d1.summary} == {
        ("200", "OUTPUT2", "59.97", "11.99"),
        ("425", "OUTPUT2", "5.00", "1.00"),
        ("497", "NONE", "0.01", "0.00"),
    }
    [invoice] = close_day(d2.summary + d1.summary, config.policy)
    assert invoice.kind == "invoice.create" and invoice.source_id == "summary:2024-03-01:GBP"
    assert invoice.order_ids == ("o1", "o2")
    assert [
        (ln.account_code, ln.tax_code, str(ln.line_amount), str(ln.tax_amount))
        for ln in invoice.document.lines
    ] == [
        ("200", "OUTPUT2", "59.97", "11.99"),
        ("230", "OUTPUT2", "10.00", "2.00"),
        ("425", "OUTPUT2", "5.00", "1.00"),
        ("497", "NONE", "0.01", "0.00"),
        ("801", "NONE", "20.00", "0.00"),
    ]
    assert invoice.document.total == o1.total + o2.total
    assert invoice.document.contact.name == "Online sales"
    assert close_day(d1.summary + d2.summary, config.policy) == (invoice,)


def test_daily_summary_refunds_become_a_summary_credit_note():
    config = uk_config(("xero",), trigger="placed", mode="daily_summary")
    o1 = order(line("a", "3", "10.00"), total="36.00")
    _, refund = run(config, placed(o1), refunded(lines={"a": "1"}))
    assert refund.commands == () and refund.summary
    [note] = close_day(refund.summary)
    assert (note.kind, note.source_id, note.invoice_source_id, str(note.document.total)) == (
        "credit_note.create",
        "summary:2024-03-01:GBP:refunds",
        "summary:2024-03-01:GBP",
        "12.00",
    )
