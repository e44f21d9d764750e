"""Pure functions: posting command → Xero wire JSON (the mapper of adapter / mapper / binder).

Decisions:
- **Sales receipts**: Xero has no sales-receipt document. `CreateSalesReceipt` becomes an
  AUTHORISED ACCREC invoice; the connector then pays it in full into `deposit_account`
  (`receipt_payment()`), so the ledger shows a paid sale as QuickBooks' SalesReceipt would.
- **Item codes**: `ItemCode` is omitted by default. Xero rejects codes that are not set up
  as Items in the organisation, and shops' SKUs rarely are; the SKU goes into the line
  description instead ("Blue mug [SKU MUG-1]"). `use_item_codes=True` sends `ItemCode`
  for organisations that mirror their catalogue in Xero.
- **Discounts**: invoices send `DiscountAmount`. Xero credit notes do not support discounts,
  so a discounted credit-note line is sent at its net unit price (`LineAmount / Quantity`)
  when that is exact at 4 dp, else as quantity 1 at `LineAmount` with the quantity in the
  description.
- **Gateway fees**: Xero payments carry no fee. A `CreatePayment` with a `fee` and a
  `fee_account_code` (the tenant maps `accounts.fees`) also becomes a SPEND bank transaction
  (`fee_transaction()`): from the payment's bank / clearing account, to the gateway as contact
  ("Stripe"), one line of the fee on the fee account, `LineAmountTypes` NoTax with
  `TaxType` "NONE" (card-processing fees are VAT-exempt financial services, and "NONE" keeps
  the line off the VAT return; it exists in UK, US, NZ and global organisations; AU ones call it
  "BASEXCLUDED", hence `XeroConnector(fee_tax_type=...)`). Reference = the payment's, so the
  two sit side by side when the gateway's payout is reconciled. Its binding is
  `<payment source id>#fee` (`fee_source_id()`).
- **Numbers**: amounts are Decimals written as JSON numbers with their exact decimal text
  (`encode()`), never through float. Dates are `YYYY-MM-DD`.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from schemas.commands import (
    ContactDetails,
    CreateCreditNote,
    CreateInvoice,
    CreatePayment,
    CreateSalesReceipt,
    Document,
    DocumentLine,
)

Json = dict[str, Any]
UNITDP = Decimal("0.0001")
LINE_AMOUNT_TYPES = {"exclusive": "Exclusive", "inclusive": "Inclusive", "no_tax": "NoTax"}
STATUS = {"draft": "DRAFT", "authorised": "AUTHORISED"}


# ---------------------------------------------------------------- JSON with exact decimals


def _dump(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send {value} to Xero")
        text = format(value, "f")
        return text if text not in ("-0", "-0.0", "-0.00") else text[1:]
    if isinstance(value, float):
        raise TypeError("floats are not allowed on the wire; use Decimal")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    return json.dumps(value)


def encode(body: Any) -> bytes:
    """UTF-8 JSON; Decimals become numbers written exactly as held (no float round trip)."""
    return _dump(body).encode()


def decode(raw: bytes | str) -> Any:
    """Parse JSON keeping every non-integer number as Decimal."""
    return json.loads(raw, parse_float=Decimal)


# ---------------------------------------------------------------- contacts


def contact(details: ContactDetails, *, customer: bool = True) -> Json:
    """A Xero Contact element (Name is unique per organisation); `customer=False` for payees
    such as a payment gateway (Xero flags suppliers itself from the spend transactions)."""
    out: Json = {"Name": details.name}
    if details.email:
        out["EmailAddress"] = details.email
    if details.company and details.company != details.name:
        first, _, last = details.name.partition(" ")
        out["FirstName"] = first
        if last:
            out["LastName"] = last
    if details.vat_id:
        out["TaxNumber"] = details.vat_id
    if any((details.address_line1, details.city, details.region, details.postcode, details.country)):
        address: Json = {"AddressType": "STREET"}
        for key, value in (
            ("AddressLine1", details.address_line1),
            ("City", details.city),
            ("Region", details.region),
            ("PostalCode", details.postcode),
            ("Country", details.country),
        ):
            if value:
                address[key] = value
        out["Addresses"] = [address, {**address, "AddressType": "POBOX"}]
    if details.phone:
        out["Phones"] = [{"PhoneType": "DEFAULT", "PhoneNumber": details.phone}]
    if customer:
        out["IsCustomer"] = True
    return out


def contacts_body(elements: list[Json]) -> Json:
    return {"Contacts": elements}


# ---------------------------------------------------------------- documents


def _description(line: DocumentLine, use_item_codes: bool) -> str:
    if line.item_code and not use_item_codes:
        return f"{line.description} [SKU {line.item_code}]"
    return line.description


def line_item(line: DocumentLine, *, use_item_codes: bool = False, discounts: bool = True) -> Json:
    out: Json = {"Description": _description(line, use_item_codes)}
    quantity, unit = line.quantity, line.unit_amount
    if line.discount_amount and not discounts:
        net_unit = line.line_amount / line.quantity
        if net_unit == net_unit.quantize(UNITDP):
            unit = net_unit.quantize(UNITDP).normalize() if net_unit != 0 else Decimal(0)
        else:
            out["Description"] = f"{out['Description']} (x{format(line.quantity, 'f')})"
            quantity, unit = Decimal(1), line.line_amount
    out["Quantity"] = quantity
    out["UnitAmount"] = unit
    if use_item_codes and line.item_code:
        out["ItemCode"] = line.item_code
    out["AccountCode"] = line.account_code
    out["TaxType"] = line.tax_code
    out["TaxAmount"] = line.tax_amount
    out["LineAmount"] = line.line_amount
    if line.discount_amount and discounts:
        out["DiscountAmount"] = line.discount_amount
    return out


def _document_header(doc: Document) -> Json:
    out: Json = {
        "Date": doc.date.isoformat(),
        "LineAmountTypes": LINE_AMOUNT_TYPES[doc.line_amount_type],
        "Reference": doc.reference,
        "CurrencyCode": doc.currency,
    }
    if doc.exchange_rate is not None:
        out["CurrencyRate"] = doc.exchange_rate
    return out


def invoice(
    command: CreateInvoice | CreateSalesReceipt, contact_id: str, *, use_item_codes: bool = False
) -> Json:
    """An ACCREC Invoice element. Sales receipts are AUTHORISED invoices (paid by the connector)."""
    doc = command.document
    if isinstance(command, CreateSalesReceipt):
        status, due = "AUTHORISED", doc.date
    else:
        status, due = STATUS[command.status], command.due_date
    out: Json = {"Type": "ACCREC", "Contact": {"ContactID": contact_id}}
    header = _document_header(doc)
    out["Date"] = header.pop("Date")
    out["DueDate"] = due.isoformat()
    out.update(header)
    if doc.number:
        out["InvoiceNumber"] = doc.number
    out["Status"] = status
    out["LineItems"] = [line_item(line, use_item_codes=use_item_codes) for line in doc.lines]
    return out


def invoices_body(elements: list[Json]) -> Json:
    return {"Invoices": elements}


def credit_note(command: CreateCreditNote, contact_id: str, *, use_item_codes: bool = False) -> Json:
    """An ACCRECCREDIT CreditNote element (no line discounts in Xero credit notes)."""
    doc = command.document
    out: Json = {"Type": "ACCRECCREDIT", "Contact": {"ContactID": contact_id}}
    out.update(_document_header(doc))
    if doc.number:
        out["CreditNoteNumber"] = doc.number
    out["Status"] = STATUS[command.status]
    out["LineItems"] = [line_item(line, use_item_codes=use_item_codes, discounts=False) for line in doc.lines]
    return out


def credit_notes_body(elements: list[Json]) -> Json:
    return {"CreditNotes": elements}


def allocation(command: CreateCreditNote, invoice_id: str) -> Json:
    """Body of `PUT /CreditNotes/{id}/Allocations`: apply `allocate` to the credited invoice."""
    return {
        "Allocations": [
            {
                "Invoice": {"InvoiceID": invoice_id},
                "Amount": command.allocate,
                "Date": command.document.date.isoformat(),
            }
        ]
    }


def payment(command: CreatePayment, invoice_id: str, exchange_rate: Decimal | None = None) -> Json:
    """A Payment element against one invoice, into the bank/clearing account `account_code`.

    Its gateway fee is not part of it (Xero payments carry no fee): see `fee_transaction()`.
    """
    out: Json = {
        "Invoice": {"InvoiceID": invoice_id},
        "Account": {"Code": command.account_code},
        "Date": command.date.isoformat(),
        "Amount": command.amount,
        "Reference": command.reference,
    }
    if exchange_rate is not None:
        out["CurrencyRate"] = exchange_rate
    return out


def payments_body(elements: list[Json]) -> Json:
    return {"Payments": elements}


# ---------------------------------------------------------------- gateway fees

FEE_TAX_TYPE = "NONE"
GATEWAY_NAMES = {
    "stripe": "Stripe",
    "paypal": "PayPal",
    "shopify_payments": "Shopify Payments",
    "gocardless": "GoCardless",
    "sumup": "SumUp",
    "amazon_pay": "Amazon Pay",
}


def has_fee(command: CreatePayment) -> bool:
    """Whether the payment carries a gateway fee to book (a positive fee and a fee account)."""
    return bool(command.fee and command.fee > 0 and command.fee_account_code)


def fee_source_id(command: CreatePayment) -> str:
    """The binding key of a payment's fee bank transaction."""
    return f"{command.source_id}#fee"


