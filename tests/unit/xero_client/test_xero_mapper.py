"""Mapper output matches the Xero OpenAPI request schemas; decimals go out exactly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import jsonschema
import pytest

from connectors.xero import mapper

CID = "22222222-2222-2222-2222-222222222222"
IID = "33333333-3333-3333-3333-333333333333"


def wire(body: Any) -> Any:
    """What Xero receives: encode, then decode keeping decimals."""
    return mapper.decode(mapper.encode(body))


def test_invoice_matches_spec_and_fields(xero_spec: Any, cmds: Any) -> None:
    cmd = cmds.invoice(1, number="INV-9", exchange_rate="1.1734567891", discount="1.00")
    element = mapper.invoice(cmd, CID)
    xero_spec.validate("Invoices", wire(mapper.invoices_body([element])))
    xero_spec.validate_request("PUT", "/Invoices", wire(mapper.invoices_body([element])))
    assert element["Type"] == "ACCREC"
    assert element["Contact"] == {"ContactID": CID}
    assert element["Status"] == "AUTHORISED"
    assert element["Date"] == "2026-03-01" and element["DueDate"] == "2026-03-31"
    assert element["LineAmountTypes"] == "Exclusive"
    assert element["InvoiceNumber"] == "INV-9"
    assert element["CurrencyRate"] == Decimal("1.1734567891")
    line = element["LineItems"][0]
    assert "ItemCode" not in line
    assert line["Description"] == "Blue mug [SKU MUG-1]"
    assert line["DiscountAmount"] == Decimal("1.00")
    assert line["UnitAmount"] == Decimal("10.005")


def test_decimals_are_exact_on_the_wire(cmds: Any) -> None:
    raw = mapper.encode(mapper.invoices_body([mapper.invoice(cmds.invoice(1), CID)]))
    assert b'"UnitAmount":10.005' in raw
    assert b'"LineAmount":20.01' in raw
    assert b'"TaxAmount":4.00' in raw
    with pytest.raises(TypeError):
        mapper.encode({"Amount": 0.1})


def test_item_codes_on_request(cmds: Any) -> None:
    line = mapper.invoice(cmds.invoice(1), CID, use_item_codes=True)["LineItems"][0]
    assert line["ItemCode"] == "MUG-1" and line["Description"] == "Blue mug"


def test_draft_invoice_and_no_optional_fields(cmds: Any) -> None:
    cmd = cmds.invoice(1).model_copy(update={"status": "draft"})
    element = mapper.invoice(cmd, CID)
    assert element["Status"] == "DRAFT"
    assert "InvoiceNumber" not in element and "CurrencyRate" not in element


def test_sales_receipt_is_authorised_invoice_plus_payment(xero_spec: Any, cmds: Any) -> None:
    cmd = cmds.receipt(5)
    element = mapper.invoice(cmd, CID)
    assert (element["Type"], element["Status"], element["DueDate"]) == ("ACCREC", "AUTHORISED", "2026-03-01")
    pay = mapper.receipt_payment(cmd)
    assert pay.source_id == "order:5#payment" and pay.invoice_source_id == "order:5"
    assert pay.amount == cmd.document.total and pay.account_code == "090"
    assert pay.idempotency_key != cmd.idempotency_key
    xero_spec.validate("Payments", wire(mapper.payments_body([mapper.payment(pay, IID)])))


def test_credit_note_and_allocation(xero_spec: Any, cmds: Any) -> None:
    cmd = cmds.credit_note(1, invoice=1)
    element = mapper.credit_note(cmd, CID)
    xero_spec.validate_request("PUT", "/CreditNotes", wire(mapper.credit_notes_body([element])))
    assert element["Type"] == "ACCRECCREDIT" and element["Status"] == "AUTHORISED"
    line = element["LineItems"][0]
    assert "DiscountAmount" not in line  # credit notes carry no discounts: net unit price instead
    assert line["Quantity"] * line["UnitAmount"] == line["LineAmount"] == Decimal("19.01")
    body = mapper.allocation(cmd, IID)
    xero_spec.validate_request("PUT", f"/CreditNotes/{CID}/Allocations", wire(body))
    assert body["Allocations"][0] == {
        "Invoice": {"InvoiceID": IID},
        "Amount": Decimal("10.00"),
        "Date": "2026-03-01",
    }


def test_credit_note_discount_not_divisible(cmds: Any) -> None:
    doc = cmds.doc("R1", discount="0.01")  # 20.00 / 2 = 10 exactly; use 3 units instead
    line = doc.lines[0].model_copy(update={"quantity": Decimal(3), "line_amount": Decimal("20.00")})
    item = mapper.line_item(line, discounts=False)
    assert item["Quantity"] == 1 and item["UnitAmount"] == Decimal("20.00")
    assert item["Description"].endswith("(x3)")


def test_payment(xero_spec: Any, cmds: Any) -> None:
    element = mapper.payment(cmds.payment(1, invoice=1), IID)
    xero_spec.validate_request("PUT", "/Payments", wire(mapper.payments_body([element])))
    assert element == {
        "Invoice": {"InvoiceID": IID},
        "Account": {"Code": "090"},
        "Date": "2026-03-02",
        "Amount": Decimal("30.00"),
        "Reference": "P1",
    }


def test_contact(xero_spec: Any, cmds: Any) -> None:
    details = cmds.doc("x").contact.model_copy(update={"company": "Smith Ltd"})
    element = mapper.contact(details)
    xero_spec.validate_request("PUT", "/Contacts", wire(mapper.contacts_body([element])))
    assert element["Name"] == "Ann Smith" and element["EmailAddress"] == "ann@example.com"
    assert element["FirstName"] == "Ann" and element["LastName"] == "Smith"
    assert element["TaxNumber"] == "GB123"
    assert {a["AddressType"] for a in element["Addresses"]} == {"STREET", "POBOX"}
    assert element["Phones"] == [{"PhoneType": "DEFAULT", "PhoneNumber": "+44 20 1234"}]


def test_spec_catches_bad_payload(xero_spec: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        xero_spec.validate("Invoices", {"Invoices": [{"Type": "SALESRECEIPT"}]})


def test_batch_key_is_order_independent() -> None:
    body = {"Invoices": [{"Reference": "#1"}]}
    assert mapper.batch_key(["b", "a"], "invoices", body) == mapper.batch_key(["a", "b"], "invoices", body)
    assert mapper.batch_key(["a", "b"], "invoices", body) != mapper.batch_key(["a", "b"], "payments", body)
    assert len(mapper.batch_key(["a"] * 50, "invoices", body)) == 64


def test_batch_key_same_commands_and_body_give_the_same_key(cmds: Any) -> None:
    """A repeat of the identical batch (built afresh) keeps its key, so Xero replays its answer."""

    def key() -> str:
        batch = [cmds.invoice(1), cmds.invoice(2)]
        body = mapper.invoices_body([mapper.invoice(c, "contact-1") for c in batch])
        return mapper.batch_key([c.idempotency_key for c in batch], "invoices", body)

    assert key() == key()


def test_batch_key_changes_with_the_body(cmds: Any) -> None:
    """Same commands (same member keys), corrected body (a re-mapped tax code) → another key."""
    batch = [cmds.invoice(1), cmds.invoice(2)]
    keys = [c.idempotency_key for c in batch]
    first = mapper.invoices_body([mapper.invoice(c, "contact-1") for c in batch])
    fixed = mapper.invoices_body([mapper.invoice(c, "contact-1") for c in batch])
    fixed["Invoices"][1]["LineItems"][0]["TaxType"] = "EXEMPTOUTPUT"
    assert fixed != first
    assert mapper.batch_key(keys, "invoices", fixed) != mapper.batch_key(keys, "invoices", first)
    # the exact decimal text counts too: 20.01 and 20.010 are different requests to Xero
    short, long = {"A": Decimal("20.01")}, {"A": Decimal("20.010")}
    assert mapper.batch_key(keys, "x", short) != mapper.batch_key(keys, "x", long)
