"""Order lifecycles: trigger policy, partial shipments, refunds, cancellations, payments, duplicates.

Each row: config + events → per event (outcome kind, reason code, [(kind, source id, amount)]),
where amount is the document total, the payment amount or the credit note total.
"""

from __future__ import annotations

import pytest
from conftest import (
    UK_TAX,
    Address,
    Customer,
    cancelled,
    captured,
    fulfilled,
    line,
    order,
    paid,
    placed,
    refunded,
    rows,
    run,
    uk_config,
    with_mapping,
)

from accounting.engine import apply

ORD = order(line("a", "3", "10.00"), line("b", "1", "5.00"), shipping="4.99", total="47.99")
"""a 3 × 10 + b 5 + shipping 4.99, exclusive 20 %: 39.99 + 8.00 tax = 47.99."""
O3 = order(line("a", "3", "19.99"), total="71.97")
GC = order(line("a", "1", "25"), gift_cards=(("gc1", "40.00"),), shipping="5", total="36.00")


def amount(command) -> str:
    if command.kind == "payment.create":
        return str(command.amount)
    return str(command.document.total)


def summary(decision) -> tuple:
    return (
        decision.outcome.kind,
        decision.outcome.reason_code,
        [(c.kind.split(".")[0], c.source_id, amount(c)) for c in decision.commands],
    )


INV, PAY, CN = "invoice", "payment", "credit_note"
FUL = uk_config()
PLACED = uk_config(trigger="placed")
PAID = uk_config(trigger="paid")