def fee_key(command: CreatePayment) -> str:
    """A deterministic member key for the fee (derived from the payment's idempotency key)."""
    return hashlib.sha256("\x1f".join((command.idempotency_key, "fee")).encode()).hexdigest()


def gateway_name(gateway: str | None) -> str:
    """The contact a gateway's fees are paid to: "stripe" → "Stripe", "shopify_payments" →
    "Shopify Payments"; no gateway → "Payment gateway"."""
    if not gateway or not gateway.strip():
        return "Payment gateway"
    key = gateway.strip().lower()
    return GATEWAY_NAMES.get(key) or key.replace("_", " ").replace("-", " ").title()


def gateway_contact(command: CreatePayment) -> ContactDetails:
    return ContactDetails(name=gateway_name(command.gateway))


def fee_description(command: CreatePayment) -> str:
    """ "Stripe fee for payment p1" (the payment reference without its leading gateway name)."""
    ref = command.reference
    if command.gateway and ref.lower().startswith(command.gateway.lower() + " "):
        ref = ref[len(command.gateway) + 1 :]
    return f"{gateway_name(command.gateway)} fee for payment {ref}"


def fee_transaction(command: CreatePayment, contact_id: str, *, tax_type: str = FEE_TAX_TYPE) -> Json:
    """A SPEND BankTransaction element: the payment's gateway fee, paid out of the bank / clearing
    account the payment went into, coded to the fee account, no tax."""
    if not has_fee(command):
        raise ValueError(f"payment {command.source_id} has no fee to post")
    fee = command.fee
    assert fee is not None
    return {
        "Type": "SPEND",
        "Contact": {"ContactID": contact_id},
        "BankAccount": {"Code": command.account_code},
        "Date": command.date.isoformat(),
        "Reference": command.reference,
        "CurrencyCode": command.currency,
        "LineAmountTypes": "NoTax",
        "LineItems": [
            {
                "Description": fee_description(command),
                "Quantity": Decimal(1),
                "UnitAmount": fee,
                "AccountCode": command.fee_account_code,
                "TaxType": tax_type,
                "LineAmount": fee,
            }
        ],
    }


