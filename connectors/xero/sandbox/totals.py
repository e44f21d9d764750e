"""Xero's line arithmetic: line amounts, per-line rounded tax, document totals."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def round2(value: Decimal) -> Decimal:
    """Round half away from zero to cents."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_amount(
    quantity: Decimal, unit: Decimal, discount_rate: Decimal | None, discount: Decimal | None
) -> Decimal:
    """Quantity × UnitAmount less a percentage or absolute discount, to cents."""
    gross = quantity * unit
    if discount_rate:
        gross = gross * (HUNDRED - discount_rate) / HUNDRED
    if discount:
        gross -= discount
    return round2(gross)


def line_tax(amount: Decimal, rate_percent: Decimal, amount_types: str) -> Decimal:
    """Tax on one line, rounded per line as Xero does."""
    if amount_types == "NoTax" or not rate_percent:
        return Decimal("0.00")
    rate = rate_percent / HUNDRED
    if amount_types == "Inclusive":
        return round2(amount - amount / (1 + rate))
    return round2(amount * rate)


@dataclass(frozen=True)
class Totals:
    """SubTotal (excluding tax), TotalTax and Total of a document."""

    sub_total: Decimal
    total_tax: Decimal
    total: Decimal


def document_totals(lines: list[tuple[Decimal, Decimal]], amount_types: str) -> Totals:
    """Totals from (LineAmount, TaxAmount) pairs; Inclusive line amounts contain the tax."""
    amounts = sum((a for a, _ in lines), Decimal("0.00"))
    tax = sum((t for _, t in lines), Decimal("0.00"))
    if amount_types == "Inclusive":
        return Totals(round2(amounts - tax), round2(tax), round2(amounts))
    return Totals(round2(amounts), round2(tax), round2(amounts + tax))
