"""Posting commands: what the enrichment agent asks a ledger connector to do.

One command is one ledger document (or contact) for one tenant, published on
`ledger.<ledger>.commands` keyed by tenant id. Commands are deterministic: the same
event and config give byte-identical JSON and the same `idempotency_key`, which
connectors send as Xero's `Idempotency-Key` / QuickBooks' `requestid`.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.money import Currency, ExchangeRate, Money, NonNegativeMoney, Quantity
from schemas.tenant import Ledger

SourceType = Literal["order", "refund", "payment", "summary", "contact"]


def idempotency_key(tenant_id: str, ledger: str, kind: str, source_id: str, revision: int) -> str:
    """A stable key (64 hex chars) for one document revision; fits Xero's 128-char limit."""
    raw = "\x1f".join((tenant_id, ledger, kind, source_id, str(revision)))
    return hashlib.sha256(raw.encode()).hexdigest()


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactDetails(Model):
    """Who the document is for; connectors match (email, then name + postcode) or create."""

    name: str
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    vat_id: str | None = None
    address_line1: str | None = None
    city: str | None = None
    region: str | None = None
    postcode: str | None = None
    country: str | None = None


class DocumentLine(Model):
    line_ref: str = Field(description="source line id, or shipping:<id> / discount / rounding")
    item_code: str | None = None
    description: str
    quantity: Quantity
    unit_amount: Money = Field(description="in the document's line amount type")
    discount_amount: NonNegativeMoney = Decimal(0)
    account_code: str
    tax_code: str
    line_amount: Money = Field(description="quantity × unit − discount, rounded to the cent")
    tax_amount: Money = Field(description="tax as the ledger computes it for this line")


class CommandBase(Model):
    idempotency_key: str
    tenant_id: str
    ledger: Ledger
    source_type: SourceType
    source_id: str = Field(description="what the binding is keyed by, e.g. order:<id>:f:<fid>")
    order_id: str | None = None
    event_id: str = Field(description="the event that produced this command")
    revision: int = 0


class Document(Model):
    """Fields shared by invoices, sales receipts and credit notes."""

    date: date
    currency: Currency
    exchange_rate: ExchangeRate | None = None
    line_amount_type: Literal["exclusive", "inclusive", "no_tax"]
    contact: ContactDetails
    reference: str
    number: str | None = None
    lines: tuple[DocumentLine, ...] = Field(min_length=1)
    subtotal: Money
    total_tax: Money
    total: Money


class CreateInvoice(CommandBase):
    kind: Literal["invoice.create"] = "invoice.create"
    status: Literal["draft", "authorised"]
    due_date: date
    document: Document
    order_ids: tuple[str, ...] = Field((), description="daily summaries: the orders covered")


class CreateSalesReceipt(CommandBase):
    kind: Literal["sales_receipt.create"] = "sales_receipt.create"
    document: Document
    deposit_account: str


class CreateCreditNote(CommandBase):
    kind: Literal["credit_note.create"] = "credit_note.create"
    status: Literal["draft", "authorised"]
    document: Document
    invoice_source_id: str = Field(description="binding key of the invoice it credits")
    allocate: NonNegativeMoney = Field(description="amount to allocate against that invoice")


class CreatePayment(CommandBase):
    kind: Literal["payment.create"] = "payment.create"
    invoice_source_id: str
    date: date
    currency: Currency
    amount: Money = Field(gt=0)
    account_code: str
    reference: str
    gateway: str | None = None
    fee: NonNegativeMoney | None = None
    fee_account_code: str | None = None


class UpsertContact(CommandBase):
    kind: Literal["contact.upsert"] = "contact.upsert"
    contact: ContactDetails


PostingCommand = Annotated[
    CreateInvoice | CreateSalesReceipt | CreateCreditNote | CreatePayment | UpsertContact,
    Field(discriminator="kind"),
]
command_adapter: TypeAdapter[PostingCommand] = TypeAdapter(PostingCommand)
