"""Document builders: invoice / sales receipt lines for an order (or a shipment of it), credit
notes, payments, contacts, and the command envelopes around them.

Source ids (the binding key each ledger document is stored under):

* `order:{order_id}` — the whole order, trigger placed / paid
* `order:{order_id}:fulfillment:{fulfillment_id}` — one shipment, trigger fulfilled
* `refund:{order_id}:{refund_id}` (`…:{n}` for the n-th invoice one refund touches, n ≥ 2)
* `payment:{order_id}:{payment_id}` / `giftcard:{order_id}:{gift_card_id}` (`…:{n}` for the n-th part)

Every command is created once (revision 0): amendments are credit notes, not edits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from accounting.accounts import revenue_account
from accounting.lines import ZERO, allocate, gross_line, line_gross, make_line, to_cents, totals
from accounting.outcome import RuleViolation
from accounting.state import InvoicedLine
from accounting.tax import AmountType, amount_type, no_tax, rounding_tax, sale_tax
from schemas.commands import (
    ContactDetails,
    CreateCreditNote,
    CreateInvoice,
    CreatePayment,
    CreateSalesReceipt,
    Document,
    DocumentLine,
    idempotency_key,
)
from schemas.dead_letter import Reason
from schemas.events import Order
from schemas.money import quantum, round_to
from schemas.tenant import LedgerMapping, PostingPolicy, TaxCode

ROUNDING_TOLERANCE_PER_LINE = 2
"""How far order.total may differ from the ledger's sum, per document line, before we refuse it:
this many of the currency's minor units (0.02 GBP, 2 JPY, 0.002 KWD)."""


@dataclass(frozen=True)
class LedgerContext:
    """What the rules need to know about one ledger for one order."""

    tenant_id: str
    ledger: str
    mapping: LedgerMapping
    policy: PostingPolicy
    order: Order
    kind: AmountType
    main_tax: TaxCode

    @staticmethod
    def build(tenant_id: str, ledger: str, mapping: LedgerMapping, policy: PostingPolicy, order: Order):
        return LedgerContext(
            tenant_id, ledger, mapping, policy, order, amount_type(order), sale_tax(order, mapping.tax)
        )

    @property
    def unit(self) -> Decimal:
        """The order currency's minor unit: documents are rounded to it."""
        return quantum(self.order.currency)

    def key(self, kind: str, source_id: str) -> str:
        return idempotency_key(self.tenant_id, self.ledger, kind, source_id, 0)


