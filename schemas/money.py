"""Money, quantities and currency codes: `Decimal` in, decimal strings out, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer

CENT = Decimal("0.01")


def _no_float(value: Any) -> Any:
    """Reject JSON floats: money travels as decimal strings (or integers)."""
    if isinstance(value, float):
        raise ValueError('must be a decimal string such as "19.99", not a float')
    return value


def _as_str(value: Decimal) -> str:
    return format(value, "f")


_decimal = [BeforeValidator(_no_float), PlainSerializer(_as_str, return_type=str, when_used="json")]

Money = Annotated[Decimal, *_decimal, Field(max_digits=18, decimal_places=4)]
"""An amount in a document's currency, at most 4 decimal places."""

NonNegativeMoney = Annotated[Decimal, *_decimal, Field(ge=0, max_digits=18, decimal_places=4)]

Quantity = Annotated[Decimal, *_decimal, Field(gt=0, max_digits=14, decimal_places=4)]
"""A positive line quantity (fractions allowed: 0.333 kg)."""

Rate = Annotated[Decimal, *_decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)]
"""A tax rate in percent: 20 means 20 %."""

ExchangeRate = Annotated[Decimal, *_decimal, Field(gt=0, max_digits=18, decimal_places=10)]

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code")]


def cents(value: Decimal) -> Decimal:
    """Round half up to the cent, as the ledgers do."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