CASES = [
    pytest.param(
        FUL,
        [placed(ORD), fulfilled(ORD)],
        [("skipped", "not_trigger", []), ("emitted", "posted", [(INV, "order:o1:fulfillment:f3", "47.99")])],
        id="trigger-fulfilled-by-default",
    ),
    pytest.param(
        FUL,
        [placed(ORD), fulfilled(ORD, 3, lines={"a": "1"}), fulfilled(ORD, 4, lines={"a": "2", "b": "1"})],
        [
            ("skipped", "not_trigger", []),
            ("emitted", "posted", [(INV, "order:o1:fulfillment:f3", "17.99")]),
            ("emitted", "posted", [(INV, "order:o1:fulfillment:f4", "30.00")]),
        ],
        id="partial-fulfillment-shipping-once-rest-later",
    ),
    pytest.param(
        FUL,
        [
            fulfilled(ORD, 3, lines={"a": "1"}),
            fulfilled(ORD, 4, lines={"a": "5", "b": "1"}),
            fulfilled(ORD, 5),
        ],
        [
            ("emitted", "posted", [(INV, "order:o1:fulfillment:f3", "17.99")]),
            ("emitted", "posted", [(INV, "order:o1:fulfillment:f4", "30.00")]),
            ("skipped", "nothing_to_invoice", []),
        ],
        id="over-shipment-invoices-at-most-the-ordered-quantity",
    ),
    pytest.param(
        PLACED,
        [placed(ORD), paid(ORD), fulfilled(ORD)],
        [
            ("emitted", "posted", [(INV, "order:o1", "47.99")]),
            ("skipped", "already_posted", []),
            ("skipped", "already_posted", []),
        ],
        id="trigger-placed-later-events-skipped",
    ),
    pytest.param(
        PAID,
        [placed(ORD), fulfilled(ORD), paid(ORD)],
        [
            ("skipped", "not_trigger", []),
            ("skipped", "not_trigger", []),
            ("emitted", "posted", [(INV, "order:o1", "47.99")]),
        ],
        id="trigger-paid",
    ),
    pytest.param(
        FUL,
        [placed(ORD), captured("47.99", fee="1.20"), fulfilled(ORD, 7)],
        [
            ("skipped", "not_trigger", []),
            ("parked", "waiting_for_invoice", []),
            (
                "emitted",
                "posted",
                [(INV, "order:o1:fulfillment:f7", "47.99"), (PAY, "payment:o1:p6", "47.99")],
            ),
        ],
        id="payment-before-invoice-is-parked-then-follows-the-invoice",
    ),
    pytest.param(
        FUL,
        [
            captured("47.99"),
            fulfilled(ORD, 3, lines={"a": "1"}),
            fulfilled(ORD, 4, lines={"a": "2", "b": "1"}),
        ],
        [
            ("parked", "waiting_for_invoice", []),
            (
                "emitted",
                "posted",
                [(INV, "order:o1:fulfillment:f3", "17.99"), (PAY, "payment:o1:p6", "17.99")],
            ),
            (
                "emitted",
                "posted",
                [(INV, "order:o1:fulfillment:f4", "30.00"), (PAY, "payment:o1:p6:2", "30.00")],
            ),
        ],
        id="parked-payment-split-over-partial-invoices",
    ),
    pytest.param(
        PLACED,
        [placed(ORD), captured("47.99")],
        [
            ("emitted", "posted", [(INV, "order:o1", "47.99")]),
            ("emitted", "posted", [(PAY, "payment:o1:p6", "47.99")]),
        ],
        id="payment-after-invoice",
    ),
    pytest.param(
        PLACED,
        [placed(ORD), captured("50.00")],
        [("emitted", "posted", [(INV, "order:o1", "47.99")]), ("dead_letter", "accounting_rule", [])],
        id="over-payment-dead-letters",
    ),
    pytest.param(
        PLACED,
        [placed(GC), captured("10.00")],
        [
            ("emitted", "posted", [(INV, "order:o1", "36.00"), (PAY, "giftcard:o1:gc1", "36.00")]),
            ("dead_letter", "accounting_rule", []),
        ],
        id="gift-card-larger-than-invoice-pays-it-all",
    ),
    pytest.param(
        PLACED,
        [placed(O3), refunded(lines={"a": "1"})],
        [
            ("emitted", "posted", [(INV, "order:o1", "71.97")]),
            ("emitted", "posted", [(CN, "refund:o1:r4", "23.99")]),
        ],
        id="refund-after-posting-credits-line-and-quantity",
    ),
    pytest.param(
        PLACED,
        [placed(O3), refunded(lines={"a": "3"})],
        [
            ("emitted", "posted", [(INV, "order:o1", "71.97")]),
            ("emitted", "posted", [(CN, "refund:o1:r4", "71.97")]),
        ],
        id="full-refund-also-credits-the-rounding-line",
    ),
    pytest.param(
        PLACED,
        [placed(O3), refunded(4, lines={"a": "2"}), refunded(5, lines={"a": "2"})],
        [
            ("emitted", "posted", [(INV, "order:o1", "71.97")]),
            ("emitted", "posted", [(CN, "refund:o1:r4", "47.98")]),
            ("dead_letter", "over_credit", []),
        ],
        id="over-credit-dead-letters-no-clamp",
    ),
    pytest.param(
        PLACED,
        [placed(ORD), refunded(shipping="4.99", amount="12.00")],
        [
            ("emitted", "posted", [(INV, "order:o1", "47.99")]),
            ("emitted", "posted", [(CN, "refund:o1:r4", "17.99")]),
        ],
        id="shipping-and-amount-only-refund",
    ),
    pytest.param(
        PLACED,
        [placed(ORD), refunded(amount="48.00")],
        [("emitted", "posted", [(INV, "order:o1", "47.99")]), ("dead_letter", "over_credit", [])],
        id="amount-only-over-credit",
    ),
    pytest.param(
        FUL,
        [placed(ORD), refunded(lines={"a": "1"}), fulfilled(ORD, 5, lines={"a": "2", "b": "1"})],
        [
            ("skipped", "not_trigger", []),
            ("skipped", "adjusted_before_posting", []),
            ("emitted", "posted", [(INV, "order:o1:fulfillment:f5", "35.99")]),
        ],
        id="refund-before-posting-reduces-quantities",
    ),
    pytest.param(
        FUL,
        [placed(ORD), refunded(shipping="4.99", amount="6.00"), fulfilled(ORD, 5)],
        [
            ("skipped", "not_trigger", []),
            ("skipped", "adjusted_before_posting", []),
            ("emitted", "posted", [(INV, "order:o1:fulfillment:f5", "36.00")]),
        ],
        id="shipping-and-amount-refund-before-posting",
    ),
    pytest.param(
        FUL,
        [
            fulfilled(ORD, 3, lines={"a": "1"}),
            refunded(4, lines={"a": "3"}),
            fulfilled(ORD, 5, lines={"b": "1"}),
        ],
        [
            ("emitted", "posted", [(INV, "order:o1:fulfillment:f3", "17.99")]),
            ("emitted", "posted", [(CN, "refund:o1:r4", "12.00")]),
            ("emitted", "posted", [(INV, "order:o1:fulfillment:f5", "6.00")]),
        ],
        id="refund-after-partial-shipment-reduces-unshipped-first",
    ),
    pytest.param(
        FUL,
        [placed(ORD), cancelled(), fulfilled(ORD, 6)],
        [
            ("skipped", "not_trigger", []),
            ("skipped", "cancelled", []),
            ("skipped", "cancelled", []),
        ],
        id="cancelled-before-posting-suppresses",
    ),
    pytest.param(
        PLACED,
        [placed(ORD), cancelled(), refunded(6, lines={"a": "3", "b": "1"}, shipping="4.99")],
        [
            ("emitted", "posted", [(INV, "order:o1", "47.99")]),
            ("skipped", "cancelled_after_posting", []),
            ("emitted", "posted", [(CN, "refund:o1:r6", "47.99")]),
        ],
        id="cancelled-after-posting-refund-credits-all",
    ),
    pytest.param(
        PLACED,
        [placed(ORD), placed(ORD)],
        [("emitted", "posted", [(INV, "order:o1", "47.99")]), ("skipped", "duplicate", [])],
        id="duplicate-event-id",
    ),
    pytest.param(
        PLACED,
        [placed(ORD), refunded(4, rid="r1", lines={"a": "1"}), refunded(5, rid="r1", lines={"a": "1"})],
        [
            ("emitted", "posted", [(INV, "order:o1", "47.99")]),
            ("emitted", "posted", [(CN, "refund:o1:r1", "12.00")]),
            ("skipped", "duplicate", []),
        ],
        id="duplicate-refund-id-under-a-new-event-id",
    ),
    pytest.param(
        FUL,
        [fulfilled(ORD, 3, fid="f1", lines={"a": "1"}), fulfilled(ORD, 4, fid="f1", lines={"a": "1"})],
        [
            ("emitted", "posted", [(INV, "order:o1:fulfillment:f1", "17.99")]),
            ("skipped", "duplicate", []),
        ],
        id="duplicate-fulfillment-id-under-a-new-event-id",
    ),
    pytest.param(
        PLACED,
        [placed(ORD), captured("20.00", n=6), captured("20.00", n=6).model_copy(update={"event_id": "e7"})],
        [
            ("emitted", "posted", [(INV, "order:o1", "47.99")]),
            ("emitted", "posted", [(PAY, "payment:o1:p6", "20.00")]),
            ("skipped", "duplicate", []),
        ],
        id="duplicate-payment-id-under-a-new-event-id",
    ),
    pytest.param(
        FUL,
        [
            captured("20.00", n=1),
            captured("20.00", n=1).model_copy(update={"event_id": "e2"}),
            fulfilled(ORD),
        ],
        [
            ("parked", "waiting_for_invoice", []),
            ("skipped", "duplicate", []),
            (
                "emitted",
                "posted",
                [(INV, "order:o1:fulfillment:f3", "47.99"), (PAY, "payment:o1:p1", "20.00")],
            ),
        ],
        id="duplicate-parked-payment-id-is-parked-once",
    ),
    pytest.param(
        PLACED,
        [captured("50.00", n=1), placed(ORD, 2)],
        [
            ("parked", "waiting_for_invoice", []),
            ("emitted", "posted", [(INV, "order:o1", "47.99"), (PAY, "payment:o1:p1", "47.99")]),
        ],
        id="over-payment-first-applies-what-is-due",
    ),
    pytest.param(
        uk_config(("xero", "quickbooks", "moloni"), trigger="placed"),
        [placed(ORD)],
        [
            (
                "emitted",
                "posted",
                [(INV, "order:o1", "47.99"), (INV, "order:o1", "47.99"), (INV, "order:o1", "47.99")],
            )
        ],
        id="every-ledger-gets-the-document",
    ),
    pytest.param(
        uk_config(("xero", "quickbooks"), trigger="placed", document="sales_receipt"),
        [captured("47.99", n=1), placed(ORD, 2)],
        [
            ("parked", "waiting_for_invoice", []),
            (
                "emitted",
                "posted",
                [
                    ("sales_receipt", "order:o1", "47.99"),
                    (INV, "order:o1", "47.99"),
                    (PAY, "payment:o1:p1", "47.99"),
                ],
            ),
        ],
        id="sales-receipt-only-in-quickbooks",
    ),
]