def local_date(moment: datetime, timezone: str) -> date:
    """The calendar day of `moment` in the tenant's zone: no wall clock involved."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def contact_for(order: Order) -> ContactDetails:
    """Customer + billing address (else shipping); name falls back to company, email, 'Online customer'."""
    customer = order.customer
    address = order.billing_address or order.shipping_address
    return ContactDetails(
        name=customer.name or customer.company or customer.email or "Online customer",
        email=customer.email,
        phone=customer.phone,
        company=customer.company,
        vat_id=customer.vat_id,
        address_line1=address.line1 if address else None,
        city=address.city if address else None,
        region=address.region if address else None,
        postcode=address.postcode if address else None,
        country=address.country if address else None,
    )


def _fields(order: Order, order_id: str) -> dict[str, str]:
    return {"order_number": order.order_number, "order_id": order_id, "channel": order.channel or ""}


def reference_for(order: Order, order_id: str, policy: PostingPolicy) -> str:
    return policy.reference_template.format(**_fields(order, order_id))


def number_for(order: Order, order_id: str, policy: PostingPolicy, sequence: int) -> str | None:
    """policy.invoice_number_template, suffixed -2, -3 … for the later invoices of one order."""
    if policy.invoice_number_template is None:
        return None
    number = policy.invoice_number_template.format(**_fields(order, order_id))
    return number if sequence <= 1 else f"{number}-{sequence}"


def order_discount_allocation(order: Order) -> dict[str, Decimal]:
    """Order-level discounts spread over the lines pro rata to their net value (largest remainder).

    Gift cards sold take no share unless the order holds nothing else; shipping takes none.
    """
    total = sum((d.amount for d in order.discounts), ZERO)
    eligible = [line for line in order.lines if not line.gift_card] or list(order.lines)
    weights = [max(line.quantity * line.unit_price - line.discount, ZERO) for line in eligible]
    shares = allocate(total, weights, quantum(order.currency)) if total else [ZERO] * len(eligible)
    result = {line.line_id: ZERO for line in order.lines}
    result.update({line.line_id: share for line, share in zip(eligible, shares, strict=True)})
    return result


def _upto(total: Decimal, quantity: Decimal, ordered: Decimal, unit: Decimal) -> Decimal:
    """The part of a whole-line amount that belongs to the first `quantity` units (exact at the end)."""
    if quantity >= ordered:
        return total
    return to_cents(total * quantity / ordered, unit)


Role = str
Lines = list[tuple[Role, DocumentLine, Decimal]]
"""(role, line, tax rate): the rate travels with the line so credit notes can recompute tax."""


def sale_lines(
    ctx: LedgerContext,
    before: Mapping[str, Decimal],
    after: Mapping[str, Decimal],
    *,
    shipping: bool,
    shipping_reduction: Decimal = ZERO,
    adjustment: Decimal = ZERO,
) -> Lines:
    """The lines invoicing quantities `before` → `after` (cumulative per line id).

    Discounts (line and allocated order discounts) follow the quantity cumulatively, so the
    shipments of one line add up to the whole line. `shipping` adds the shipping lines (less
    `shipping_reduction` refunded before invoicing); `adjustment` is an amount refunded before
    anything was invoiced, booked as one negative line to revenue with the order's tax code.
    """
    order, accounts, tax_map = ctx.order, ctx.mapping.accounts, ctx.mapping.tax
    allocation = order_discount_allocation(order)
    allocate_mode = ctx.policy.discount_mode == "allocate"
    out: Lines = []
    discount_by_tax: dict[str, tuple[TaxCode, Decimal]] = {}
    for line in order.lines:
        f0, f1 = before.get(line.line_id, ZERO), after.get(line.line_id, ZERO)
        if f1 <= f0:
            continue
        tax = no_tax(tax_map, f"gift card line {line.line_id}") if line.gift_card else ctx.main_tax
        whole = line.discount + (allocation[line.line_id] if allocate_mode else ZERO)
        discount = _upto(whole, f1, line.quantity, ctx.unit) - _upto(whole, f0, line.quantity, ctx.unit)
        out.append(
            (
                "item",
                make_line(
                    line_ref=line.line_id,
                    item_code=line.sku,
                    description=line.name,
                    quantity=f1 - f0,
                    unit_amount=line.unit_price,
                    discount=discount,
                    account_code=revenue_account(line, accounts),
                    tax=tax,
                    kind=ctx.kind,
                    unit=ctx.unit,
                ),
                tax.rate,
            )
        )
        if not allocate_mode:
            share = _upto(allocation[line.line_id], f1, line.quantity, ctx.unit)
            share -= _upto(allocation[line.line_id], f0, line.quantity, ctx.unit)
            if share:
                code, sofar = discount_by_tax.get(tax.code, (tax, ZERO))
                discount_by_tax[tax.code] = (code, sofar + share)
    for code, amount in discount_by_tax.values():
        if accounts.discounts is None:
            raise RuleViolation(
                Reason.ACCOUNTING_RULE, "discount_mode is 'line' but accounts.discounts is not mapped"
            )
        out.append(
            (
                "discount",
                make_line(
                    line_ref=f"discount:{code.code}",
                    description="Order discount",
                    quantity=Decimal(1),
                    unit_amount=-amount,
                    account_code=accounts.discounts,
                    tax=code,
                    kind=ctx.kind,
                    unit=ctx.unit,
                ),
                code.rate,
            )
        )
    if shipping:
        left = shipping_reduction
        for ship in order.shipping_lines:
            cut = min(left, ship.price - ship.discount)
            left -= cut
            if ship.price - ship.discount - cut <= 0:
                continue
            out.append(
                (
                    "shipping",
                    make_line(
                        line_ref=f"shipping:{ship.line_id}",
                        description=ship.title,
                        quantity=Decimal(1),
                        unit_amount=ship.price,
                        discount=ship.discount + cut,
                        account_code=accounts.shipping,
                        tax=ctx.main_tax,
                        kind=ctx.kind,
                        unit=ctx.unit,
                    ),
                    ctx.main_tax.rate,
                )
            )
    if adjustment:
        out.append(
            (
                "adjustment",
                gross_line(
                    line_ref="adjustment",
                    description="Refunded before invoicing",
                    target=-adjustment,
                    account_code=accounts.revenue,
                    tax=ctx.main_tax,
                    kind=ctx.kind,
                    unit=ctx.unit,
                ),
                ctx.main_tax.rate,
            )
        )
    return out


def lines_total(lines: Lines, kind: AmountType) -> Decimal:
    return totals((line for _, line, _ in lines), kind)[2]


def rounding_line(ctx: LedgerContext, difference: Decimal, description: str = "Rounding") -> DocumentLine:
    """A line to accounts.rounding adding exactly `difference`, with tax.no_tax (else tax.fallback).

    With the fallback code the line is grossed up; if no line amount gives the exact
    difference under that rate the event is dead-lettered (map tax.no_tax to avoid it).
    """
    tax = rounding_tax(ctx.mapping.tax)
    line = gross_line(
        line_ref="rounding",
        description=description,
        target=difference,
        account_code=ctx.mapping.accounts.rounding,
        tax=tax,
        kind=ctx.kind,
        unit=ctx.unit,
    )
    if line_gross(line, ctx.kind) != difference:
        raise RuleViolation(
            Reason.ACCOUNTING_RULE,
            f"cannot round by {difference} with tax code {tax.code} at {tax.rate}%: map tax.no_tax",
        )
    return line


def check_tolerance(ctx: LedgerContext, difference: Decimal, line_count: int) -> None:
    """Refuse (dead letter) a difference between order.total and our lines bigger than rounding."""
    limit = ROUNDING_TOLERANCE_PER_LINE * ctx.unit * (line_count + 1)
    if abs(difference) > limit:
        raise RuleViolation(
            Reason.ACCOUNTING_RULE,
            f"order total {ctx.order.total} differs from the {ctx.ledger} lines by {difference} "
            f"(more than rounding, limit {limit})",
        )


def document(
    ctx: LedgerContext, lines: list[DocumentLine], *, on: date, reference: str, number: str | None
) -> Document:
    subtotal, tax, total = (round_to(amount, ctx.unit) for amount in totals(lines, ctx.kind))
    return Document(
        date=on,
        currency=ctx.order.currency,
        exchange_rate=ctx.order.exchange_rate,
        line_amount_type=ctx.kind,
        contact=contact_for(ctx.order),
        reference=reference,
        number=number,
        lines=tuple(lines),
        subtotal=subtotal,
        total_tax=tax,
        total=total,
    )


def invoice_command(
    ctx: LedgerContext, doc: Document, *, source_id: str, order_id: str, event_id: str
) -> CreateInvoice:
    return CreateInvoice(
        idempotency_key=ctx.key("invoice.create", source_id),
        tenant_id=ctx.tenant_id,
        ledger=ctx.ledger,  # type: ignore[arg-type]
        source_type="order",
        source_id=source_id,
        order_id=order_id,
        event_id=event_id,
        status=ctx.policy.status,
        due_date=doc.date + timedelta(days=ctx.policy.due_days),
        document=doc,
    )


def sales_receipt_command(
    ctx: LedgerContext, doc: Document, *, source_id: str, order_id: str, event_id: str, deposit_account: str
) -> CreateSalesReceipt:
    return CreateSalesReceipt(
        idempotency_key=ctx.key("sales_receipt.create", source_id),
        tenant_id=ctx.tenant_id,
        ledger=ctx.ledger,  # type: ignore[arg-type]
        source_type="order",
        source_id=source_id,
        order_id=order_id,
        event_id=event_id,
        document=doc,
        deposit_account=deposit_account,
    )


def credit_note_command(
    ctx: LedgerContext,
    doc: Document,
    *,
    source_id: str,
    order_id: str,
    event_id: str,
    invoice_source_id: str,
    allocate: Decimal,
) -> CreateCreditNote:
    return CreateCreditNote(
        idempotency_key=ctx.key("credit_note.create", source_id),
        tenant_id=ctx.tenant_id,
        ledger=ctx.ledger,  # type: ignore[arg-type]
        source_type="refund",
        source_id=source_id,
        order_id=order_id,
        event_id=event_id,
        status=ctx.policy.status,
        document=doc,
        invoice_source_id=invoice_source_id,
        allocate=allocate,
    )


def payment_command(
    ctx: LedgerContext,
    *,
    source_id: str,
    order_id: str,
    event_id: str,
    invoice_source_id: str,
    on: date,
    amount: Decimal,
    account_code: str,
    reference: str,
    gateway: str | None,
    fee: Decimal | None,
    fee_account_code: str | None,
) -> CreatePayment:
    return CreatePayment(
        idempotency_key=ctx.key("payment.create", source_id),
        tenant_id=ctx.tenant_id,
        ledger=ctx.ledger,  # type: ignore[arg-type]
        source_type="payment",
        source_id=source_id,
        order_id=order_id,
        event_id=event_id,
        invoice_source_id=invoice_source_id,
        date=on,
        currency=ctx.order.currency,
        amount=amount,
        account_code=account_code,
        reference=reference,
        gateway=gateway,
        fee=fee,
        fee_account_code=fee_account_code,
    )


def record_lines(lines: Lines) -> list[InvoicedLine]:
    return [InvoicedLine(line=line, role=role, tax_rate=rate) for role, line, rate in lines]  # type: ignore[arg-type]


def rounding_tax_rate(ctx: LedgerContext) -> Decimal:
    return rounding_tax(ctx.mapping.tax).rate
