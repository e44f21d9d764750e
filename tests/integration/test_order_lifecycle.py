"""One order's whole life through the real broker, the worker and the Xero sandbox.

placed → fulfilled (part) → fulfilled (rest) → refund of one unit → payment, every event
published twice, then one shipment and the payment re-sent under new event ids: the command
topic holds exactly the expected commands, in order, once each; the duplicates are counted as
skipped; the sandbox ends with the documents to the cent, the
gateway fee included (a spend-money bank transaction).
A payment captured before anything shipped waits in the order state and is posted right
after the invoice.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from streams.devstack import Stack, wait_until

TENANT = "acme-uk"
D = Decimal

# Two lines and shipping, GB destination: OUTPUT2 (20 %), prices exclusive of tax.
#   l1: 2 × 10.00 = 20.00   l2: 1 × 20.00 = 20.00   shipping 5.00   net 45.00 + VAT 9.00 = 54.00
ORDER: dict[str, Any] = {
    "order_number": "3001",
    "currency": "GBP",
    "prices_include_tax": False,
    "lines": [
        {"line_id": "l1", "sku": "MUG-01", "name": "Mug", "quantity": "2", "unit_price": "10.00"},
        {"line_id": "l2", "sku": "POT-01", "name": "Teapot", "quantity": "1", "unit_price": "20.00"},
    ],
    "shipping_lines": [{"line_id": "s1", "title": "Courier", "price": "5.00"}],
    "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
    "shipping_address": {"country": "GB", "postcode": "SW1A 1AA"},
    "total": "54.00",
}


def event(kind: str, order_id: str, n: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": f"{order_id}-e{n}",
        "tenant_id": TENANT,
        "order_id": order_id,
        "occurred_at": f"2026-11-20T1{n}:00:00+00:00",
        **fields,
    }


def encoded(events: list[dict[str, Any]], times: int = 1) -> list[tuple[str, bytes]]:
    """Each event `times` times in a row (a producer retrying), keyed by order id."""
    return [(e["order_id"], json.dumps(e).encode()) for e in events for _ in range(times)]


def commands(stack: Stack) -> list[dict[str, Any]]:
    return [json.loads(value) for _, value in stack.read_topic(stack.names.commands("xero"), wait=2.0)]


def outcomes(stack: Stack) -> dict[tuple[str, str], float]:
    """ledgerstream_events_total by (outcome, reason), from the worker's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{stack.web_port}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ledgerstream_events_total":
                out[(sample.labels["outcome"], sample.labels["reason"])] = sample.value
    return out


def org(stack: Stack) -> dict[str, Any]:
    return stack.org("Demo UK Ltd")


