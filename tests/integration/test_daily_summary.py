"""Daily-summary mode end to end: five orders of a past day → one summary invoice in Xero.

The worker runs with a 1-second summary tick and the default grace period: a day long past
is due at once, so it closes on the next tick. A sixth order of that day arriving after the
close becomes part 2 rather than being lost under the first summary's binding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from schemas.tenant import TenantConfig
from streams.devstack import Stack, wait_until

TENANT = "acme-uk"
DAY = "2026-11-02"
D = Decimal


def order(number: str, lines: list[tuple[str, str]], total: str, **extra: Any) -> dict[str, Any]:
    """Lines as (quantity, unit price); the first `shipping` is a shipping line."""
    shipping = extra.pop("shipping", None)
    return {
        "order_number": number,
        "currency": "GBP",
        "prices_include_tax": extra.pop("inclusive", False),
        "lines": [
            {"line_id": f"l{i}", "name": f"Item {i}", "quantity": q, "unit_price": p}
            for i, (q, p) in enumerate(lines, start=1)
        ],
        "shipping_lines": [{"line_id": "s1", "title": "Courier", "price": shipping}] if shipping else [],
        "customer": {"email": f"c{number}@example.com"},
        "shipping_address": {"country": extra.pop("country", "GB")},
        "total": total,
    }


ORDERS = {
    "o-sum-1": order("5001", [("2", "10.00")], "30.00", shipping="5.00"),  # 25.00 + 5.00 VAT
    "o-sum-2": order("5002", [("1", "25.00")], "30.00", shipping="5.00", country="US"),  # exempt
    "o-sum-3": order("5003", [("3", "19.99")], "71.96"),  # 59.97 + 11.99 VAT (rounded per line)
    "o-sum-4": order("5004", [("1", "12.00")], "12.00", inclusive=True),  # 10.00 + 2.00 VAT inside
    "o-sum-5": order("5005", [("1", "7.33")], "11.80", shipping="2.50"),  # 9.83 + 1.97 VAT
}


def fulfilled(order_id: str, body: dict[str, Any], hour: int) -> tuple[str, bytes]:
    event = {
        "type": "order.fulfilled",
        "event_id": f"{order_id}-shipped",
        "tenant_id": TENANT,
        "order_id": order_id,
        "occurred_at": f"{DAY}T{hour:02d}:30:00+00:00",
        "fulfillment_id": "f1",
        "lines": [{"line_id": ln["line_id"], "quantity": ln["quantity"]} for ln in body["lines"]],
        "order": body,
    }
    return order_id, json.dumps(event).encode()


def summary_stack(make_stack: Callable[[], Stack], acme_config: TenantConfig) -> Stack:
    config = acme_config.model_copy(
        update={"policy": acme_config.policy.model_copy(update={"mode": "daily_summary"})}
    )
    stack = make_stack()
    base_env = stack.env
    stack.env = lambda: {**base_env(), "LEDGERSTREAM_SUMMARY_TICK_SECONDS": "1"}  # type: ignore[method-assign]
    stack.start_sandbox()
    version = stack.apply_config(config)
    stack.connect(TENANT, "Demo UK Ltd")
    stack.start_worker()
    stack.sync_config(TENANT, version)
    return stack


def xero_date(value: str) -> str:
    """`/Date(1793577600000+0000)/` → `2026-11-02`."""
    millis = int(value.removeprefix("/Date(").split("+")[0].rstrip(")/"))
    return datetime.fromtimestamp(millis / 1000, UTC).date().isoformat()


def samples(stack: Stack, name: str) -> dict[tuple[str, ...], float]:
    text = httpx.get(f"http://127.0.0.1:{stack.web_port}/metrics", timeout=5).text
    return {
        tuple(sorted(s.labels.values())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_five_orders_of_a_past_day_become_one_summary_invoice(
    make_stack: Callable[[], Stack], acme_config: TenantConfig
) -> None:
    stack = summary_stack(make_stack, acme_config)
    stack.publish([fulfilled(oid, body, hour) for hour, (oid, body) in enumerate(ORDERS.items(), start=9)])

    [invoice] = wait_until(lambda: stack.org("Demo UK Ltd")["invoices"], timeout=90)
    expected_total = sum((D(body["total"]) for body in ORDERS.values()), D(0))
    assert expected_total == D("155.76")
    assert D(str(invoice["Total"])) == expected_total
    assert D(str(invoice["TotalTax"])) == D("20.96")
    assert invoice["Reference"] == f"Daily sales {DAY} GBP (5 orders)"
    assert xero_date(invoice["Date"]) == DAY
    lines = {
        (li["AccountCode"], li["TaxType"]): (D(str(li["LineAmount"])), D(str(li["TaxAmount"])))
        for li in invoice["LineItems"]
    }
    assert lines == {
        ("200", "OUTPUT2"): (D("97.30"), D("19.46")),
        ("200", "EXEMPTOUTPUT"): (D("25.00"), D("0.00")),
        ("425", "OUTPUT2"): (D("7.50"), D("1.50")),
        ("425", "EXEMPTOUTPUT"): (D("5.00"), D("0.00")),
    }

    [command] = [json.loads(v) for _, v in stack.read_topic(stack.names.commands("xero"), wait=2.0)]
    assert (command["kind"], command["source_id"]) == ("invoice.create", f"summary:{DAY}:GBP")
    assert command["order_ids"] == sorted(ORDERS)
    assert D(command["document"]["total"]) == expected_total
    assert samples(stack, "ledgerstream_events_total") == {("emitted", "summarised"): 5.0}
    assert samples(stack, "ledgerstream_summaries_closed_total") == {("invoice.create", "xero"): 1.0}

    # A late order of the same day: closed as part 2, the first summary untouched.
    late = order("5006", [("1", "40.00")], "48.00")
    stack.publish([fulfilled("o-sum-6", late, 20)])
    wait_until(lambda: len(stack.org("Demo UK Ltd")["invoices"]) == 2, timeout=90)
    totals = sorted(D(str(i["Total"])) for i in stack.org("Demo UK Ltd")["invoices"])
    assert totals == [D("48.00"), expected_total]
    commands = [json.loads(v) for _, v in stack.read_topic(stack.names.commands("xero"), wait=2.0)]
    assert [(c["source_id"], c["order_ids"]) for c in commands] == [
        (f"summary:{DAY}:GBP", sorted(ORDERS)),
        (f"summary:{DAY}:GBP:2", ["o-sum-6"]),
    ]
    assert stack.dead_letters(wait=1.0) == []