@pytest.mark.parametrize(("config", "events", "expected"), CASES)
def test_lifecycle(config, events, expected):
    decisions = run(config, *events)
    assert [summary(d) for d in decisions] == expected
    for d in decisions:
        assert (d.outcome.kind == "emitted") == bool(d.commands or d.summary)
        assert d.outcome.reason


def test_partial_invoices_sum_to_the_order_total_with_the_last_one_carrying_rounding():
    o = order(line("a", "3", "0.335"), line("b", "3", "19.99"), total="73.17")
    decisions = run(FUL, *(fulfilled(o, n, lines={"a": "1", "b": "1"}) for n in (1, 2, 3)))
    invoices = [d.commands[0] for d in decisions]
    assert sum(i.document.total for i in invoices) == o.total
    assert [r[0] for r in rows(invoices[-1])][-1] == "rounding"
    assert all("rounding" not in [r[0] for r in rows(i)] for i in invoices[:-1])


def test_credit_note_mirrors_invoice_lines_codes_and_units():
    o = order(line("a", "3", "10.00", discount="0.30", sku="S1"), shipping="4.99", total="41.63")
    _, cn = run(PLACED, placed(o), refunded(lines={"a": "1"}, shipping="2.00"))
    note = cn.commands[0]
    assert note.invoice_source_id == "order:o1" and note.kind == "credit_note.create"
    assert rows(note) == [
        ("a", "200", "OUTPUT2", "9.90", "1.98"),
        ("shipping:s1", "425", "OUTPUT2", "2.00", "0.40"),
    ]
    assert note.document.lines[0].unit_amount == 10 and note.document.lines[0].item_code == "S1"
    assert note.allocate == note.document.total


