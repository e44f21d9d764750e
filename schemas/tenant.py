"""Tenant configuration: tax rules, account mappings and posting policy, per ledger.

Finance writes it as YAML (`ledgerstream tenants apply`), the database keeps its
versions, and agents read it from the compacted `tenant-config` topic.
"""

from __future__ import annotations

from string import Formatter
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from schemas.money import Country, Currency, Rate

Ledger = Literal["xero", "quickbooks", "moloni"]
Code = Annotated[str, Field(min_length=1, max_length=64)]

EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaxCode(Model):
    """A ledger tax code and the rate it carries in that ledger (percent)."""

    code: Code
    rate: Rate


class TaxRule(Model):
    """Shipping region → tax code. More specific rules (postcode > region > country) win."""

    country: Country
    region: str | None = None
    postcode_prefix: str | None = None
    tax: TaxCode

    @property
    def specificity(self) -> int:
        return (2 if self.postcode_prefix else 0) + (1 if self.region else 0)


class TaxMapping(Model):
    rules: tuple[TaxRule, ...] = ()
    fallback: TaxCode = Field(description="required: used when no rule matches")
    exempt: TaxCode | None = Field(None, description="for customers flagged tax_exempt")
    reverse_charge: TaxCode | None = Field(
        None, description="EU B2B with a VAT id from another EU country than home_country"
    )
    home_country: Country | None = Field(None, description="the seller's VAT country")
    no_tax: TaxCode | None = Field(None, description="for lines with no tax (gift cards sold)")

    @model_validator(mode="after")
    def _reverse_charge_needs_home(self) -> TaxMapping:
        if self.reverse_charge and not self.home_country:
            raise ValueError("reverse_charge needs home_country")
        return self


class PaymentAccount(Model):
    gateway: str
    currency: Currency | None = Field(None, description="empty: any currency")
    account: Code


class AccountMapping(Model):
    revenue: Code
    revenue_by_product_type: dict[str, Code] = {}
    revenue_by_sku_prefix: dict[str, Code] = {}
    shipping: Code
    discounts: Code | None = Field(None, description="needed when discount_mode is 'line'")
    gift_card_liability: Code
    payments: tuple[PaymentAccount, ...] = ()
    default_payment: Code | None = Field(None, description="clearing account for other gateways")
    fees: Code | None = None
    rounding: Code


ACCOUNT_SLOTS = (
    "revenue",
    "shipping",
    "discounts",
    "gift_card_liability",
    "default_payment",
    "fees",
    "rounding",
)
"""The single-code fields of `AccountMapping` (the per-SKU, per-type and per-gateway maps aside)."""


class LedgerMapping(Model):
    """What one ledger connection needs: its tax codes and its accounts."""

    tax: TaxMapping
    accounts: AccountMapping
    organisation_id: str | None = Field(None, description="ledger-side tenant / company / id")


TEMPLATE_FIELDS = ("order_number", "order_id", "channel")
"""The fields `reference_template` and `invoice_number_template` may use (accounting.documents)."""


def check_template(template: str) -> str:
    """A `str.format` template using only `TEMPLATE_FIELDS`, by name; ValueError naming the rest."""
    try:
        names = [name for _, name, _, _ in Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"not a valid template: {exc}") from exc
    known = ", ".join(TEMPLATE_FIELDS)
    for name in names:
        if name not in TEMPLATE_FIELDS:
            shown = f"{{{name}}}" if name else "{} (a positional field)"
            raise ValueError(f"unknown field {shown}: the template may use {known}")
    try:
        template.format(**dict.fromkeys(TEMPLATE_FIELDS, "x"))
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"not a valid template: {exc}") from exc
    return template


def check_timezone(name: str) -> str:
    """An IANA zone this Python can load (tzdata), e.g. Europe/Lisbon; ValueError otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Europe/London") from exc
    return name


class PostingPolicy(Model):
    trigger: Literal["placed", "paid", "fulfilled"] = "fulfilled"
    status: Literal["draft", "authorised"] = "authorised"
    document: Literal["invoice", "sales_receipt"] = Field(
        "invoice", description="sales_receipt: QuickBooks cash-style sales"
    )
    mode: Literal["per_order", "daily_summary"] = "per_order"
    discount_mode: Literal["allocate", "line"] = "allocate"
    contact_matching: tuple[Literal["email", "name_postcode"], ...] = ("email", "name_postcode")
    summary_contact_name: str = "Online sales"
    reference_template: str = Field(
        "Order {order_number}", description="fields: order_number, order_id, channel"
    )
    invoice_number_template: str | None = Field(None, description="None: the ledger numbers it")
    due_days: int = Field(0, ge=0, le=365)
    timezone: str = Field("UTC", description="IANA zone for document dates and daily summaries")

    @field_validator("reference_template", "invoice_number_template")
    @classmethod
    def _known_fields_only(cls, template: str | None) -> str | None:
        return None if template is None else check_template(template)

    @field_validator("timezone")
    @classmethod
    def _loadable_zone(cls, name: str) -> str:
        return check_timezone(name)


class TenantConfig(Model):
    tenant_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: str
    base_currency: Currency
    finance_email: EmailStr | None = None
    policy: PostingPolicy = PostingPolicy()
    ledgers: dict[Ledger, LedgerMapping] = Field(min_length=1)
    version: int = Field(0, ge=0, description="set by the store on apply")
