"""Spend and receive money (`BankTransactions`), with Xero's checks.

Supported: `PUT /BankTransactions` (create) of Type SPEND or RECEIVE; the other types
(overpayments, prepayments, transfers) are refused as unsupported. Checks:
- `BankAccount` (by Code or AccountID) must exist, be ACTIVE and be a BANK account or an account
  with `EnablePaymentsToAccount` (a clearing account);
- a Contact (by ContactID, or by Name: found or created, as on invoices);
- at least one line; each line's AccountCode must exist and be ACTIVE, its TaxType must exist
  and be ACTIVE (NoTax without a TaxType → NONE); no discounts;
- a `LineAmount` must equal Quantity × UnitAmount, and a `Total` sent must equal the computed
  total (to the cent); the total may not be negative;
- CurrencyCode enabled for the org; Status AUTHORISED (the only status a create may have).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.xero.sandbox.documents import AMOUNT_TYPES, Draft, build_lines, resolve_contact
from connectors.xero.sandbox.payments import find_account
from connectors.xero.sandbox.state import Org
from connectors.xero.sandbox.totals import document_totals, round2
from connectors.xero.sandbox.wire import date_string, ms_date, parse_date

TYPES = ("SPEND", "RECEIVE")
UNSUPPORTED = (
    "RECEIVE-OVERPAYMENT",
    "RECEIVE-PREPAYMENT",
    "SPEND-OVERPAYMENT",
    "SPEND-PREPAYMENT",
    "RECEIVE-TRANSFER",
    "SPEND-TRANSFER",
)


def build_bank_transaction(org: Org, raw: Any, now: datetime, *, unitdp: int = 2) -> Draft:
    """Validate a submitted bank transaction and compute it as Xero would (nothing stored)."""
    if not isinstance(raw, dict):
        return Draft({}, ["Bank Transaction must be an object."])
    errors: list[str] = []
    kind = raw.get("Type")
    if kind in UNSUPPORTED:
        errors.append(f"'{kind}' bank transactions are not supported by this sandbox.")
    elif kind not in TYPES:
        errors.append(
            "Bank Transaction Type must be specified."
            if not kind
            else f"'{kind}' is not a valid Bank Transaction Type."
        )
    status = raw.get("Status") or "AUTHORISED"
    if status != "AUTHORISED":
        errors.append(f"'{status}' is not a valid status for a new bank transaction.")
    amount_types = raw.get("LineAmountTypes") or "Exclusive"
    if amount_types not in AMOUNT_TYPES:
        errors.append(
            f"'{amount_types}' is not a valid LineAmountTypes value. Use Exclusive, Inclusive or NoTax."
        )
    currency = raw.get("CurrencyCode") or org.config.base_currency
    if currency not in org.config.currencies:
        errors.append(f"The currency '{currency}' is not enabled for this organisation.")
    day = parse_date(raw["Date"]) if raw.get("Date") else now.date()
    if day is None:
        errors.append("The date is not valid. Use the format YYYY-MM-DD.")
    bank = find_account(org, raw.get("BankAccount"))
    if bank is None:
        errors.append(
            "Bank account could not be found."
            if raw.get("BankAccount")
            else "A Bank Account must be specified."
        )
    elif bank["Status"] != "ACTIVE" or not (bank["Type"] == "BANK" or bank["EnablePaymentsToAccount"]):
        errors.append(
            f"Account code '{bank['Code']}' is not a bank account and does not have payments enabled."
        )
    contact = resolve_contact(org, raw.get("Contact"), now, errors)
    raw_lines = raw.get("LineItems")
    lines: list[dict[str, Any]] = []
    if not isinstance(raw_lines, list) or not raw_lines:
        errors.append("At least one line item must be specified.")
    else:
        ctx = {
            "type": kind,
            "status": "AUTHORISED",
            "amount_types": amount_types,
            "unit_q": Decimal(1).scaleb(-max(2, min(unitdp, 4))),
        }
        lines = build_lines(org, raw_lines, ctx, errors)
    if errors:
        return Draft(dict(raw), errors)
    assert contact is not None and bank is not None and day is not None
    totals = document_totals([(li["LineAmount"], li["TaxAmount"]) for li in lines], amount_types)
    given = raw.get("Total")
    sent = (
        round2(Decimal(str(given)))
        if isinstance(given, Decimal | int | float) and not isinstance(given, bool)
        else None
    )
    if sent is not None and sent != totals.total:
        return Draft(
            dict(raw), [f"The Total {sent} does not equal the sum of the line items ({totals.total})."]
        )
    if totals.total < 0:
        return Draft(dict(raw), ["Bank Transaction total cannot be negative."])
    doc = {
        "BankTransactionID": str(uuid.uuid4()),
        "Type": kind,
        "Contact": {
            k: contact.doc[k]
            for k in ("ContactID", "Name", "ContactStatus", "EmailAddress")
            if k in contact.doc
        },
        "BankAccount": {"AccountID": bank["AccountID"], "Code": bank["Code"], "Name": bank["Name"]},
        "LineItems": lines,
        "IsReconciled": bool(raw.get("IsReconciled")),
        "Date": ms_date(day),
        "DateString": date_string(day),
        "Reference": raw.get("Reference", ""),
        "CurrencyCode": currency,
        "CurrencyRate": Decimal(str(raw.get("CurrencyRate") or 1)).quantize(Decimal("0.000001")),
        "Status": "AUTHORISED",
        "LineAmountTypes": amount_types,
        "SubTotal": totals.sub_total,
        "TotalTax": totals.total_tax,
        "Total": totals.total,
        "UpdatedDateUTC": ms_date(now),
        "HasAttachments": False,
        "StatusAttributeString": "OK",
    }
    if raw.get("Url"):
        doc["Url"] = raw["Url"]
    return Draft(doc, new_contact=contact.new_contact)


def commit_bank_transaction(org: Org, draft: Draft) -> None:
    """Store a validated bank transaction (and the contact it created)."""
    if draft.new_contact is not None:
        org.contacts[draft.new_contact["ContactID"]] = draft.new_contact
    contact = org.contacts.get(draft.doc["Contact"]["ContactID"])
    if contact is not None:
        contact["IsSupplier" if draft.doc["Type"] == "SPEND" else "IsCustomer"] = True
    org.bank_transactions[draft.doc["BankTransactionID"]] = draft.doc