def test_credit_allocation_is_limited_to_what_is_outstanding():
    _, _, cn = run(PLACED, placed(ORD), captured("40.00"), refunded(7, lines={"a": "1"}))
    note = cn.commands[0]
    assert (str(note.document.total), str(note.allocate)) == ("12.00", "7.99")


@pytest.mark.parametrize(
    ("gateway", "currency", "payments", "account"),
    [
        pytest.param("stripe", "GBP", None, "091", id="exact-gateway-and-currency"),
        pytest.param("stripe", "EUR", None, "092", id="gateway-any-currency"),
        pytest.param("paypal", "GBP", None, "090", id="default-payment"),
    ],
)
def test_payment_account(gateway, currency, payments, account):
    o = order(line("a", "1", "10"), currency=currency, total="12.00")
    _, pay = run(PLACED, placed(o), captured("12.00", gateway=gateway, currency=currency, fee="0.50"))
    command = pay.commands[0]
    assert (command.account_code, command.gateway, str(command.fee), command.fee_account_code) == (
        account,
        gateway,
        "0.50",
        "404",
    )
    assert command.invoice_source_id == "order:o1"


def test_unmapped_gateway_dead_letters_naming_it():
    config = with_mapping(PLACED, accounts={"default_payment": None})
    _, pay = run(config, placed(ORD), captured("10.00", gateway="klarna"))
    assert pay.outcome.kind == "dead_letter" and pay.outcome.reason_code == "accounting_rule"
    assert "klarna" in pay.outcome.reason
    assert pay.state.ledgers["xero"].pending == [] and "e6" not in pay.state.processed_event_ids


