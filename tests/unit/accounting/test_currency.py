"""Currencies with other minor units than the cent (ISO 4217): JPY has none, KWD three."""

from __future__ import annotations

from decimal import Decimal

import pytest
from conftest import captured, line, order, placed, refunded, rows, run, uk_config
from pydantic import ValidationError

from schemas.events import OrderRefunded, PaymentCaptured
from schemas.money import minor_units, quantum

D = Decimal
PLACED = uk_config(trigger="placed")


@pytest.mark.parametrize(
    ("currency", "places"),
    [
        *[("JPY", 0), ("KRW", 0), ("VND", 0), ("CLP", 0), ("ISK", 0), ("XOF", 0), ("XAF", 0), ("HUF", 2)],
        *[("GBP", 2), ("EUR", 2), ("BHD", 3), ("KWD", 3), ("OMR", 3), ("JOD", 3), ("TND", 3), ("ZZZ", 2)],
    ],
)
def test_minor_units(currency, places):
    assert minor_units(currency) == places
    assert quantum(currency) == D(1).scaleb(-places)


def test_a_yen_order_posts_to_the_yen():
    """3 × 333 JPY + 20 %: 999 + 199.8 → 200 tax = 1,199 (rounded to the cent: 1,198.80, a dead letter)."""
    o = order(line("a", "3", "333"), currency="JPY", total="1199")
    invoice_decision, pay_decision, refund_decision = run(
        PLACED,
        placed(o),
        captured("1199", currency="JPY"),
        refunded(lines={"a": "1"}).model_copy(update={"currency": "JPY"}),
    )
    assert invoice_decision.outcome.kind == "emitted", invoice_decision.outcome
    [invoice] = invoice_decision.commands
    assert rows(invoice) == [("a", "200", "OUTPUT2", "999", "200")]
    doc = invoice.document
    assert (str(doc.subtotal), str(doc.total_tax), str(doc.total)) == ("999", "200", "1199")
    [payment] = pay_decision.commands
    assert payment.amount == D(1199)
    [note] = refund_decision.commands
    assert rows(note) == [("a", "200", "OUTPUT2", "333", "67")]
    assert str(note.document.total) == "400"


def test_a_yen_order_discount_is_allocated_in_whole_yen():
    o = order(line("a", "1", "1000"), line("b", "2", "500"), discounts=("101",), currency="JPY", total="2279")
    [decision] = run(PLACED, placed(o))
    assert decision.outcome.kind == "emitted", decision.outcome
    [invoice] = decision.commands
    assert all(ln.line_amount == ln.line_amount.to_integral_value() for ln in invoice.document.lines)
    assert invoice.document.total == D(2279)


def test_a_dinar_order_rounds_to_the_fils():
    o = order(line("a", "3", "0.333"), currency="KWD", total="1.199")
    [decision] = run(PLACED, placed(o))
    [invoice] = decision.commands
    assert rows(invoice) == [("a", "200", "OUTPUT2", "0.999", "0.200")]
    assert str(invoice.document.total) == "1.199"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        pytest.param(
            lambda: order(line("a", "1", "100"), currency="JPY", total="120.5"), "total", id="total"
        ),
        pytest.param(
            lambda: order(line("a", "1", "100"), currency="JPY", shipping="5.5", total="125"),
            "shipping_lines.0.price",
            id="shipping",
        ),
        pytest.param(
            lambda: order(line("a", "1", "100"), currency="GBP", discounts=("0.005",), total="120"),
            "discounts.0.amount",
            id="discount",
        ),
        pytest.param(
            lambda: order(line("a", "1", "100"), currency="JPY", gift_cards=(("g", "0.5"),), total="120"),
            "gift_cards.0.amount",
            id="gift-card",
        ),
        pytest.param(lambda: captured("10.5", currency="JPY"), "amount", id="payment"),
        pytest.param(lambda: captured("10.125", currency="GBP"), "amount", id="payment-gbp"),
        pytest.param(lambda: captured("10", currency="JPY", fee="0.3"), "fee", id="fee"),
        pytest.param(
            lambda: refunded(amount="1.5").model_validate(
                refunded(amount="1.5").model_dump() | {"currency": "JPY"}
            ),
            "amount_only",
            id="refund-amount",
        ),
        pytest.param(
            lambda: OrderRefunded.model_validate(refunded(shipping="1.001").model_dump()),
            "shipping",
            id="refund-shipping",
        ),
    ],
)
def test_amounts_finer_than_the_currency_are_rejected_naming_the_field(build, field):
    with pytest.raises(ValidationError) as caught:
        build()
    assert f"{field} " in str(caught.value) and "more decimals than" in str(caught.value)


def test_unit_prices_may_be_finer_than_the_currency():
    o = order(line("a", "3", "0.335"), currency="GBP", total="1.21")
    [decision] = run(PLACED, placed(o))
    assert decision.outcome.kind == "emitted", decision.outcome


def test_a_fee_is_checked_against_its_own_currency():
    payment = PaymentCaptured.model_validate(
        captured("1000", currency="JPY").model_dump() | {"fee": D("1.25"), "fee_currency": "USD"}
    )
    assert payment.fee == D("1.25")
