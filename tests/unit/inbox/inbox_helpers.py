"""Helpers for the inbox tests: the acme config, invoice commands, dead-letter records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from agents import dead_letters
from connectors.errors import Rejected
from schemas.commands import ContactDetails, CreateInvoice, Document, DocumentLine, idempotency_key
from schemas.dead_letter import DeadLetter, Reason

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def invoice(
    order: str, tax_code: str = "OUTPUT2", tenant: str = "acme-uk", country: str = "GB"
) -> CreateInvoice:
    source_id = f"order:{order}:f:f1"
    return CreateInvoice(
        idempotency_key=idempotency_key(tenant, "xero", "invoice.create", source_id, 0),
        tenant_id=tenant,
        ledger="xero",
        source_type="order",
        source_id=source_id,
        order_id=order,
        event_id=f"evt-{order}",
        status="authorised",
        due_date=T0.date(),
        document=Document(
            date=T0.date(),
            currency="GBP",
            line_amount_type="exclusive",
            contact=ContactDetails(name=f"Customer {order}", email=f"{order}@example.com", country=country),
            reference=f"Order {order}",
            lines=(
                DocumentLine(
                    line_ref="l1",
                    description="Mug",
                    quantity=Decimal(2),
                    unit_amount=Decimal("10.00"),
                    account_code="200",
                    tax_code=tax_code,
                    line_amount=Decimal("20.00"),
                    tax_amount=Decimal("4.00"),
                ),
                DocumentLine(
                    line_ref="shipping:s1",
                    description="Courier",
                    quantity=Decimal(1),
                    unit_amount=Decimal("5.00"),
                    account_code="425",
                    tax_code=tax_code,
                    line_amount=Decimal("5.00"),
                    tax_amount=Decimal("1.00"),
                ),
            ),
            subtotal=Decimal("25.00"),
            total_tax=Decimal("5.00"),
            total=Decimal("30.00"),
        ),
    )


def rejected(command: CreateInvoice, at: datetime = T0, message: str | None = None) -> DeadLetter:
    code = command.document.lines[0].tax_code
    text = message or (
        f"Tax type '{code}' is not active. The tax rate '20% (VAT on Income)' has a status "
        "of DELETED and cannot be used."
    )
    return dead_letters.for_command(
        command,
        reason_code=Reason.LEDGER_REJECTED,
        reason=text,
        attempts=1,
        at=at,
        error=Rejected(text, status=400, messages=(text,)),
    )


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
