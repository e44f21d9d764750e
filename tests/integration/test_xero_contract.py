"""Contract: every request body the Xero client sent in a mixed flow (contacts, invoices, a credit
note with its allocation, payments) validates against the operation's request schema in Xero's
official OpenAPI spec (`xero_accounting.yaml`), as logged by the sandbox."""

from __future__ import annotations

import copy
import importlib.util
import json
from typing import Any

import jsonschema
import pytest

from streams.devstack import REPO, Stack, wait_until

_spec = importlib.util.spec_from_file_location("xero_spec", REPO / "tests/unit/xero_client/spec.py")
assert _spec and _spec.loader
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
XeroSpec = _module.XeroSpec

TENANT = "acme-uk"
ORDER: dict[str, Any] = {
    "order_number": "4001",
    "currency": "GBP",
    "prices_include_tax": False,
    "lines": [
        {"line_id": "l1", "sku": "MUG-01", "name": "Mug", "quantity": "2", "unit_price": "10.00"},
        {"line_id": "l2", "sku": "POT-01", "name": "Teapot", "quantity": "1", "unit_price": "20.00"},
    ],
    "shipping_lines": [{"line_id": "s1", "title": "Courier", "price": "5.00"}],
    "customer": {"email": "grace@example.com", "name": "Grace Hopper"},
    "shipping_address": {"country": "GB", "postcode": "SW1A 1AA"},
    "total": "54.00",
}


def event(kind: str, n: int, **fields: Any) -> tuple[str, bytes]:
    body = {
        "type": kind,
        "event_id": f"contract-e{n}",
        "tenant_id": TENANT,
        "order_id": "o-contract",
        "occurred_at": f"2026-11-20T1{n}:00:00+00:00",
        **fields,
    }
    return "o-contract", json.dumps(body).encode()


def test_every_logged_request_body_matches_the_xero_openapi_spec(running_stack: Stack) -> None:
    stack = running_stack
    lines = [{"line_id": "l1", "quantity": "2"}, {"line_id": "l2", "quantity": "1"}]
    stack.publish(
        [
            event("order.fulfilled", 1, order=ORDER, fulfillment_id="f1", lines=lines),
            event("payment.captured", 2, payment_id="p1", gateway="stripe", amount="30.00", currency="GBP"),
            event(
                "order.refunded",
                3,
                refund_id="r1",
                currency="GBP",
                lines=[{"line_id": "l1", "quantity": "1"}],
            ),
        ]
    )
    org = lambda: stack.org("Demo UK Ltd")  # noqa: E731
    wait_until(lambda: org()["credit_notes"] and org()["payments"], timeout=90)
    assert stack.dead_letters(wait=1.0) == []

    spec = XeroSpec.load()
    writes = [r for r in stack.sandbox_requests() if r["method"] in ("PUT", "POST")]
    operations = {_operation(r).split("/")[1] for r in writes}
    assert {"Contacts", "Invoices", "Payments", "CreditNotes"} <= operations, operations
    assert any(r["path"].endswith("/Allocations") for r in writes)
    for request in writes:
        assert request["body"] is not None, request["path"]
        spec.validate_request(request["method"], _operation(request), request["body"])

    # The validator bites: the first invoice body with a malformed field is refused.
    first = next(r for r in writes if r["path"].endswith("/Invoices"))
    broken = copy.deepcopy(first["body"])
    broken["Invoices"][0]["LineItems"] = "not a list"
    with pytest.raises(jsonschema.ValidationError):
        spec.validate_request("PUT", "/Invoices", broken)


def _operation(request: dict[str, Any]) -> str:
    return request["path"].split("/api.xro/2.0")[-1]
