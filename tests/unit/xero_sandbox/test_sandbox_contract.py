"""Bodies the sandbox produces (and the requests our tests send) checked against Xero's
OpenAPI component schemas, plus a check that we emit no field the spec does not declare."""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.unit.xero_sandbox.sandbox_driver import UK, invoice

SPEC_DIR = Path(
    os.environ.get("XERO_OPENAPI_DIR", Path(__file__).resolve().parents[3].parent / "shared/contracts/xero")
)
# Present in Xero's response examples though not declared in the component schemas.
EXAMPLE_ONLY = {"Id", "Status", "ProviderName", "DateTimeUTC", "DateString", "DueDateString"}


@functools.cache
def _spec(name: str) -> dict[str, Any]:
    path = SPEC_DIR / name
    if not path.exists():
        pytest.fail(f"{path} not found: the Xero contract lives in ../shared/contracts/xero")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(), Loader=loader)


def check(body: Any, schema: str, spec: str = "xero_accounting.yaml", formats: bool = True) -> None:
    """Validate a JSON body (as received on the wire) against a component schema."""
    doc = _spec(spec)
    registry = Registry().with_resource("urn:xero", Resource.from_contents(doc, default_specification=DRAFT4))
    validator = OAS30Validator(
        {"$ref": f"urn:xero#/components/schemas/{schema}"},
        registry=registry,
        format_checker=OAS30Validator.FORMAT_CHECKER if formats else None,
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def undeclared(body: Any, schema: str, path: str = "") -> list[str]:
    """Keys present in `body` that the spec's schema (recursively) does not declare."""
    doc = _spec("xero_accounting.yaml")
    node = doc["components"]["schemas"][schema]
    return _walk(doc, node, body, path or schema)


def _walk(doc: dict[str, Any], node: dict[str, Any], value: Any, path: str) -> list[str]:
    if "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if isinstance(value, list) and "items" in node:
        return [m for i, v in enumerate(value) for m in _walk(doc, node["items"], v, path + f"[{i}]")]
    if not isinstance(value, dict) or "properties" not in node:
        return []
    missing = []
    for key, sub in value.items():
        if key in node["properties"]:
            missing += _walk(doc, node["properties"][key], sub, f"{path}.{key}")
        elif key not in EXAMPLE_ONLY:
            missing.append(f"{path}.{key}")
    return missing


async def _raw(sandbox, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    """Status and body parsed with plain `json` (as any client would)."""
    resp = await sandbox.http.request(
        method,
        f"/api.xro/2.0/{path}",
        **kw,
        headers={"Authorization": f"Bearer {sandbox.bearer}", "xero-tenant-id": UK},
    )
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.status, json.loads(await resp.text())


async def test_invoice_request_and_response_match_spec(sandbox):
    request = {"Invoices": [invoice(), invoice(LineAmountTypes="Inclusive", Reference="r")]}
    check(request, "Invoices")
    status, body = await _raw(sandbox, "PUT", "Invoices", json=request)
    assert status == 200
    check(body, "Invoices")
    assert undeclared(body, "Invoices") == []
    status, body = await _raw(sandbox, "GET", "Invoices", params={"page": "1"})
    check(body, "Invoices")
    assert undeclared(body, "Invoices") == []


async def test_error_envelope_matches_spec(sandbox):
    status, body = await _raw(sandbox, "PUT", "Invoices", json={"Invoices": [invoice(CurrencyCode="JPY")]})
    assert status == 400
    check(body, "Error")
    assert set(body) == {"ErrorNumber", "Type", "Message", "Elements"}
    assert body["Elements"][0]["ValidationErrors"][0]["Message"]
    status, body = await _raw(
        sandbox,
        "PUT",
        "Invoices",
        params={"summarizeErrors": "false"},
        json={"Invoices": [invoice(), invoice(CurrencyCode="JPY")]},
    )
    assert status == 200
    check(body, "Invoices")


async def test_settlement_bodies_match_spec(sandbox):
    _, inv = await _raw(sandbox, "PUT", "Invoices", json={"Invoices": [invoice()]})
    inv = inv["Invoices"][0]
    credit = {
        "CreditNotes": [
            {
                "Type": "ACCRECCREDIT",
                "Contact": inv["Contact"],
                "Status": "AUTHORISED",
                "LineItems": [
                    {
                        "Description": "r",
                        "Quantity": 1,
                        "UnitAmount": 5,
                        "AccountCode": "200",
                        "TaxType": "OUTPUT2",
                    }
                ],
            }
        ]
    }
    check(credit, "CreditNotes")
    status, body = await _raw(sandbox, "PUT", "CreditNotes", json=credit)
    assert status == 200
    check(body, "CreditNotes")
    assert undeclared(body, "CreditNotes") == []
    cn = body["CreditNotes"][0]
    alloc = {"Allocations": [{"Amount": 6, "Invoice": {"InvoiceID": inv["InvoiceID"]}, "Date": "2026-03-02"}]}
    check(alloc, "Allocations")
    status, body = await _raw(sandbox, "PUT", f"CreditNotes/{cn['CreditNoteID']}/Allocations", json=alloc)
    assert status == 200
    check(body, "Allocations")
    assert undeclared(body, "Allocations") == []
    pay = {
        "Payments": [
            {
                "Invoice": {"InvoiceID": inv["InvoiceID"]},
                "Account": {"Code": "090"},
                "Amount": 18,
                "Date": "2026-03-03",
                "Reference": "x",
            }
        ]
    }
    check(pay, "Payments")
    status, body = await _raw(sandbox, "PUT", "Payments", json=pay)
    assert status == 200
    check(body, "Payments")
    assert undeclared(body, "Payments") == []
    _, body = await _raw(sandbox, "GET", f"Invoices/{inv['InvoiceID']}")
    check(body, "Invoices")
    assert undeclared(body, "Invoices") == [] and body["Invoices"][0]["Status"] == "PAID"


async def test_bank_transaction_bodies_match_spec(sandbox):
    request = {
        "BankTransactions": [
            {
                "Type": "SPEND",
                "Contact": {"Name": "Stripe"},
                "BankAccount": {"Code": "090"},
                "Date": "2026-03-02",
                "Reference": "stripe p1",
                "CurrencyCode": "GBP",
                "LineAmountTypes": "NoTax",
                "LineItems": [
                    {
                        "Description": "Stripe fee for payment p1",
                        "Quantity": 1,
                        "UnitAmount": 1.5,
                        "AccountCode": "404",
                        "TaxType": "NONE",
                        "LineAmount": 1.5,
                    }
                ],
            }
        ]
    }
    check(request, "BankTransactions")
    status, body = await _raw(sandbox, "PUT", "BankTransactions", json=request)
    assert status == 200, body
    check(body, "BankTransactions")
    assert undeclared(body, "BankTransactions") == []
    status, body = await _raw(sandbox, "GET", "BankTransactions", params={"page": "1"})
    check(body, "BankTransactions")
    assert undeclared(body, "BankTransactions") == []
    bad = {"BankTransactions": [{**request["BankTransactions"][0], "Type": "X"}]}
    status, body = await _raw(sandbox, "PUT", "BankTransactions", json=bad)
    assert status == 400
    check(body, "Error")


async def test_reference_data_and_contacts_match_spec(sandbox):
    for path, schema in (("TaxRates", "TaxRates"), ("Accounts", "Accounts")):
        status, body = await _raw(sandbox, "GET", path)
        assert status == 200
        check(body, schema)
        assert undeclared(body, schema) == []
    status, body = await _raw(
        sandbox, "PUT", "Contacts", json={"Contacts": [{"Name": "Spec Co", "EmailAddress": "a@b.c"}]}
    )
    check(body, "Contacts")
    assert undeclared(body, "Contacts") == []


async def test_identity_bodies_match_spec(fresh):
    tokens = await fresh.connect(org=None)
    check(tokens, "AccessToken", "xero-identity.yaml")
    resp = await fresh.http.get("/connections", headers={"Authorization": f"Bearer {fresh.bearer}"})
    conns = await resp.json()
    assert len(conns) == 2
    for conn in conns:
        # Xero sends createdDateUtc like its spec example "2019-12-07T18:46:19.5165400":
        # no UTC offset, so not RFC 3339 `date-time`; the sandbox copies the real shape.
        check(conn, "Connection", "xero-identity.yaml", formats=False)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+", conn["createdDateUtc"])
