"""Money, quantities and currency codes: `Decimal` in, decimal strings out, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

CENT = Decimal("0.01")


def _no_float(value: Any) -> Any:
    """Reject JSON floats: money travels as decimal strings (or integers)."""
    if isinstance(value, float):
        raise ValueError('must be a decimal string such as "19.99", not a float')
    return value


def _as_str(value: Decimal) -> str:
    return format(value, "f")


_decimal = [BeforeValidator(_no_float), PlainSerializer(_as_str, return_type=str, when_used="json")]


def _published(pattern: str, description: str) -> WithJsonSchema:
    """The JSON Schema we publish: a decimal string (the validators also take JSON integers)."""
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": description})


Money = Annotated[
    Decimal,
    *_decimal,
    Field(max_digits=18, decimal_places=4),
    _published(r"^-?[0-9]{1,14}(\.[0-9]{1,4})?$", "decimal string, at most 4 decimal places"),
]
"""An amount in a document's currency, at most 4 decimal places."""

NonNegativeMoney = Annotated[
    Decimal,
    *_decimal,
    Field(ge=0, max_digits=18, decimal_places=4),
    _published(r"^[0-9]{1,14}(\.[0-9]{1,4})?$", "non-negative decimal string, at most 4 decimal places"),
]

Quantity = Annotated[
    Decimal,
    *_decimal,
    Field(gt=0, max_digits=14, decimal_places=4),
    _published(r"^[0-9]{1,10}(\.[0-9]{1,4})?$", "positive decimal string, at most 4 decimal places"),
]
"""A positive line quantity (fractions allowed: 0.333 kg)."""

Rate = Annotated[
    Decimal,
    *_decimal,
    Field(ge=0, le=100, max_digits=7, decimal_places=4),
    _published(r"^(100(\.0{1,4})?|[0-9]{1,2}(\.[0-9]{1,4})?)$", "percent as a decimal string, 0 to 100"),
]
"""A tax rate in percent: 20 means 20 %."""

ExchangeRate = Annotated[
    Decimal,
    *_decimal,
    Field(gt=0, max_digits=18, decimal_places=10),
    _published(r"^[0-9]{1,8}(\.[0-9]{1,10})?$", "positive decimal string, at most 10 decimal places"),
]

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code")]


def cents(value: Decimal) -> Decimal:
    """Round half up to the cent, as the ledgers do."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


MINOR_UNITS: dict[str, int] = {
    # ISO 4217 currencies without minor units.
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(),
        0,
    ),
    # ISO 4217 currencies with three decimals.
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}
"""ISO 4217 exponents that are not 2 (the default): `CLF`/`UYW` (4) are units of account, not sold in."""


def minor_units(currency: str) -> int:
    """How many decimals the currency has (ISO 4217): JPY 0, GBP 2, KWD 3; unknown codes 2."""
    return MINOR_UNITS.get(currency, 2)


def quantum(currency: str) -> Decimal:
    """The currency's smallest unit: Decimal('1') for JPY, Decimal('0.01') for GBP."""
    return Decimal(1).scaleb(-minor_units(currency))


def round_to(value: Decimal, unit: Decimal) -> Decimal:
    """Round half up to `unit` (a currency's `quantum`), as the ledgers do."""
    return value.quantize(unit, rounding=ROUND_HALF_UP)


def check_minor_units(currency: str, amounts: dict[str, Decimal | None]) -> None:
    """Raise ValueError naming every amount with more decimals than `currency` allows."""
    places = minor_units(currency)
    bad = [
        f"{name} {value} has more decimals than {currency} allows ({places})"
        for name, value in amounts.items()
        if value is not None and value != value.quantize(quantum(currency), rounding=ROUND_HALF_UP)
    ]
    if bad:
        raise ValueError("; ".join(bad))
