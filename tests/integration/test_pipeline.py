"""Walking skeleton through the real broker: order → Xero sandbox invoice; bad bytes → dead letter."""

from __future__ import annotations

import base64
import json

from streams.devstack import Stack, wait_until

TENANT = "acme-uk"


def fulfilled(order_id: str, number: str, country: str, total: str, **customer: str) -> dict:
    return {
        "type": "order.fulfilled",
        "event_id": f"evt-{order_id}",
        "tenant_id": TENANT,
        "order_id": order_id,
        "occurred_at": "2026-11-20T10:00:00+00:00",
        "fulfillment_id": "f1",
        "lines": [{"line_id": "l1", "quantity": "2"}],
        "order": {
            "order_number": number,
            "currency": "GBP",
            "prices_include_tax": False,
            "lines": [
                {"line_id": "l1", "sku": "MUG-01", "name": "Mug", "quantity": "2", "unit_price": "10.00"}
            ],
            "shipping_lines": [{"line_id": "s1", "title": "Courier", "price": "5.00"}],
            "customer": {"email": f"{order_id}@example.com", "name": f"Customer {number}", **customer},
            "shipping_address": {"country": country, "postcode": "AB1 2CD"},
            "total": total,
        },
    }


def invoices(stack: Stack) -> list[dict]:
    return stack.org("Demo UK Ltd")["invoices"]


def test_fulfilled_order_becomes_invoice_with_mapped_codes(running_stack: Stack) -> None:
    event = fulfilled("o-us-1", "2001", "US", "25.00")  # exempt: 2 x 10.00 + 5.00
    running_stack.publish([(event["order_id"], json.dumps(event).encode())])

    [invoice] = wait_until(lambda: invoices(running_stack), timeout=60)

    assert invoice["Reference"] == "Order 2001"
    assert invoice["Status"] == "AUTHORISED"
    items = {li["Description"].split(" [")[0]: li for li in invoice["LineItems"]}
    assert items["Mug"]["AccountCode"] == "200"
    assert items["Courier"]["AccountCode"] == "425"
    assert {li["TaxType"] for li in invoice["LineItems"]} == {"EXEMPTOUTPUT"}  # US rule
    assert invoice["Total"] == 25.0


def test_malformed_event_is_dead_lettered_and_the_next_order_still_posts(running_stack: Stack) -> None:
    bad = b'{"type": "order.fulfilled", "event_id": '
    good = fulfilled("o-gb-1", "2002", "GB", "30.00")  # 25.00 net + 20% VAT on goods and shipping
    running_stack.publish([("o-bad", bad), (good["order_id"], json.dumps(good).encode())])

    [invoice] = wait_until(lambda: invoices(running_stack), timeout=60)
    assert {li["TaxType"] for li in invoice["LineItems"]} == {"OUTPUT2"}  # GB rule, 20%
    assert invoice["Total"] == 30.0

    letters = wait_until(lambda: running_stack.dead_letters(wait=1.0), timeout=30)
    assert len(letters) == 1
    [letter] = letters
    assert letter["reason_code"] == "invalid_json"
    assert "JSON" in letter["reason"]
    assert letter["source"]["topic"] == running_stack.names.orders
    assert base64.b64decode(letter["original_b64"]) == bad