def bank_transactions_body(elements: list[Json]) -> Json:
    return {"BankTransactions": elements}


def receipt_payment(command: CreateSalesReceipt) -> CreatePayment:
    """The payment that settles a sales receipt's invoice in full into `deposit_account`.

    Its source id is `<receipt source id>#payment` so it gets its own binding (a replay after a
    crash between the invoice and the payment finishes the receipt without a second invoice).
    """
    doc = command.document
    raw = "\x1f".join((command.idempotency_key, "payment"))
    return CreatePayment(
        idempotency_key=hashlib.sha256(raw.encode()).hexdigest(),
        tenant_id=command.tenant_id,
        ledger=command.ledger,
        source_type="payment",
        source_id=f"{command.source_id}#payment",
        order_id=command.order_id,
        event_id=command.event_id,
        revision=command.revision,
        invoice_source_id=command.source_id,
        date=doc.date,
        currency=doc.currency,
        amount=doc.total,
        account_code=command.deposit_account,
        reference=doc.reference,
    )


def batch_key(keys: list[str] | tuple[str, ...], operation: str, body: Any) -> str:
    """The Idempotency-Key of a batch: sha256 of the operation, its members' keys (sorted) and a
    sha256 of the request body as sent (`encode(body)`).

    Same commands and same body → same key, so Xero replays its answer to a repeat. A corrected
    replay of the same commands (e.g. a re-mapped tax code from the dead-letter inbox) has a
    different body, hence a different key: Xero would answer a reused key with a different body
    with a 400 instead of processing it.
    """
    body_sha = hashlib.sha256(encode(body)).hexdigest()
    raw = "\n".join([operation, *sorted(keys), body_sha])
    return hashlib.sha256(raw.encode()).hexdigest()
