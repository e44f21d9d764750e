"""Validation and construction of contacts, invoices and credit notes for one org.

Builders never mutate the org; they return a `Draft` that `commit` stores, so a
failed element of a batch leaves no trace while earlier valid elements are kept.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.xero.sandbox.state import Org
from connectors.xero.sandbox.totals import document_totals, line_amount, line_tax, round2
from connectors.xero.sandbox.wire import date_string, ms_date, parse_date

AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
CREATE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
READ_ONLY = {
    "SubTotal",
    "TotalTax",
    "Total",
    "AmountDue",
    "AmountPaid",
    "AmountCredited",
    "Payments",
    "CreditNotes",
    "Allocations",
    "RemainingCredit",
    "ValidationErrors",
    "HasErrors",
    "StatusAttributeString",
    "UpdatedDateUTC",
    "Warnings",
}


@dataclass
class Kind:
    """What differs between invoices and credit notes."""

    collection: str
    id_field: str
    number_field: str
    prefix: str
    types: tuple[str, ...]
    label: str


INVOICE = Kind("invoices", "InvoiceID", "InvoiceNumber", "INV", ("ACCREC", "ACCPAY"), "Invoice")
CREDIT_NOTE = Kind(
    "credit_notes", "CreditNoteID", "CreditNoteNumber", "CN", ("ACCRECCREDIT", "ACCPAYCREDIT"), "Credit Note"
)


@dataclass
class Draft:
    """A validated document (or its errors) and any contact it would create."""

    doc: dict[str, Any]
    errors: list[str] = field(default_factory=list)
    new_contact: dict[str, Any] | None = None


def _dec(value: Any, name: str, errors: list[str]) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except ArithmeticError:
        errors.append(f"{name} must be a number.")
        return None


def _find_contact_by_name(org: Org, name: str) -> dict[str, Any] | None:
    wanted = name.strip().lower()
    return next((c for c in org.contacts.values() if c["Name"].strip().lower() == wanted), None)


def new_contact_wire(raw: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A contact as Xero returns it, from a submitted contact."""
    base: dict[str, Any] = {
        "ContactID": str(uuid.uuid4()),
        "ContactStatus": "ACTIVE",
        "EmailAddress": "",
        "BankAccountDetails": "",
        "Addresses": [],
        "Phones": [],
        "ContactGroups": [],
        "ContactPersons": [],
        "IsSupplier": False,
        "IsCustomer": False,
        "HasAttachments": False,
        "HasValidationErrors": False,
    }
    kept = {k: v for k, v in raw.items() if k not in READ_ONLY and k != "ContactID"}
    return base | kept | {"UpdatedDateUTC": ms_date(now)}


def build_contact(org: Org, raw: dict[str, Any], now: datetime, *, upsert: bool) -> Draft:
    """Validate a contact for PUT (create) or POST (create or update)."""
    errors: list[str] = []
    existing = org.contacts.get(str(raw.get("ContactID", "")).lower()) if upsert else None
    if raw.get("ContactID") and upsert and existing is None:
        return Draft(dict(raw), ["Contact not found."])
    name = raw.get("Name", existing["Name"] if existing else None)
    if not isinstance(name, str) or not name.strip():
        errors.append("The contact name must be specified.")
        return Draft(dict(raw), errors)
    clash = _find_contact_by_name(org, name)
    if clash is not None and upsert and existing is None:
        existing = clash
    elif clash is not None and clash is not existing:
        errors.append(
            f"The contact name {name} is already assigned to another contact. "
            "The contact name must be unique across all active contacts."
        )
    if len(name) > 255:
        errors.append("The contact name must not exceed 255 characters.")
    if errors:
        return Draft(dict(raw), errors)
    if existing is not None:
        kept = {k: v for k, v in raw.items() if k not in READ_ONLY and k != "ContactID"}
        return Draft(existing | kept | {"UpdatedDateUTC": ms_date(now)})
    return Draft(new_contact_wire(raw, now))


def resolve_contact(org: Org, raw: Any, now: datetime, errors: list[str]) -> Draft | None:
    if not isinstance(raw, dict) or not (raw.get("ContactID") or raw.get("Name")):
        errors.append("A Contact must be specified for this type of transaction")
        return None
    if raw.get("ContactID"):
        found = org.contacts.get(str(raw["ContactID"]).lower())
        if found is None:
            errors.append(f"The contact with ContactID '{raw['ContactID']}' could not be found.")
            return None
        return Draft(found)
    found = _find_contact_by_name(org, str(raw["Name"]))
    if found is not None:
        return Draft(found)
    created = new_contact_wire(raw, now)
    return Draft(created, new_contact=created)


