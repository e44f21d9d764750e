"""Document lines and ledger rounding: amounts exactly as the ledger will compute them.

Every ledger is described by one `RoundingProfile` in `LEDGER_ROUNDING`. All three round
tax per line today (Xero documents it; QuickBooks Online and Moloni are treated the same
until their sandboxes prove otherwise — change it here and only here):

* line_amount = round(quantity × unit − discount, minor units)
* exclusive: tax = round(line_amount × rate, minor units), line total = line_amount + tax
* inclusive: tax = round(line_amount − line_amount / (1 + rate), minor units), line total = line_amount

"Minor units" is the document currency's ISO 4217 exponent (`schemas.money.quantum`: 0.01 for
GBP, 1 for JPY, 0.001 for KWD); every function takes it as `unit`, default the cent.
Rounding is half up (away from zero for negative lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Literal

from accounting.tax import AmountType
from schemas.commands import DocumentLine
from schemas.money import CENT, round_to
from schemas.tenant import TaxCode

RoundingProfile = Literal["per_line"]
LEDGER_ROUNDING: dict[str, RoundingProfile] = {
    "xero": "per_line",
    "quickbooks": "per_line",
    "moloni": "per_line",
}
ZERO = Decimal("0.00")


def to_cents(value: Decimal, unit: Decimal = CENT) -> Decimal:
    """Round to the currency's minor unit (the cent by default), never producing a negative zero."""
    return round_to(value, unit) + unit * 0


def line_tax(
    line_amount: Decimal,
    rate: Decimal,
    kind: AmountType,
    profile: RoundingProfile = "per_line",
    unit: Decimal = CENT,
) -> Decimal:
    """Tax on one line as the ledger computes it (`rate` in percent)."""
    assert profile == "per_line"
    r = rate / 100
    if kind == "inclusive":
        return to_cents(line_amount - line_amount / (1 + r), unit)
    return to_cents(line_amount * r, unit)


def gross(line_amount: Decimal, tax: Decimal, kind: AmountType) -> Decimal:
    """What a line adds to the document total."""
    return line_amount + tax if kind == "exclusive" else line_amount


def make_line(
    *,
    line_ref: str,
    description: str,
    quantity: Decimal,
    unit_amount: Decimal,
    account_code: str,
    tax: TaxCode,
    kind: AmountType,
    discount: Decimal = ZERO,
    item_code: str | None = None,
    unit: Decimal = CENT,
) -> DocumentLine:
    """One document line with its ledger line amount and tax."""
    line_amount = to_cents(quantity * unit_amount - discount, unit)
    return DocumentLine(
        line_ref=line_ref,
        item_code=item_code,
        description=description,
        quantity=quantity,
        unit_amount=unit_amount,
        discount_amount=discount,
        account_code=account_code,
        tax_code=tax.code,
        line_amount=line_amount,
        tax_amount=line_tax(line_amount, tax.rate, kind, unit=unit),
    )


def line_gross(line: DocumentLine, kind: AmountType) -> Decimal:
    return gross(line.line_amount, line.tax_amount, kind)


def totals(lines: Iterable[DocumentLine], kind: AmountType) -> tuple[Decimal, Decimal, Decimal]:
    """(subtotal, total_tax, total) of a document; subtotal is always net of tax."""
    lines = list(lines)
    amount = sum((line.line_amount for line in lines), ZERO)
    tax = sum((line.tax_amount for line in lines), ZERO)
    if kind == "exclusive":
        return amount, tax, amount + tax
    return amount - tax, tax, amount


def amount_for_gross(target: Decimal, tax: TaxCode, kind: AmountType, unit: Decimal = CENT) -> Decimal:
    """The line amount whose ledger total comes closest to `target` (exact whenever possible)."""
    if kind == "inclusive" or tax.rate == 0:
        return to_cents(target, unit)
    first = to_cents(target / (1 + tax.rate / 100), unit)
    candidates = [first, first - unit, first + unit]
    return min(candidates, key=lambda a: abs(a + line_tax(a, tax.rate, kind, unit=unit) - target))


def gross_line(
    *,
    line_ref: str,
    description: str,
    target: Decimal,
    account_code: str,
    tax: TaxCode,
    kind: AmountType,
    unit: Decimal = CENT,
) -> DocumentLine:
    """A quantity-1 line adding (about) `target` to the document total; see `amount_for_gross`."""
    return make_line(
        line_ref=line_ref,
        description=description,
        quantity=Decimal(1),
        unit_amount=amount_for_gross(target, tax, kind, unit),
        account_code=account_code,
        tax=tax,
        kind=kind,
        unit=unit,
    )


def allocate(total: Decimal, weights: Sequence[Decimal], unit: Decimal = CENT) -> list[Decimal]:
    """Split `total` (in whole `unit`s) pro rata to `weights` by largest remainder: the parts sum exactly.

    Zero weights everywhere split evenly; ties in remainders go to the earlier weight.
    """
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [Decimal(1)] * len(weights)
    whole = sum(weights)
    units = int((total / unit).to_integral_value())
    exact = [Decimal(units) * w / whole for w in weights]
    floors = [int(e.to_integral_value(rounding="ROUND_FLOOR")) for e in exact]
    left = units - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [Decimal(f) * unit + unit * 0 for f in floors]
