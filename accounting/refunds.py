"""Refunds after posting → credit notes that mirror what was invoiced.

Item lines are credited quantity by quantity from the invoices that carried them (oldest
first), at the invoiced unit amount, tax code and a pro-rata share of the invoiced discount;
shipping is credited on the invoice that carried it with that line's account and tax code;
`amount_only` (tax included) goes to `accounts.revenue` with the invoice's main (destination)
tax code, on the invoice with the most room left. A credit that completes an invoice (every
item and shipping line fully credited) also credits what is left of it (rounding lines,
discount-line cents), so a full refund nets the invoice to zero.

Nothing is clamped: a credit beyond what was invoiced raises `RuleViolation(over_credit)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from accounting.documents import LedgerContext, rounding_line
from accounting.lines import ZERO, gross_line, line_gross, make_line, to_cents, totals
from accounting.outcome import RuleViolation
from accounting.state import InvoicedLine, InvoiceRecord, LedgerState
from schemas.commands import DocumentLine
from schemas.dead_letter import Reason
from schemas.tenant import TaxCode


@dataclass
class CreditPlan:
    """The credit-note lines against one invoice."""

    invoice: InvoiceRecord
    lines: list[DocumentLine]


def _tax(line: InvoicedLine) -> TaxCode:
    return TaxCode(code=line.line.tax_code, rate=line.tax_rate)


def _credit_item(ctx: LedgerContext, inv: InvoicedLine, quantity: Decimal) -> DocumentLine:
    remaining = inv.line.quantity - inv.credited_quantity
    if quantity == remaining:
        discount = inv.line.discount_amount - inv.credited_discount
    else:
        discount = to_cents(inv.line.discount_amount * quantity / inv.line.quantity, ctx.unit)
    line = make_line(
        line_ref=inv.line.line_ref,
        item_code=inv.line.item_code,
        description=inv.line.description,
        quantity=quantity,
        unit_amount=inv.line.unit_amount,
        discount=discount,
        account_code=inv.line.account_code,
        tax=_tax(inv),
        kind=ctx.kind,
        unit=ctx.unit,
    )
    inv.credited_quantity += quantity
    inv.credited_discount += discount
    inv.credited_amount += line.line_amount
    return line


def _discount_shares(
    ctx: LedgerContext, invoice: InvoiceRecord, credited: dict[str, Decimal]
) -> list[DocumentLine]:
    """Line-mode discounts: credited pro rata to the items credited under their tax code."""
    out = []
    for inv in invoice.lines:
        if inv.role != "discount" or not credited.get(inv.line.tax_code):
            continue
        items = [i for i in invoice.lines if i.role == "item" and i.line.tax_code == inv.line.tax_code]
        base = sum((i.line.line_amount for i in items), ZERO)
        if not base:
            continue
        share = to_cents(inv.line.line_amount * credited[inv.line.tax_code] / base, ctx.unit)
        line = make_line(
            line_ref=inv.line.line_ref,
            description=inv.line.description,
            quantity=Decimal(1),
            unit_amount=share,
            account_code=inv.line.account_code,
            tax=_tax(inv),
            kind=ctx.kind,
            unit=ctx.unit,
        )
        inv.credited_amount += line.line_amount
        out.append(line)
    return out


def _complete(invoice: InvoiceRecord) -> bool:
    return all(
        (i.credited_quantity >= i.line.quantity)
        if i.role == "item"
        else (i.credited_amount >= i.line.line_amount)
        for i in invoice.lines
        if i.role in ("item", "shipping")
    )


def plan_credits(
    ctx: LedgerContext,
    ledger: LedgerState,
    lines: Mapping[str, Decimal],
    shipping: Decimal,
    amount_only: Decimal,
) -> list[CreditPlan]:
    """Credit-note lines per invoice for quantities, shipping and an amount already invoiced.

    Mutates the invoice records (credited quantities and amounts); the engine works on a copy.
    """
    invoices = [i for i in ledger.invoices]
    plans: dict[str, CreditPlan] = {}
    credited_by_tax: dict[str, dict[str, Decimal]] = {}

    def plan(invoice: InvoiceRecord) -> CreditPlan:
        return plans.setdefault(invoice.source_id, CreditPlan(invoice, []))

    for line_id, quantity in lines.items():
        left = quantity
        for invoice in invoices:
            for inv in invoice.lines:
                if left <= 0 or inv.role != "item" or inv.line.line_ref != line_id:
                    continue
                take = min(left, inv.line.quantity - inv.credited_quantity)
                if take <= 0:
                    continue
                credit = _credit_item(ctx, inv, take)
                plan(invoice).lines.append(credit)
                by_tax = credited_by_tax.setdefault(invoice.source_id, {})
                by_tax[credit.tax_code] = by_tax.get(credit.tax_code, ZERO) + credit.line_amount
                left -= take
        if left > 0:
            raise RuleViolation(
                Reason.OVER_CREDIT,
                f"refund of {quantity} × line {line_id} exceeds what is invoiced and not credited by {left}",
            )
    for source_id, by_tax in credited_by_tax.items():
        plans[source_id].lines.extend(_discount_shares(ctx, plans[source_id].invoice, by_tax))
    if shipping:
        _credit_shipping(ctx, invoices, shipping, plan)
    if amount_only:
        _credit_amount(ctx, invoices, amount_only, plans, plan)
    ordered = [plans[i.source_id] for i in invoices if i.source_id in plans]
    for p in ordered:
        if _complete(p.invoice):
            rest = p.invoice.total - p.invoice.credited - totals(p.lines, ctx.kind)[2]
            if rest:
                p.lines.append(rounding_line(ctx, rest))
        total = totals(p.lines, ctx.kind)[2]
        if p.invoice.credited + total > p.invoice.total:
            raise RuleViolation(
                Reason.OVER_CREDIT,
                f"credit of {total} on {p.invoice.source_id} would bring the credited total to "
                f"{p.invoice.credited + total}, above the invoiced {p.invoice.total}",
            )
    return ordered


def _credit_shipping(ctx: LedgerContext, invoices: list[InvoiceRecord], amount: Decimal, plan) -> None:
    for invoice in invoices:
        shipping = [i for i in invoice.lines if i.role == "shipping"]
        if not shipping:
            continue
        room = sum((i.line.line_amount - i.credited_amount for i in shipping), ZERO)
        if amount > room:
            raise RuleViolation(
                Reason.OVER_CREDIT,
                f"shipping refund {amount} exceeds the {room} of shipping invoiced and not credited",
            )
        first = shipping[0]
        plan(invoice).lines.append(
            make_line(
                line_ref=first.line.line_ref,
                description=first.line.description,
                quantity=Decimal(1),
                unit_amount=amount,
                account_code=first.line.account_code,
                tax=_tax(first),
                kind=ctx.kind,
                unit=ctx.unit,
            )
        )
        left = amount
        for i in shipping:
            take = min(left, i.line.line_amount - i.credited_amount)
            i.credited_amount += take
            left -= take
        return
    raise RuleViolation(Reason.OVER_CREDIT, f"shipping refund {amount} but no shipping was invoiced")


def _credit_amount(ctx: LedgerContext, invoices: list[InvoiceRecord], amount: Decimal, plans, plan) -> None:
    def room(invoice: InvoiceRecord) -> Decimal:
        pending = totals(plans[invoice.source_id].lines, ctx.kind)[2] if invoice.source_id in plans else ZERO
        return invoice.total - invoice.credited - pending

    best = max(reversed(invoices), key=room)
    if room(best) < amount:
        raise RuleViolation(
            Reason.OVER_CREDIT,
            f"refund amount {amount} exceeds the {room(best)} left to credit on {best.source_id}",
        )
    tax = TaxCode(code=best.main_tax_code, rate=best.main_tax_rate)
    line = gross_line(
        line_ref="refund",
        description="Refund",
        target=amount,
        account_code=ctx.mapping.accounts.revenue,
        tax=tax,
        kind=ctx.kind,
        unit=ctx.unit,
    )
    plan(best).lines.append(line)
    if line_gross(line, ctx.kind) != amount:
        plan(best).lines.append(rounding_line(ctx, amount - line_gross(line, ctx.kind)))