def build_lines(
    org: Org, raw_lines: list[Any], ctx: dict[str, Any], errors: list[str]
) -> list[dict[str, Any]]:
    """Validate and compute submitted line items (errors appended; failed lines left out)."""
    lines = []
    for n, raw_line in enumerate(raw_lines, start=1):
        line = _build_line(org, raw_line, n, ctx, errors)
        if line is not None:
            lines.append(line)
    return lines


def _build_line(org: Org, raw: Any, n: int, ctx: dict[str, Any], errors: list[str]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        errors.append(f"Line item {n} is not an object.")
        return None
    before = len(errors)
    qty = _dec(raw.get("Quantity"), "Quantity", errors)
    unit = _dec(raw.get("UnitAmount"), "UnitAmount", errors)
    given = _dec(raw.get("LineAmount"), "LineAmount", errors)
    rate = _dec(raw.get("DiscountRate"), "DiscountRate", errors)
    discount = _dec(raw.get("DiscountAmount"), "DiscountAmount", errors)
    tax_given = _dec(raw.get("TaxAmount"), "TaxAmount", errors)
    if (rate or discount) and ctx["type"] != "ACCREC":
        errors.append("Discounts are only supported on sales invoices (ACCREC).")
    if rate is not None and not Decimal(0) <= rate <= Decimal(100):
        errors.append("DiscountRate must be between 0 and 100.")
    if unit is None and qty is None and given is not None:
        qty, unit = Decimal(1), given
    qty = Decimal(1) if qty is None and unit is not None else (qty or Decimal(0))
    unit = (unit or Decimal(0)).quantize(ctx["unit_q"])
    amount = line_amount(qty, unit, rate, discount)
    if given is not None and abs(round2(given) - amount) > Decimal("0.01"):
        errors.append(
            f"Line item {n}: LineAmount {round2(given)} does not equal Quantity × UnitAmount "
            f"less discount ({amount})."
        )
    code = raw.get("AccountCode")
    account = org.accounts.get(str(code)) if code is not None else None
    if code is None:
        if ctx["status"] != "DRAFT":
            errors.append("Account code must be specified for each line item on an approved document.")
    elif account is None:
        errors.append(f"Account code '{code}' is not a valid code for this document.")
    elif account["Status"] != "ACTIVE":
        errors.append(
            f"Account code '{code}' has been archived, or deleted. Each line item "
            "must reference a valid account."
        )
    tax_type = raw.get("TaxType") or (account or {}).get("TaxType") or "NONE"
    if ctx["amount_types"] == "NoTax" and not raw.get("TaxType"):
        tax_type = "NONE"
    tax_rate = org.tax_rates.get(str(tax_type))
    if tax_rate is None:
        errors.append(
            f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of transaction."
        )
    elif tax_rate["Status"] != "ACTIVE":
        errors.append(
            f"Tax type '{tax_type}' is not active. The tax rate '{tax_rate['Name']}' "
            f"has a status of {tax_rate['Status']} and cannot be used."
        )
    if len(errors) > before:
        return None
    percent = tax_rate["EffectiveRate"] if tax_rate else Decimal(0)
    tax = round2(tax_given) if tax_given is not None else line_tax(amount, percent, ctx["amount_types"])
    line: dict[str, Any] = {
        "LineItemID": str(raw.get("LineItemID") or uuid.uuid4()),
        "Description": raw.get("Description", ""),
        "Quantity": qty.quantize(Decimal("0.0001")),
        "UnitAmount": unit,
        "TaxType": tax_type,
        "TaxAmount": tax,
        "LineAmount": amount,
        "Tracking": raw.get("Tracking") or [],
    }
    if account is not None:
        line |= {"AccountCode": account["Code"], "AccountID": account["AccountID"]}
    for k in ("ItemCode", "DiscountRate", "DiscountAmount"):
        if raw.get(k) is not None:
            line[k] = raw[k]
    return line


def build_document(org: Org, kind: Kind, raw: Any, now: datetime, *, upsert: bool, unitdp: int = 2) -> Draft:
    """Validate a submitted invoice or credit note and compute it as Xero would."""
    if not isinstance(raw, dict):
        return Draft({}, [f"{kind.label} must be an object."])
    errors: list[str] = []
    store = getattr(org, kind.collection)
    existing = _find_existing(org, kind, raw) if upsert else None
    if raw.get(kind.id_field) and existing is None:
        return Draft(dict(raw), [f"{kind.label} could not be found"])
    if existing is not None:
        errors += _edit_errors(existing, raw.get("Status"))
        if errors:
            return Draft(dict(raw), errors)
    prev = existing or {}
    merged = {**prev, **{k: v for k, v in raw.items() if k not in READ_ONLY}}
    doc_type = merged.get("Type")
    if doc_type not in kind.types:
        errors.append(
            f"{kind.label} Type must be specified."
            if not doc_type
            else f"'{doc_type}' is not a valid {kind.label} Type."
        )
    status = merged.get("Status") or "DRAFT"
    allowed = CREATE_STATUSES + (("DELETED", "VOIDED") if existing else ())
    if status not in allowed:
        errors.append(f"'{status}' is not a valid status for this {kind.label.lower()}.")
    amount_types = merged.get("LineAmountTypes") or "Exclusive"
    if amount_types not in AMOUNT_TYPES:
        errors.append(
            f"'{amount_types}' is not a valid LineAmountTypes value. Use Exclusive, Inclusive or NoTax."
        )
    currency = merged.get("CurrencyCode") or org.config.base_currency
    if currency not in org.config.currencies:
        errors.append(f"The currency '{currency}' is not enabled for this organisation.")
    day = parse_date(merged["Date"]) if merged.get("Date") else now.date()
    due = parse_date(merged["DueDate"]) if merged.get("DueDate") else None
    if day is None or (merged.get("DueDate") and due is None):
        errors.append("The date is not valid. Use the format YYYY-MM-DD.")
    contact = resolve_contact(org, merged.get("Contact"), now, errors)
    number = merged.get(kind.number_field)
    if number and doc_type in ("ACCREC", "ACCRECCREDIT"):
        clash = next(
            (
                d
                for d in store.values()
                if d.get(kind.number_field) == number
                and d["Type"] == doc_type
                and d is not existing
                and d["Status"] not in ("DELETED", "VOIDED")
            ),
            None,
        )
        if clash is not None:
            errors.append(f"{'Invoice' if kind is INVOICE else 'Credit Note'} # must be unique.")
    raw_lines = raw.get("LineItems") if "LineItems" in raw else None
    lines: list[dict[str, Any]] = []
    ctx = {
        "type": doc_type,
        "status": status,
        "amount_types": amount_types,
        "unit_q": Decimal(1).scaleb(-max(2, min(unitdp, 4))),
    }
    if raw_lines is None and existing is not None:
        lines = existing["LineItems"]
    elif raw_lines is not None and not isinstance(raw_lines, list):
        errors.append("LineItems must be a list.")
    else:
        lines = build_lines(org, raw_lines or [], ctx, errors)
    if not (raw_lines or lines) and status not in ("DRAFT", "DELETED", "VOIDED"):
        errors.append("At least one line item must be specified.")
    if errors:
        return Draft(dict(raw), errors)
    assert contact is not None and day is not None
    totals = document_totals([(li["LineAmount"], li["TaxAmount"]) for li in lines], amount_types)
    if totals.total < 0:
        return Draft(dict(raw), [f"{kind.label} total cannot be negative."])
    doc = _assemble(org, kind, merged, prev, now, contact.doc, lines, totals, day, due)
    doc |= {"Status": status, "LineAmountTypes": amount_types, "CurrencyCode": currency}
    refresh_balances(doc, kind, now)
    return Draft(doc, new_contact=contact.new_contact)


def _find_existing(org: Org, kind: Kind, raw: dict[str, Any]) -> dict[str, Any] | None:
    store = getattr(org, kind.collection)
    if raw.get(kind.id_field):
        return store.get(str(raw[kind.id_field]).lower())
    number = raw.get(kind.number_field)
    if number:
        return next(
            (
                d
                for d in store.values()
                if d.get(kind.number_field) == number and d["Status"] not in ("DELETED", "VOIDED")
            ),
            None,
        )
    return None


def _edit_errors(existing: dict[str, Any], new_status: str | None) -> list[str]:
    if existing["Status"] in ("DELETED", "VOIDED"):
        return [f"This document cannot be edited as it has been {existing['Status'].lower()}."]
    touched = (
        existing.get("AmountPaid", 0)
        or existing.get("AmountCredited", 0)
        or (existing.get("Allocations") or existing.get("Payments"))
    )
    if existing["Status"] == "PAID" or touched:
        return ["This document cannot be edited as it has a payment or credit note allocated to it."]
    if new_status == "DELETED" and existing["Status"] == "AUTHORISED":
        return ["An AUTHORISED document cannot be deleted; void it instead."]
    if new_status == "VOIDED" and existing["Status"] != "AUTHORISED":
        return ["Only AUTHORISED documents can be voided; delete it instead."]
    return []


def _assemble(
    org: Org,
    kind: Kind,
    merged: dict[str, Any],
    prev: dict[str, Any],
    now: datetime,
    contact: dict[str, Any],
    lines: list[dict[str, Any]],
    totals: Any,
    day: Any,
    due: Any,
) -> dict[str, Any]:
    doc = {
        k: v
        for k, v in merged.items()
        if k in ("Reference", "Url", "BrandingThemeID", "SentToContact", "ExpectedPaymentDate")
    }
    doc_id = prev.get(kind.id_field) or str(uuid.uuid4())
    number = merged.get(kind.number_field) or prev.get(kind.number_field)
    if not number and merged["Type"] in ("ACCREC", "ACCRECCREDIT"):
        number = org.next_number(kind.prefix)
    doc |= {
        "Type": merged["Type"],
        kind.id_field: doc_id,
        kind.number_field: number or "",
        "Contact": {
            k: contact[k] for k in ("ContactID", "Name", "ContactStatus", "EmailAddress") if k in contact
        },
        "DateString": date_string(day),
        "Date": ms_date(day),
        "LineItems": lines,
        "SubTotal": totals.sub_total,
        "TotalTax": totals.total_tax,
        "Total": totals.total,
        "CurrencyRate": Decimal(str(merged.get("CurrencyRate") or 1)).quantize(Decimal("0.000001")),
        "HasAttachments": False,
        "HasErrors": False,
        "Payments": prev.get("Payments", []),
        "UpdatedDateUTC": ms_date(now),
        "UpdatedDateUTCString": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "StatusAttributeString": "OK",
    }
    if due is not None:
        doc |= {"DueDateString": date_string(due), "DueDate": ms_date(due)}
    if kind is INVOICE:
        doc |= {
            "Prepayments": [],
            "Overpayments": [],
            "CreditNotes": prev.get("CreditNotes", []),
            "AmountPaid": prev.get("AmountPaid", Decimal("0.00")),
            "AmountCredited": prev.get("AmountCredited", Decimal("0.00")),
            "IsDiscounted": any(li.get("DiscountRate") or li.get("DiscountAmount") for li in lines),
            "TotalDiscount": Decimal("0.00"),
            "SentToContact": False,
        }
    else:
        doc |= {
            "Allocations": prev.get("Allocations", []),
            "AppliedAmount": prev.get("AppliedAmount", Decimal("0.00")),
        }
    return doc


def refresh_balances(doc: dict[str, Any], kind: Kind, now: datetime) -> None:
    """Recompute AmountDue / RemainingCredit and move fully settled documents to PAID."""
    if kind is INVOICE:
        doc["AmountDue"] = round2(doc["Total"] - doc["AmountPaid"] - doc["AmountCredited"])
        settled = doc["AmountDue"] == 0 and (doc["AmountPaid"] or doc["AmountCredited"])
    else:
        doc["RemainingCredit"] = round2(doc["Total"] - doc["AppliedAmount"])
        settled = doc["RemainingCredit"] == 0 and doc["AppliedAmount"]
    if settled and doc["Status"] == "AUTHORISED":
        doc["Status"] = "PAID"
        doc["FullyPaidOnDate"] = ms_date(now.date())


def commit(org: Org, kind: Kind, draft: Draft) -> None:
    """Store a validated document (and the contact it created)."""
    if draft.new_contact is not None:
        org.contacts[draft.new_contact["ContactID"]] = draft.new_contact
    contact = org.contacts.get(draft.doc["Contact"]["ContactID"])
    if contact is not None and draft.doc["Type"] in ("ACCREC", "ACCRECCREDIT"):
        contact["IsCustomer"] = True
    elif contact is not None:
        contact["IsSupplier"] = True
    getattr(org, kind.collection)[draft.doc[kind.id_field]] = draft.doc
