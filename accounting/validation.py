"""Checking a tenant's ledger mapping against what the ledger says it has (pure)."""

from __future__ import annotations

from collections.abc import Iterator

from schemas.ledger import LedgerAccount, LedgerTaxRate
from schemas.tenant import LedgerMapping, TaxCode


def _tax_codes(mapping: LedgerMapping) -> Iterator[tuple[str, TaxCode]]:
    tax = mapping.tax
    for i, rule in enumerate(tax.rules):
        yield f"tax.rules[{i}].tax", rule.tax
    yield "tax.fallback", tax.fallback
    for name in ("exempt", "reverse_charge", "no_tax"):
        code = getattr(tax, name)
        if code is not None:
            yield f"tax.{name}", code


def _accounts(mapping: LedgerMapping) -> Iterator[tuple[str, str]]:
    accounts = mapping.accounts
    yield "accounts.revenue", accounts.revenue
    for key, code in accounts.revenue_by_product_type.items():
        yield f"accounts.revenue_by_product_type[{key}]", code
    for key, code in accounts.revenue_by_sku_prefix.items():
        yield f"accounts.revenue_by_sku_prefix[{key}]", code
    yield "accounts.shipping", accounts.shipping
    for name in ("discounts", "gift_card_liability", "default_payment", "fees", "rounding"):
        code = getattr(accounts, name)
        if code is not None:
            yield f"accounts.{name}", code
    for i, entry in enumerate(accounts.payments):
        yield f"accounts.payments[{i}].account", entry.account


def check_mapping(
    mapping: LedgerMapping,
    tax_rates: list[LedgerTaxRate],
    accounts: list[LedgerAccount],
    *,
    ledger: str | None = None,
) -> list[str]:
    """Problems with `mapping` in a ledger with these tax rates and accounts, each naming its field path.

    With `ledger`, paths start `ledgers.<ledger>.`; an empty list means the mapping is usable.
    """
    prefix = f"ledgers.{ledger}." if ledger else ""
    rates = {r.code: r for r in tax_rates}
    charts = {a.code: a for a in accounts}
    problems: list[str] = []
    for path, code in _tax_codes(mapping):
        rate = rates.get(code.code)
        where = f"{prefix}{path}.code"
        if rate is None or not rate.active:
            problems.append(f"{where}: {code.code} is not an active tax rate in this ledger")
        elif rate.rate != code.rate:
            problems.append(f"{where}: {code.code} rate {code.rate} differs from the ledger's {rate.rate}")
    for path, code in _accounts(mapping):
        account = charts.get(code)
        if account is None:
            problems.append(f"{prefix}{path}: {code} is not an account in this ledger")
        elif not account.active:
            problems.append(f"{prefix}{path}: account {code} is archived in this ledger")
    for i, entry in enumerate(mapping.accounts.payments):
        account = charts.get(entry.account)
        if account is not None and account.active and not account.accepts_payments:
            where = f"{prefix}accounts.payments[{i}].account"
            problems.append(f"{where}: {entry.account} does not accept payments")
    return problems
