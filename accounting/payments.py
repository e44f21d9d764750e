"""Applying payments and gift-card redemptions to invoices, oldest invoice first.

A payment waits (parked in `LedgerState.pending`) until an invoice has something
outstanding; it is split over several invoices when one is not enough (part n ≥ 2 gets the
source id suffix `:{n}`, the fee goes with part 1). Gift cards are applied before payments.
"""

from __future__ import annotations

from accounting.documents import LedgerContext, payment_command
from accounting.lines import ZERO
from accounting.state import LedgerState, PendingPayment
from schemas.commands import CreatePayment


def _base_source(order_id: str, pending: PendingPayment) -> str:
    prefix = "giftcard" if pending.kind == "giftcard" else "payment"
    return f"{prefix}:{order_id}:{pending.ref_id}"


def apply_pending(ctx: LedgerContext, ledger: LedgerState, order_id: str) -> list[CreatePayment]:
    """Commands paying as much of the parked money as the invoices owe; updates the records."""
    out: list[CreatePayment] = []
    for pending in ledger.pending:
        for invoice in ledger.invoices:
            if pending.remaining <= 0:
                break
            due = invoice.outstanding if invoice.kind == "invoice" else ZERO
            if due <= 0:
                continue
            amount = min(due, pending.remaining)
            pending.parts += 1
            base = _base_source(order_id, pending)
            first = pending.parts == 1
            out.append(
                payment_command(
                    ctx,
                    source_id=base if first else f"{base}:{pending.parts}",
                    order_id=order_id,
                    event_id=pending.event_id,
                    invoice_source_id=invoice.source_id,
                    on=pending.date,
                    amount=amount,
                    account_code=pending.account_code,
                    reference=f"Gift card {pending.ref_id}"
                    if pending.kind == "giftcard"
                    else f"{pending.gateway} {pending.ref_id}",
                    gateway=pending.gateway,
                    fee=pending.fee if first else None,
                    fee_account_code=pending.fee_account_code if first else None,
                )
            )
            invoice.paid += amount
            pending.remaining -= amount
    ledger.pending = [p for p in ledger.pending if p.remaining > 0]
    return out


def unapplied(ledger: LedgerState) -> str:
    return ", ".join(f"{p.kind} {p.ref_id} {p.remaining}" for p in ledger.pending)
