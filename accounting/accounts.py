"""Account selection: revenue per line and the bank / clearing account per payment gateway."""

from __future__ import annotations

from schemas.events import OrderLine
from schemas.tenant import AccountMapping


def revenue_account(line: OrderLine, accounts: AccountMapping) -> str:
    """The account a sold line is booked to.

    Precedence: gift card sold → `gift_card_liability`; then the longest matching
    `revenue_by_sku_prefix` key; then `revenue_by_product_type`; then `revenue`.
    """
    if line.gift_card:
        return accounts.gift_card_liability
    if line.sku:
        prefixes = [p for p in accounts.revenue_by_sku_prefix if line.sku.startswith(p)]
        if prefixes:
            return accounts.revenue_by_sku_prefix[max(prefixes, key=lambda p: (len(p), p))]
    if line.product_type and line.product_type in accounts.revenue_by_product_type:
        return accounts.revenue_by_product_type[line.product_type]
    return accounts.revenue


def payment_account(gateway: str, currency: str, accounts: AccountMapping) -> str | None:
    """Exact gateway + currency > gateway with any currency > `default_payment` > None."""
    for entry in accounts.payments:
        if entry.gateway == gateway and entry.currency == currency:
            return entry.account
    for entry in accounts.payments:
        if entry.gateway == gateway and entry.currency is None:
            return entry.account
    return accounts.default_payment
