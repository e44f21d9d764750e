"""The per-order state model, stored as JSON in a Faust table keyed by order id.

Quantities here are ledger-neutral (every ledger invoices the same quantities at the same
event); documents, payments and credits are kept per ledger because codes and amounts are.
`apply` never mutates the state it is given: it works on a deep copy.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.commands import DocumentLine
from schemas.events import Order

ZERO = Decimal("0.00")


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InvoicedLine(_State):
    """A line as posted, plus how much of it has been credited since."""

    line: DocumentLine
    tax_rate: Decimal
    role: Literal["item", "shipping", "discount", "adjustment", "rounding"]
    credited_quantity: Decimal = ZERO
    credited_discount: Decimal = ZERO
    credited_amount: Decimal = ZERO


class InvoiceRecord(_State):
    """One posted sales document (invoice, sales receipt, or an order's share of a daily summary)."""

    source_id: str
    kind: Literal["invoice", "sales_receipt", "summary"]
    event_id: str
    amount_type: Literal["exclusive", "inclusive"]
    main_tax_code: str
    main_tax_rate: Decimal
    lines: list[InvoicedLine]
    total: Decimal
    day: date | None = Field(None, description="document date (a summary: the day it is summarised in)")
    paid: Decimal = ZERO
    credited: Decimal = ZERO
    credit_allocated: Decimal = ZERO

    @property
    def outstanding(self) -> Decimal:
        return max(self.total - self.paid - self.credit_allocated, ZERO)


class CreditRecord(_State):
    source_id: str
    invoice_source_id: str
    event_id: str
    total: Decimal
    allocated: Decimal


class PendingPayment(_State):
    """A payment or gift-card redemption not yet (fully) applied to an invoice: parked."""

    kind: Literal["payment", "giftcard"]
    ref_id: str = Field(description="payment_id or gift_card_id")
    event_id: str
    gateway: str | None
    account_code: str
    currency: str
    remaining: Decimal
    date: date
    fee: Decimal | None = None
    fee_account_code: str | None = None
    parts: int = 0


class LedgerState(_State):
    invoices: list[InvoiceRecord] = []
    credit_notes: list[CreditRecord] = []
    pending: list[PendingPayment] = []


class OrderState(_State):
    """Everything needed to book the next event of one order correctly."""

    tenant_id: str
    order_id: str
    order: Order | None = Field(None, description="the latest order snapshot")
    order_revision: int = Field(0, description="bumped whenever the order snapshot changes")
    processed_event_ids: list[str] = []
    fulfilled: dict[str, Decimal] = Field({}, description="line id → quantity reported shipped")
    invoiced: dict[str, Decimal] = Field({}, description="line id → quantity invoiced")
    reduced: dict[str, Decimal] = Field({}, description="line id → quantity refunded before invoicing")
    shipping_invoiced: bool = False
    shipping_reduced: Decimal = Field(ZERO, description="shipping refunded before it was invoiced")
    amount_reduced: Decimal = Field(ZERO, description="amount_only refunded before anything was invoiced")
    amount_reduced_posted: bool = False
    cancelled: bool = False
    complete: bool = Field(False, description="every line and the shipping are invoiced or refunded")
    first_gateway: str | None = None
    refund_ids: list[str] = []
    fulfillment_ids: list[str] = Field(
        [], description="shipments booked: one re-sent under a new event id is skipped"
    )
    payment_ids: list[str] = Field(
        [], description="payments booked: one re-sent under a new event id is skipped"
    )
    ledgers: dict[str, LedgerState] = {}
    invoice_count: int = 0

    @property
    def posted(self) -> bool:
        return self.invoice_count > 0

    def ledger(self, name: str) -> LedgerState:
        return self.ledgers.setdefault(name, LedgerState())