def test_lifecycle_published_twice_posts_each_document_once(running_stack: Stack) -> None:
    stack = running_stack
    oid = "o-life-1"
    events = [
        event("order.placed", oid, 1, order=ORDER),
        event(
            "order.fulfilled",
            oid,
            2,
            order=ORDER,
            fulfillment_id="f1",
            lines=[{"line_id": "l1", "quantity": "2"}],
        ),
        event(
            "order.fulfilled",
            oid,
            3,
            order=ORDER,
            fulfillment_id="f2",
            lines=[{"line_id": "l2", "quantity": "1"}],
        ),
        event(
            "order.refunded",
            oid,
            4,
            refund_id="r1",
            currency="GBP",
            lines=[{"line_id": "l1", "quantity": "1"}],
        ),
        event(
            "payment.captured",
            oid,
            5,
            payment_id="p1",
            gateway="stripe",
            amount="42.00",
            currency="GBP",
            fee="1.50",
        ),
    ]
    # An upstream system re-sending a shipment and a payment under new event ids (same ids).
    resent = [dict(events[1], event_id=f"{oid}-e6"), dict(events[4], event_id=f"{oid}-e7")]
    stack.publish(encoded(events, times=2) + encoded(resent))

    # All twelve read; each event once ends its own way, each second copy and each re-sent
    # shipment / payment is a counted duplicate.
    wait_until(lambda: sum(outcomes(stack).values()) == 12)
    assert outcomes(stack) == {
        ("skipped", "not_trigger"): 1,
        ("emitted", "posted"): 4,
        ("skipped", "duplicate"): 7,
    }
    wait_until(lambda: len(org(stack)["payments"]) == 2, timeout=90)
    wait_until(lambda: org(stack)["bank_transactions"], timeout=30)  # the fee follows its payment

    sent = commands(stack)
    assert [(c["kind"], c["source_id"]) for c in sent] == [
        ("invoice.create", f"order:{oid}:fulfillment:f1"),
        ("invoice.create", f"order:{oid}:fulfillment:f2"),
        ("credit_note.create", f"refund:{oid}:r1"),
        ("payment.create", f"payment:{oid}:p1"),
        ("payment.create", f"payment:{oid}:p1:2"),
    ]
    assert len({c["idempotency_key"] for c in sent}) == 5
    first, second, credit, pay1, pay2 = sent
    # Shipment 1: 2 × Mug + the whole shipping, once; shipment 2: the teapot.
    assert [
        (li["line_ref"], D(li["line_amount"]), D(li["tax_amount"])) for li in first["document"]["lines"]
    ] == [
        ("l1", D("20.00"), D("4.00")),
        ("shipping:s1", D("5.00"), D("1.00")),
    ]
    assert D(first["document"]["total"]) == D("30.00")
    assert [(li["line_ref"], D(li["line_amount"])) for li in second["document"]["lines"]] == [
        ("l2", D("20.00"))
    ]
    assert D(second["document"]["total"]) == D("24.00")
    # The refund credits one mug on the invoice that carried it, same tax code, all allocated.
    assert credit["invoice_source_id"] == f"order:{oid}:fulfillment:f1"
    assert [
        (li["line_ref"], li["tax_code"], D(li["quantity"]), D(li["line_amount"]))
        for li in credit["document"]["lines"]
    ] == [("l1", "OUTPUT2", D(1), D("10.00"))]
    assert D(credit["document"]["total"]) == D(credit["allocate"]) == D("12.00")
    # 42.00 = 54.00 − 12.00: what invoice 1 still owes, then invoice 2; the fee rides on part 1.
    assert (pay1["invoice_source_id"], D(pay1["amount"]), pay1["account_code"]) == (
        f"order:{oid}:fulfillment:f1",
        D("18.00"),
        "090",
    )
    assert (D(pay1["fee"]), pay1["fee_account_code"]) == (D("1.50"), "404")
    assert (pay2["invoice_source_id"], D(pay2["amount"]), pay2["fee"]) == (
        f"order:{oid}:fulfillment:f2",
        D("24.00"),
        None,
    )

    state = org(stack)
    invoices = sorted(state["invoices"], key=lambda i: D(str(i["Total"])), reverse=True)
    assert [(D(str(i["Total"])), D(str(i["AmountDue"])), i["Status"]) for i in invoices] == [
        (D("30.00"), D("0.00"), "PAID"),
        (D("24.00"), D("0.00"), "PAID"),
    ]
    assert {i["Reference"] for i in invoices} == {"Order 3001"}
    [note] = state["credit_notes"]
    assert D(str(note["Total"])) == D("12.00")
    assert D(str(note["RemainingCredit"])) == D("0.00")
    assert sorted(D(str(p["Amount"])) for p in state["payments"]) == [D("18.00"), D("24.00")]
    assert {p["Account"]["Code"] for p in state["payments"]} == {"090"}
    # The Stripe fee: one spend-money of 1.50 out of the bank account (090) to Bank Fees (404).
    [fee] = state["bank_transactions"]
    assert (fee["Type"], fee["Status"], D(str(fee["Total"])), fee["BankAccount"]["Code"]) == (
        "SPEND",
        "AUTHORISED",
        D("1.50"),
        "090",
    )
    assert [(li["AccountCode"], D(str(li["LineAmount"])), li["TaxType"]) for li in fee["LineItems"]] == [
        ("404", D("1.50"), "NONE")
    ]
    assert (fee["Contact"]["Name"], fee["Reference"], fee["CurrencyCode"]) == ("Stripe", "stripe p1", "GBP")
    assert stack.dead_letters(wait=1.0) == []


def test_payment_before_the_invoice_waits_and_posts_right_after_it(running_stack: Stack) -> None:
    stack = running_stack
    oid = "o-early-pay"
    events = [
        event("order.placed", oid, 1, order=ORDER),
        event("payment.captured", oid, 2, payment_id="p9", gateway="paypal", amount="54.00", currency="GBP"),
        event(
            "order.fulfilled",
            oid,
            3,
            order=ORDER,
            fulfillment_id="f1",
            lines=[{"line_id": "l1", "quantity": "2"}, {"line_id": "l2", "quantity": "1"}],
        ),
    ]
    stack.publish(encoded(events))

    wait_until(lambda: len(org(stack)["payments"]) == 1, timeout=90)
    assert outcomes(stack) == {
        ("skipped", "not_trigger"): 1,
        ("parked", "waiting_for_invoice"): 1,
        ("emitted", "posted"): 1,
    }
    assert [
        (c["kind"], c["source_id"], D(c.get("amount") or c["document"]["total"])) for c in commands(stack)
    ] == [
        ("invoice.create", f"order:{oid}:fulfillment:f1", D("54.00")),
        ("payment.create", f"payment:{oid}:p9", D("54.00")),
    ]
    [invoice] = org(stack)["invoices"]
    assert (D(str(invoice["Total"])), invoice["Status"]) == (D("54.00"), "PAID")
    [payment] = org(stack)["payments"]
    assert payment["Account"]["Code"] == "091"  # paypal, any currency
