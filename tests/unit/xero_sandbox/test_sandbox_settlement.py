"""Credit notes with allocations, and payments that settle invoices."""

from __future__ import annotations

from tests.unit.xero_sandbox.sandbox_driver import UK, invoice


async def _invoice(sandbox, **over):
    status, body, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice(**over)]})
    assert status == 200, body
    return body["Invoices"][0]


def _credit(contact_id: str, amount: int = 5) -> dict:
    return {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": contact_id},
        "Date": "2026-03-02",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [
            {
                "Description": "Refund",
                "Quantity": 1,
                "UnitAmount": amount,
                "AccountCode": "200",
                "TaxType": "OUTPUT2",
            }
        ],
    }


async def test_credit_note_allocation_reduces_amount_due(sandbox):
    inv = await _invoice(sandbox)
    status, body, _ = await sandbox.api(
        "PUT", "CreditNotes", json={"CreditNotes": [_credit(inv["Contact"]["ContactID"])]}
    )
    assert status == 200, body
    cn = body["CreditNotes"][0]
    assert cn["CreditNoteNumber"] == "CN-0001" and cn["Total"] == 6 and cn["RemainingCredit"] == 6
    alloc = {"Allocations": [{"Amount": 6, "Invoice": {"InvoiceID": inv["InvoiceID"]}, "Date": "2026-03-02"}]}
    status, body, _ = await sandbox.api("PUT", f"CreditNotes/{cn['CreditNoteID']}/Allocations", json=alloc)
    assert status == 200 and body["Allocations"][0]["Amount"] == 6
    _, body, _ = await sandbox.api("GET", f"Invoices/{inv['InvoiceID']}")
    assert body["Invoices"][0]["AmountDue"] == 18 and body["Invoices"][0]["AmountCredited"] == 6
    _, body, _ = await sandbox.api("GET", f"CreditNotes/{cn['CreditNoteID']}")
    assert body["CreditNotes"][0]["RemainingCredit"] == 0
    assert body["CreditNotes"][0]["Status"] == "PAID"
    status, body, _ = await sandbox.api("PUT", f"CreditNotes/{cn['CreditNoteID']}/Allocations", json=alloc)
    assert status == 400 and body["Type"] == "ValidationException"


async def test_allocation_cannot_exceed_invoice_due(sandbox):
    inv = await _invoice(sandbox)
    _, body, _ = await sandbox.api(
        "PUT", "CreditNotes", json={"CreditNotes": [_credit(inv["Contact"]["ContactID"], amount=100)]}
    )
    cn = body["CreditNotes"][0]
    status, body, _ = await sandbox.api(
        "PUT",
        f"CreditNotes/{cn['CreditNoteID']}/Allocations",
        json={
            "Allocations": [{"Amount": 30, "Invoice": {"InvoiceID": inv["InvoiceID"]}, "Date": "2026-03-02"}]
        },
    )
    assert status == 400
    assert "outstanding on the invoice" in body["Elements"][0]["ValidationErrors"][0]["Message"]


async def test_payments_settle_invoice(sandbox):
    inv = await _invoice(sandbox)
    pay = {
        "Invoice": {"InvoiceID": inv["InvoiceID"]},
        "Account": {"Code": "090"},
        "Date": "2026-03-05",
        "Reference": "stripe ch_1",
    }
    status, body, _ = await sandbox.api("PUT", "Payments", json={"Payments": [pay | {"Amount": 10}]})
    assert status == 200 and body["Payments"][0]["PaymentType"] == "ACCRECPAYMENT"
    status, body, _ = await sandbox.api("PUT", "Payments", json={"Payments": [pay | {"Amount": 20}]})
    assert status == 400
    assert body["Elements"][0]["ValidationErrors"][0]["Message"] == (
        "Payment amount exceeds the amount outstanding on this document"
    )
    status, body, _ = await sandbox.api(
        "POST", "Payments", json=pay | {"Amount": 14, "Account": {"Code": "877"}}
    )
    assert status == 200
    _, body, _ = await sandbox.api("GET", f"Invoices/{inv['InvoiceID']}")
    settled = body["Invoices"][0]
    assert settled["Status"] == "PAID" and settled["AmountDue"] == 0
    assert settled["AmountPaid"] == 24 and len(settled["Payments"]) == 2
    _, body, _ = await sandbox.api("GET", "Payments")
    assert len(body["Payments"]) == 2
    status, body, _ = await sandbox.api(
        "POST", "Invoices", json={"Invoices": [{"InvoiceID": inv["InvoiceID"], "Reference": "late edit"}]}
    )
    assert status == 400


async def test_payment_needs_authorised_invoice_and_bank_account(sandbox):
    draft = await _invoice(sandbox, Status="DRAFT")
    ok = await _invoice(sandbox)
    cases = [
        (
            {"Invoice": {"InvoiceID": draft["InvoiceID"]}, "Account": {"Code": "090"}},
            "Invoice not of valid status",
        ),
        ({"Invoice": {"InvoiceID": ok["InvoiceID"]}, "Account": {"Code": "200"}}, "is not a bank account"),
    ]
    for payload, expected in cases:
        status, body, _ = await sandbox.api(
            "PUT",
            "Payments",
            params={"summarizeErrors": "false"},
            json={"Payments": [payload | {"Amount": 1}]},
        )
        assert status == 200 and body["Payments"][0]["HasValidationErrors"] is True
        assert expected in body["Payments"][0]["ValidationErrors"][0]["Message"]
    assert not sandbox.state.orgs[UK].payments
