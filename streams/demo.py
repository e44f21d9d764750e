"""`make demo`: the whole pipeline on this machine, on the embedded defaults.

Starts the Xero sandbox and a worker (Kafka must be up: `make demo` starts it), applies the
example tenant, connects it to the sandbox's "Demo UK Ltd" through the OAuth flow, publishes
sample orders from three regions plus two malformed events, waits for the invoices and prints
them. Ctrl-C (or the end) stops everything it started.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from decimal import Decimal

import httpx

from store import tenant_config
from streams import devstack

TENANT = "acme-uk"
WORKDIR = devstack.REPO / "var" / "demo"


def _line(line_id: str, sku: str, name: str, qty: str, price: str, **extra: object) -> dict:
    return {"line_id": line_id, "sku": sku, "name": name, "quantity": qty, "unit_price": price, **extra}


def _order(
    number: str,
    currency: str,
    inclusive: bool,
    lines: list[dict],
    shipping: str,
    country: str,
    customer: dict,
    total: str,
    **extra: object,
) -> dict:
    return {
        "order_number": number,
        "currency": currency,
        "prices_include_tax": inclusive,
        "lines": lines,
        "shipping_lines": [{"line_id": "ship", "title": "Courier", "price": shipping}] if shipping else [],
        "customer": customer,
        "shipping_address": {
            "line1": "1 High Street",
            "city": "Town",
            "postcode": "AB1 2CD",
            "country": country,
        },
        "billing_address": {
            "line1": "1 High Street",
            "city": "Town",
            "postcode": "AB1 2CD",
            "country": country,
        },
        "channel": "web",
        "total": total,
        **extra,
    }


def sample_orders() -> list[dict]:
    """Five fulfilled orders across the UK, the US and the EU (B2B)."""
    orders = {
        "1001": _order(
            "1001",
            "GBP",
            True,
            [
                _line("l1", "MUG-01", "Ceramic mug", "2", "12.00"),
                _line("l2", "TEE-01", "T-shirt", "1", "19.99"),
            ],
            "4.99",
            "GB",
            {"email": "jane@example.co.uk", "name": "Jane Smith"},
            "48.98",
        ),
        "1002": _order(
            "1002",
            "GBP",
            True,
            [_line("l1", "SOCK-3", "Wool socks", "3", "19.99")],
            "",
            "GB",
            {"email": "tom@example.co.uk", "name": "Tom Brown"},
            "59.97",
        ),
        "1003": _order(
            "1003",
            "USD",
            False,
            [_line("l1", "MUG-01", "Ceramic mug", "2", "25.00")],
            "10.00",
            "US",
            {"email": "ann@example.com", "name": "Ann Lee"},
            "60.00",
        ),
        "1004": _order(
            "1004",
            "EUR",
            False,
            [_line("l1", "TEE-01", "T-shirt", "10", "8.50")],
            "15.00",
            "DE",
            {
                "email": "buyer@firma.example",
                "name": "Kai Vogel",
                "company": "Firma GmbH",
                "vat_id": "DE123456789",
            },
            "100.00",
        ),
        "1005": _order(
            "1005",
            "GBP",
            True,
            [_line("l1", "LAMP-1", "Desk lamp", "1", "45.00")],
            "5.00",
            "GB",
            {"email": "sam@example.co.uk", "name": "Sam Green"},
            "45.00",
            discounts=[{"code": "WELCOME5", "amount": "5.00"}],
            gift_cards=[{"gift_card_id": "gc-77", "amount": "10.00"}],
        ),
    }
    events = []
    for number, order in orders.items():
        events.append(
            {
                "type": "order.fulfilled",
                "event_id": f"evt-{number}-f1",
                "tenant_id": TENANT,
                "order_id": f"ord-{number}",
                "occurred_at": "2026-11-20T10:00:00+00:00",
                "fulfillment_id": "f1",
                "order": order,
                "lines": [
                    {"line_id": line["line_id"], "quantity": line["quantity"]} for line in order["lines"]
                ],
            }
        )
    events.append(
        {
            "type": "payment.captured",
            "event_id": "evt-1001-p1",
            "tenant_id": TENANT,
            "order_id": "ord-1001",
            "occurred_at": "2026-11-20T10:05:00+00:00",
            "payment_id": "p1",
            "gateway": "stripe",
            "amount": "48.98",
            "currency": "GBP",
            "fee": "0.93",
        }
    )
    return events


BAD_EVENTS = [
    ("ord-bad-1", b'{"type": "order.fulfilled", "event_id": oops'),
    (
        "ord-bad-2",
        json.dumps(
            {
                "type": "order.fulfilled",
                "event_id": "evt-bad",
                "tenant_id": TENANT,
                "order_id": "ord-bad-2",
                "occurred_at": "2026-11-20T10:00:00Z",
            }
        ).encode(),
    ),
]


def wait_for_invoices(sandbox: str, org_name: str, count: int, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    org: dict = {}
    while time.monotonic() < deadline:
        state = httpx.get(f"{sandbox}/__sandbox/state?log=false", timeout=5).json()
        org = next(o for o in state["orgs"].values() if o["name"] == org_name)
        if len(org["invoices"]) >= count and len(org["payments"]) >= 2:
            return org
        time.sleep(0.5)
    return org


def _amount(value: object) -> str:
    """A ledger number as money text (the sandbox answers JSON numbers)."""
    return f"{Decimal(str(value or 0)).quantize(Decimal('0.01')):,}"


def print_invoices(org: dict) -> None:
    print(f"\nInvoices in the Xero sandbox organisation {org['name']!r}:")
    for inv in org["invoices"]:
        contact = inv.get("Contact", {}).get("Name", "?")
        print(
            f"\n  {inv['InvoiceNumber']}  {inv['Status']:<10} {contact:<22} ref {inv.get('Reference', '')!r}"
            f"  {inv['CurrencyCode']}, amounts {inv['LineAmountTypes'].lower()} of tax"
        )
        print(f"      {'qty':>5}  {'unit':>8}  {'disc':>6}  {'acct':<4}  {'tax code':<19} {'tax':>6}  item")
        for li in inv["LineItems"]:
            qty = format(Decimal(str(li["Quantity"])).normalize(), "f")
            print(
                f"      {qty:>5}  {_amount(li['UnitAmount']):>8}  {_amount(li.get('DiscountAmount')):>6}  "
                f"{li['AccountCode']:<4}  {li['TaxType']:<19} {_amount(li['TaxAmount']):>6}  "
                f"{li['Description']}"
            )
        print(
            f"      subtotal {_amount(inv['SubTotal'])}  tax {_amount(inv['TotalTax'])}  "
            f"total {_amount(inv['Total'])}  paid {_amount(inv.get('AmountPaid'))}  "
            f"due {_amount(inv.get('AmountDue'))}"
        )


def main() -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir(parents=True)
    stack = devstack.Stack(
        bootstrap,
        f"sqlite:///{WORKDIR / 'ledgerstream.db'}",
        WORKDIR,
        run=f"demo-{int(time.time())}",
        web_port=devstack.port_or_free(6066),
    )
    names = stack.names
    try:
        print(f"Starting the Xero sandbox on {stack.sandbox_url} ...")
        stack.start_sandbox()
        config = tenant_config.load_yaml((devstack.REPO / "examples/tenants/acme-uk.yaml").read_text())
        version = stack.apply_config(config)
        print(f"Applied tenant {TENANT!r} config version {version}")
        org_id = stack.connect(TENANT, "Demo UK Ltd")
        print(f"Connected {TENANT!r} to Xero organisation 'Demo UK Ltd' ({org_id}) via OAuth 2.0 + PKCE")
        print("Starting a worker ...")
        stack.start_worker()
        stack.sync_config(TENANT, version)
        print(f"The worker has loaded the tenant config (version {version}) from {names.tenant_config}")
        events = sample_orders()
        stack.publish([(e["order_id"], json.dumps(e).encode()) for e in events] + BAD_EVENTS)
        print(f"Published {len(events)} events and {len(BAD_EVENTS)} malformed ones to {names.orders}")
        org = wait_for_invoices(stack.sandbox_url, "Demo UK Ltd", 5)
        print_invoices(org)
        letters = stack.dead_letters()
        print(f"\nDead letters on {names.dead_letter}: {len(letters)}")
        for letter in letters:
            print(f"  [{letter['reason_code']}] {letter['reason'][:110]}")
        print(
            f"\nMetrics were at http://127.0.0.1:{stack.web_port}/metrics while the worker ran; "
            f"logs in {WORKDIR.relative_to(devstack.REPO)}/"
        )
        ok = len(org.get("invoices", [])) >= 5
        print("\nDemo finished." if ok else "\nDemo did not see all invoices; see the worker log.")
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\nInterrupted.")
        return 130
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
