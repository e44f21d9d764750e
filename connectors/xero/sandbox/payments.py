"""Payments against invoices and credit-note allocations, with Xero's checks."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.xero.sandbox.documents import CREDIT_NOTE, INVOICE, refresh_balances
from connectors.xero.sandbox.state import Org
from connectors.xero.sandbox.totals import round2
from connectors.xero.sandbox.wire import ms_date, parse_date


def _amount(raw: dict[str, Any], errors: list[str]) -> Decimal | None:
    value = raw.get("Amount")
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        errors.append("Amount must be specified.")
        return None
    amount = round2(Decimal(str(value)))
    if amount <= 0:
        errors.append("Amount must be greater than zero.")
        return None
    return amount


def _find_invoice(org: Org, ref: Any) -> dict[str, Any] | None:
    if not isinstance(ref, dict):
        return None
    if ref.get("InvoiceID"):
        return org.invoices.get(str(ref["InvoiceID"]).lower())
    number = ref.get("InvoiceNumber")
    return next(
        (
            i
            for i in org.invoices.values()
            if number and i["InvoiceNumber"] == number and i["Status"] not in ("DELETED", "VOIDED")
        ),
        None,
    )


def find_account(org: Org, ref: Any) -> dict[str, Any] | None:
    if not isinstance(ref, dict):
        return None
    if ref.get("Code"):
        return org.accounts.get(str(ref["Code"]))
    wanted = str(ref.get("AccountID", "")).lower()
    return next((a for a in org.accounts.values() if a["AccountID"] == wanted), None)


def apply_payment(org: Org, raw: Any, now: datetime) -> tuple[dict[str, Any], list[str]]:
    """Validate and record a payment; returns (wire payment or echo, errors)."""
    if not isinstance(raw, dict):
        return {}, ["Payment must be an object."]
    errors: list[str] = []
    invoice = _find_invoice(org, raw.get("Invoice"))
    account = find_account(org, raw.get("Account"))
    amount = _amount(raw, errors)
    day = parse_date(raw["Date"]) if raw.get("Date") else now.date()
    if day is None:
        errors.append("The date is not valid. Use the format YYYY-MM-DD.")
    if invoice is None:
        errors.append(
            "Invoice could not be found."
            if raw.get("Invoice")
            else "An Invoice, CreditNote, Prepayment or Overpayment must be specified."
        )
    elif invoice["Status"] != "AUTHORISED":
        errors.append(
            "Invoice not of valid status for modification. Payments can only be made "
            f"to AUTHORISED invoices (this one is {invoice['Status']})."
        )
    elif amount is not None and amount > invoice["AmountDue"]:
        errors.append("Payment amount exceeds the amount outstanding on this document")
    if account is None:
        errors.append(
            "Account could not be found." if raw.get("Account") else "An Account must be specified."
        )
    elif account["Status"] != "ACTIVE" or not (
        account["Type"] == "BANK" or account["EnablePaymentsToAccount"]
    ):
        errors.append(
            f"Account code '{account['Code']}' is not a bank account and does not have payments enabled."
        )
    if errors:
        return dict(raw), errors
    assert invoice is not None and account is not None and amount is not None and day
    payment = {
        "PaymentID": str(uuid.uuid4()),
        "Date": ms_date(day),
        "Amount": amount,
        "BankAmount": amount,
        "Reference": raw.get("Reference", ""),
        "CurrencyRate": invoice["CurrencyRate"],
        "IsReconciled": bool(raw.get("IsReconciled")),
        "Status": "AUTHORISED",
        "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
        "UpdatedDateUTC": ms_date(now),
        "HasAccount": True,
        "HasValidationErrors": False,
        "StatusAttributeString": "OK",
        "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
        "Invoice": {k: invoice[k] for k in ("InvoiceID", "InvoiceNumber", "Type")}
        | {"Contact": invoice["Contact"]},
    }
    org.payments[payment["PaymentID"]] = payment
    invoice["AmountPaid"] = round2(invoice["AmountPaid"] + amount)
    invoice["Payments"].append(
        {
            k: payment[k]
            for k in (
                "PaymentID",
                "Date",
                "Amount",
                "Reference",
                "CurrencyRate",
                "HasAccount",
                "HasValidationErrors",
            )
        }
    )
    _touch(invoice, now)
    refresh_balances(invoice, INVOICE, now)
    return payment, []


def allocate_credit(
    org: Org, credit_note: dict[str, Any], raw: Any, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    """Allocate part of a credit note to an invoice of the same contact and currency."""
    if not isinstance(raw, dict):
        return {}, ["Allocation must be an object."]
    errors: list[str] = []
    amount = _amount(raw, errors)
    invoice = _find_invoice(org, raw.get("Invoice"))
    day = parse_date(raw["Date"]) if raw.get("Date") else now.date()
    if credit_note["Status"] != "AUTHORISED":
        errors.append(
            "Only AUTHORISED credit notes with remaining credit can be allocated "
            f"(this one is {credit_note['Status']})."
        )
    if invoice is None:
        errors.append("Invoice could not be found.")
    elif invoice["Status"] != "AUTHORISED":
        errors.append("Invoice not of valid status for modification.")
    elif invoice["Contact"]["ContactID"] != credit_note["Contact"]["ContactID"]:
        errors.append("The credit note and the invoice must belong to the same contact.")
    elif invoice["CurrencyCode"] != credit_note["CurrencyCode"]:
        errors.append("The credit note and the invoice must be in the same currency.")
    if amount is not None and amount > credit_note["RemainingCredit"]:
        errors.append("The amount being allocated exceeds the remaining credit on the credit note.")
    if amount is not None and invoice is not None and amount > invoice["AmountDue"]:
        errors.append("The amount being allocated exceeds the amount outstanding on the invoice.")
    if day is None:
        errors.append("The date is not valid. Use the format YYYY-MM-DD.")
    if errors:
        return dict(raw), errors
    assert invoice is not None and amount is not None and day is not None
    allocation = {
        "AllocationID": str(uuid.uuid4()),
        "Amount": amount,
        "Date": ms_date(day),
        "IsDeleted": False,
        "StatusAttributeString": "OK",
        "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"]},
        "CreditNote": {
            "CreditNoteID": credit_note["CreditNoteID"],
            "CreditNoteNumber": credit_note["CreditNoteNumber"],
        },
    }
    org.allocations.append(allocation)
    credit_note["Allocations"].append(
        {k: allocation[k] for k in ("AllocationID", "Amount", "Date", "Invoice")}
    )
    credit_note["AppliedAmount"] = round2(credit_note["AppliedAmount"] + amount)
    invoice["AmountCredited"] = round2(invoice["AmountCredited"] + amount)
    invoice["CreditNotes"].append(
        {
            "CreditNoteID": credit_note["CreditNoteID"],
            "CreditNoteNumber": credit_note["CreditNoteNumber"],
            "AppliedAmount": amount,
            "Total": credit_note["Total"],
        }
    )
    for doc, kind in ((credit_note, CREDIT_NOTE), (invoice, INVOICE)):
        _touch(doc, now)
        refresh_balances(doc, kind, now)
    return allocation, []


def _touch(doc: dict[str, Any], now: datetime) -> None:
    doc["UpdatedDateUTC"] = ms_date(now)
    doc["UpdatedDateUTCString"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
