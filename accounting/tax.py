"""Tax-code selection: which of a ledger's tax codes a sale carries, and in which amount type.

Precedence, most decisive first:

1. `customer.tax_exempt` → `tax.exempt` (a dead letter if the tenant mapped none: we never guess tax).
2. EU reverse charge → `tax.reverse_charge`, when mapped, the customer's VAT id is plausible (an EU
   country prefix + 2–13 letters/digits, the big countries checked against their own format; see
   `vat_country`) for a country other than `tax.home_country`, and the goods go to an EU country
   other than `tax.home_country` (delivered at home, home VAT applies).
3. The most specific matching `tax.rules` entry for the destination (shipping address, else billing):
   postcode prefix > region > country; among postcode rules the longest prefix; ties → the first listed.
4. `tax.fallback`.
"""

from __future__ import annotations

import re
from typing import Literal

from accounting.outcome import RuleViolation
from schemas.dead_letter import Reason
from schemas.events import Address, Order
from schemas.tenant import EU_COUNTRIES, TaxCode, TaxMapping, TaxRule

AmountType = Literal["exclusive", "inclusive"]

_VAT_PREFIX_TO_COUNTRY = {"EL": "GR"}
"""VAT ids use EL for Greece; everything else is the ISO code."""

_VAT_ID = re.compile(r"^([A-Z]{2})([0-9A-Z+*]{2,13})$")
"""Any VAT id: a two-letter prefix and 2–13 letters or digits (VIES allows + and * for IE)."""

_VAT_NUMBER_BY_PREFIX = {
    "AT": r"U[0-9]{8}",
    "BE": r"[01][0-9]{9}",
    "DE": r"[0-9]{9}",
    "DK": r"[0-9]{8}",
    "EL": r"[0-9]{9}",
    "ES": r"[0-9A-Z][0-9]{7}[0-9A-Z]",
    "FI": r"[0-9]{8}",
    "FR": r"[0-9A-HJ-NP-Z]{2}[0-9]{9}",
    "IT": r"[0-9]{11}",
    "LU": r"[0-9]{8}",
    "NL": r"[0-9]{9}B[0-9]{2}",
    "PL": r"[0-9]{10}",
    "PT": r"[0-9]{9}",
    "SE": r"[0-9]{10}01",
}
"""The number part's format for the countries most orders come from (the EU's VIES formats)."""


def destination(order: Order) -> Address | None:
    """Where the goods go: the shipping address, else the billing address."""
    return order.shipping_address or order.billing_address


def vat_country(vat_id: str | None) -> str | None:
    """The ISO country of a plausible VAT id, else None (a bare prefix such as "DE" is not one).

    Spaces, dots and dashes are ignored; the id needs its country prefix and 2–13 letters or
    digits after it, and for the countries in `_VAT_NUMBER_BY_PREFIX` that country's format.
    The check digits are not verified (that is VIES's job).
    """
    if not vat_id:
        return None
    compact = re.sub(r"[\s.\-]", "", vat_id).upper()
    match = _VAT_ID.match(compact)
    if match is None:
        return None
    prefix, number = match.groups()
    pattern = _VAT_NUMBER_BY_PREFIX.get(prefix)
    if pattern is not None and re.fullmatch(pattern, number) is None:
        return None
    return _VAT_PREFIX_TO_COUNTRY.get(prefix, prefix)


def _normal_postcode(postcode: str | None) -> str:
    return (postcode or "").replace(" ", "").upper()


def _matches(rule: TaxRule, address: Address) -> bool:
    if rule.country != address.country:
        return False
    if rule.region and rule.region.upper() != (address.region or "").upper():
        return False
    return not (
        rule.postcode_prefix
        and not _normal_postcode(address.postcode).startswith(_normal_postcode(rule.postcode_prefix))
    )


def rule_for(address: Address | None, mapping: TaxMapping) -> TaxCode:
    """The most specific matching rule's code (postcode > region > country, longest prefix), else fallback."""
    if address is None:
        return mapping.fallback
    best: tuple[tuple[int, int], TaxRule] | None = None
    for rule in mapping.rules:
        if not _matches(rule, address):
            continue
        rank = (rule.specificity, len(_normal_postcode(rule.postcode_prefix)))
        if best is None or rank > best[0]:
            best = (rank, rule)
    return best[1].tax if best else mapping.fallback


def is_reverse_charge(order: Order, mapping: TaxMapping) -> bool:
    """EU B2B: a plausible VAT id from an EU country other than home, goods going to another EU country."""
    country = vat_country(order.customer.vat_id)
    dest = destination(order)
    return bool(
        mapping.reverse_charge
        and country in EU_COUNTRIES
        and country != mapping.home_country
        and dest is not None
        and dest.country in EU_COUNTRIES
        and dest.country != mapping.home_country
    )


def sale_tax(order: Order, mapping: TaxMapping) -> TaxCode:
    """The tax code for the order's goods and shipping in one ledger (see the module docstring)."""
    if order.customer.tax_exempt:
        if mapping.exempt is None:
            raise RuleViolation(
                Reason.ACCOUNTING_RULE, "customer is tax_exempt but tax.exempt is not mapped for this ledger"
            )
        return mapping.exempt
    if is_reverse_charge(order, mapping):
        assert mapping.reverse_charge is not None
        return mapping.reverse_charge
    return rule_for(destination(order), mapping)


def no_tax(mapping: TaxMapping, purpose: str) -> TaxCode:
    """`tax.no_tax`, required for gift cards sold (a liability must never carry VAT)."""
    if mapping.no_tax is None:
        raise RuleViolation(Reason.ACCOUNTING_RULE, f"{purpose} needs tax.no_tax, which is not mapped")
    return mapping.no_tax


def rounding_tax(mapping: TaxMapping) -> TaxCode:
    """Rounding lines: `tax.no_tax`, else `tax.fallback` (the line is then grossed up)."""
    return mapping.no_tax or mapping.fallback


def amount_type(order: Order) -> AmountType:
    """Line amounts are tax inclusive iff the shop's prices include tax."""
    return "inclusive" if order.prices_include_tax else "exclusive"
