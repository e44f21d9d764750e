"""Seed data and knobs for the Xero sandbox: clients, organisations, limits."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field


class ClientConfig(BaseModel):
    """An app registered with the sandbox identity server."""

    client_id: str
    client_secret: str
    name: str = "ledgerstream"
    redirect_uris: list[str] = Field(default_factory=list)
    custom_connection_org: str | None = None  # enables grant_type=client_credentials


class TaxRateSeed(BaseModel):
    """One tax rate (Xero `TaxRate`), rate in percent."""

    tax_type: str
    name: str
    rate: Decimal
    status: str = "ACTIVE"
    report_tax_type: str = "OUTPUT"


class AccountSeed(BaseModel):
    """One chart-of-accounts line (Xero `Account`)."""

    code: str
    name: str
    type: str
    tax_type: str = "NONE"
    status: str = "ACTIVE"
    enable_payments: bool = False
    account_class: str = "REVENUE"


class OrgConfig(BaseModel):
    """An organisation (tenant) with its currencies, tax rates and accounts."""

    tenant_id: str
    name: str
    base_currency: str
    currencies: list[str] = Field(default_factory=list)
    tax_rates: list[TaxRateSeed] = Field(default_factory=list)
    accounts: list[AccountSeed] = Field(default_factory=list)


class LimitsConfig(BaseModel):
    """Xero rate limits (per tenant per app, and per app)."""

    minute: int = 60
    day: int = 5000
    concurrent: int = 5
    app_minute: int = 10000


class SandboxConfig(BaseModel):
    """Everything the sandbox is seeded with."""

    clients: list[ClientConfig]
    orgs: list[OrgConfig]
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    access_token_seconds: int = 1800
    refresh_token_days: int = 60
    refresh_grace_seconds: int = 1800
    auth_code_seconds: int = 300
    idempotency_seconds: int = 360
    max_body_bytes: int = 3_500_000
    page_size: int = 100
    enforce_scopes: bool = True
    admin_enabled: bool = True
    request_log_size: int = 2000


def _uk_tax_rates() -> list[TaxRateSeed]:
    return [
        TaxRateSeed(tax_type="OUTPUT2", name="20% (VAT on Income)", rate=Decimal(20)),
        TaxRateSeed(tax_type="RROUTPUT", name="5% (VAT on Income)", rate=Decimal(5)),
        TaxRateSeed(tax_type="ZERORATEDOUTPUT", name="Zero Rated Income", rate=Decimal(0)),
        TaxRateSeed(
            tax_type="ECZROUTPUTSERVICES",
            name="Zero Rated EC Services",
            rate=Decimal(0),
            report_tax_type="ECOUTPUTSERVICES",
        ),
        TaxRateSeed(
            tax_type="EXEMPTOUTPUT",
            name="Exempt Income",
            rate=Decimal(0),
            report_tax_type="EXEMPTOUTPUT",
        ),
        TaxRateSeed(tax_type="NONE", name="No VAT", rate=Decimal(0), report_tax_type="NONE"),
        TaxRateSeed(
            tax_type="OUTPUT3",
            name="17.5% (VAT on Income)",
            rate=Decimal("17.5"),
            status="ARCHIVED",
        ),
        TaxRateSeed(
            tax_type="INPUT2",
            name="20% (VAT on Expenses)",
            rate=Decimal(20),
            report_tax_type="INPUT",
        ),
    ]


def _us_tax_rates() -> list[TaxRateSeed]:
    return [
        TaxRateSeed(tax_type="OUTPUT", name="Sales Tax on Sales", rate=Decimal("8.875")),
        TaxRateSeed(tax_type="NONE", name="Tax Exempt", rate=Decimal(0), report_tax_type="NONE"),
        TaxRateSeed(
            tax_type="INPUT",
            name="Sales Tax on Purchases",
            rate=Decimal(0),
            report_tax_type="INPUT",
        ),
    ]


def _accounts(sales_tax: str) -> list[AccountSeed]:
    return [
        AccountSeed(code="090", name="Business Bank Account", type="BANK", account_class="ASSET"),
        AccountSeed(code="091", name="PayPal", type="BANK", account_class="ASSET"),
        AccountSeed(code="200", name="Sales", type="REVENUE", tax_type=sales_tax),
        AccountSeed(code="201", name="Sales Other", type="REVENUE", tax_type=sales_tax),
        AccountSeed(code="260", name="Other Revenue", type="OTHERINCOME", tax_type=sales_tax),
        AccountSeed(code="265", name="Old Revenue", type="REVENUE", status="ARCHIVED"),
        AccountSeed(code="400", name="Advertising", type="OVERHEADS", account_class="EXPENSE"),
        AccountSeed(code="404", name="Bank Fees", type="EXPENSE", account_class="EXPENSE"),
        AccountSeed(code="425", name="Freight & Courier", type="REVENUE", tax_type=sales_tax),
        AccountSeed(code="429", name="Discounts Given", type="REVENUE", tax_type=sales_tax),
        AccountSeed(code="497", name="Rounding", type="REVENUE", account_class="REVENUE"),
        AccountSeed(code="610", name="Accounts Receivable", type="CURRENT", account_class="ASSET"),
        AccountSeed(code="620", name="Prepayments", type="CURRENT", account_class="ASSET"),
        AccountSeed(
            code="801",
            name="Gift Card Liability",
            type="CURRLIAB",
            account_class="LIABILITY",
            enable_payments=True,
        ),
        AccountSeed(
            code="877",
            name="Payment Clearing",
            type="CURRENT",
            account_class="ASSET",
            enable_payments=True,
        ),
    ]


def default_config() -> SandboxConfig:
    """Two orgs (UK GBP with EUR/USD, US USD) and the `ledgerstream-dev` client."""
    return SandboxConfig(
        clients=[
            ClientConfig(
                client_id="ledgerstream-dev",
                client_secret="dev-secret",
                redirect_uris=[
                    "http://127.0.0.1:6066/connect/xero/callback",
                    "http://localhost:6066/connect/xero/callback",
                ],
            )
        ],
        orgs=[
            OrgConfig(
                tenant_id="6f1c1b8e-2d7a-4c53-9a55-0b1d2f3e4a51",
                name="Demo UK Ltd",
                base_currency="GBP",
                currencies=["GBP", "EUR", "USD"],
                tax_rates=_uk_tax_rates(),
                accounts=_accounts("OUTPUT2"),
            ),
            OrgConfig(
                tenant_id="9b2e4c7d-5a61-4f08-8c3e-7d6a1b2c3d42",
                name="Demo US Inc",
                base_currency="USD",
                currencies=["USD"],
                tax_rates=_us_tax_rates(),
                accounts=_accounts("OUTPUT"),
            ),
        ],
    )