def test_no_fee_fields_without_a_fee_account():
    config = with_mapping(PLACED, accounts={"fees": None})
    _, pay = run(config, placed(ORD), captured("10.00", fee="0.50"))
    assert (pay.commands[0].fee, pay.commands[0].fee_account_code) == (None, None)


@pytest.mark.parametrize(
    ("changes", "event_order", "code", "needle"),
    [
        pytest.param(
            {"tax": {"no_tax": None}},
            GC.model_copy(update={"lines": (line("g", "1", "25", gift_card=True),)}),
            "accounting_rule",
            "no_tax",
            id="gift-card-sold-needs-no-tax",
        ),
        pytest.param(
            {"tax": {"exempt": None}},
            order(line("a", "1", "10"), customer=Customer(tax_exempt=True), total="10.00"),
            "accounting_rule",
            "tax_exempt",
            id="exempt-customer-needs-exempt-code",
        ),
        pytest.param(
            {},
            order(line("a", "1", "10"), total="13.00"),
            "accounting_rule",
            "differs",
            id="order-total-far-from-lines",
        ),
    ],
)
def test_rule_violations_dead_letter(changes, event_order, code, needle):
    config = with_mapping(PLACED, **changes)
    [decision] = run(config, placed(event_order))
    assert (decision.outcome.kind, decision.outcome.reason_code) == ("dead_letter", code)
    assert needle in decision.outcome.reason and decision.commands == ()


def test_line_mode_without_discount_account_dead_letters():
    config = with_mapping(uk_config(trigger="placed", discount_mode="line"), accounts={"discounts": None})
    [decision] = run(config, placed(order(line("a", "1", "10"), discounts=("1",), total="10.80")))
    assert decision.outcome.reason_code == "accounting_rule" and "discounts" in decision.outcome.reason


def test_rounding_with_fallback_code_when_no_tax_is_missing():
    config = with_mapping(PLACED, tax={"no_tax": None, "fallback": UK_TAX.rules[1].tax})
    [decision] = run(config, placed(O3))
    assert rows(decision.commands[0])[-1] == ("rounding", "497", "EXEMPTOUTPUT", "0.01", "0.00")


def test_same_event_gives_byte_identical_commands_and_input_state_is_untouched():
    config = uk_config(("xero", "moloni"))
    first = run(config, placed(ORD), captured("47.99"))[-1].state
    snapshot = first.model_dump_json()
    a = apply(first, fulfilled(ORD), config)
    b = apply(first, fulfilled(ORD), config)
    assert [c.model_dump_json() for c in a.commands] == [c.model_dump_json() for c in b.commands]
    assert [c.idempotency_key for c in a.commands] == [c.idempotency_key for c in b.commands]
    assert len({c.idempotency_key for c in a.commands}) == len(a.commands) == 4
    assert first.model_dump_json() == snapshot


def test_state_round_trips_through_json():
    from accounting.state import OrderState

    state = run(FUL, captured("47.99"), fulfilled(ORD, 3, lines={"a": "1"}))[-1].state
    again = OrderState.model_validate_json(state.model_dump_json())
    assert again == state
    nxt = apply(again, fulfilled(ORD, 4, lines={"a": "2", "b": "1"}), FUL)
    assert [c.source_id for c in nxt.commands] == ["order:o1:fulfillment:f4", "payment:o1:p6:2"]


def test_destination_address_beats_billing_for_tax():
    o = order(line("a", "1", "10"), total="10.00").model_copy(
        update={"shipping_address": Address(country="US"), "billing_address": Address(country="GB")}
    )
    [decision] = run(PLACED, placed(o))
    assert rows(decision.commands[0])[0][2] == "EXEMPTOUTPUT"
    assert decision.commands[0].document.contact.country == "GB"


def test_a_shipment_re_sent_under_a_new_event_id_is_not_counted_twice():
    """Trigger placed: shipments are only recorded; a repeat must not double the shipped quantity."""
    first = fulfilled(ORD, 3, fid="f1", lines={"a": "1"})
    again = first.model_copy(update={"event_id": "e4"})
    *_, last = run(PLACED, placed(ORD), first, again)
    assert (last.outcome.kind, last.outcome.reason_code) == ("skipped", "duplicate")
    assert last.state.fulfilled == {"a": 1}
    assert last.state.fulfillment_ids == ["f1"]


def test_states_stored_before_the_id_lists_still_load():
    from accounting.state import OrderState

    old = {"tenant_id": "acme", "order_id": "o1", "refund_ids": ["r1"]}
    state = OrderState.model_validate(old)
    assert (state.fulfillment_ids, state.payment_ids) == ([], [])


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([placed(ORD, 1), captured("50.00", n=2)], id="invoice-first"),
        pytest.param([captured("50.00", n=1), placed(ORD, 2)], id="payment-first"),
    ],
)
def test_over_payment_ends_in_a_dead_letter_whichever_arrives_first(events):
    """47.99 invoiced, 50.00 paid: the 2.01 (invoice first: the whole payment) is dead-lettered
    as an accounting_rule over-payment, and nothing of it stays parked."""
    decisions = run(PLACED, *events)
    letters = [
        (d.outcome.reason_code, d.outcome.reason) for d in decisions if d.outcome.kind == "dead_letter"
    ]
    letters += [(u.code.value, u.reason) for d in decisions for u in d.unapplied]
    [(code, reason)] = letters
    assert code == "accounting_rule" and "over-payment" in reason
    state = decisions[-1].state
    assert state.ledgers["xero"].pending == []


def test_over_payment_parked_over_partial_shipments_dead_letters_the_rest_at_the_last():
    decisions = run(
        FUL,
        captured("50.00", n=1),
        fulfilled(ORD, 3, lines={"a": "1"}),
        fulfilled(ORD, 4, lines={"a": "2", "b": "1"}),
    )
    assert [summary(d)[2] for d in decisions[1:]] == [
        [(INV, "order:o1:fulfillment:f3", "17.99"), (PAY, "payment:o1:p1", "17.99")],
        [(INV, "order:o1:fulfillment:f4", "30.00"), (PAY, "payment:o1:p1:2", "30.00")],
    ]
    assert decisions[1].unapplied == ()
    [rest] = decisions[2].unapplied
    assert (rest.ledger, rest.payment_id, rest.event_id, str(rest.amount), rest.currency) == (
        "xero",
        "p1",
        "e1",
        "2.01",
        "GBP",
    )
    assert "over-payment" in decisions[2].outcome.reason
    assert decisions[2].state.ledgers["xero"].pending == []


def test_a_gift_card_left_over_stays_parked_it_is_not_an_over_payment():
    [decision] = run(PLACED, placed(GC))
    assert decision.unapplied == ()
    assert [p.kind for p in decision.state.ledgers["xero"].pending] == ["giftcard"]


@pytest.mark.parametrize("first", ["invoice", "payment"])
def test_a_fee_in_another_currency_is_dropped_and_said_so(first):
    pay = captured("47.99", n=6, fee="0.50").model_copy(update={"fee_currency": "USD"})
    events = [placed(ORD, 1), pay] if first == "invoice" else [pay, placed(ORD, 7)]
    decisions = run(PLACED, *events)
    [command] = [c for d in decisions for c in d.commands if c.kind == "payment.create"]
    assert (command.amount, command.fee, command.fee_account_code) == (ORD.total, None, None)
    paid_decision = decisions[1] if first == "invoice" else decisions[0]
    assert "fee 0.50 USD dropped" in paid_decision.outcome.reason
    assert paid_decision.warnings == ("fee_dropped",)
