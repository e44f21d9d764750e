"""Checking a tenant config against its ledger: `ledger_problems` (pure) and `check_ledgers` (modes).

`ledger_problems` is the one mapping check (it replaced `accounting.validation.check_mapping`):
one case per row, each naming the field path and the code.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session, sessionmaker

from connectors.errors import AuthRevoked
from schemas.ledger import LedgerAccount, LedgerTaxRate
from schemas.tenant import TenantConfig
from store import connections
from store.connections import TokenCipher
from store.tenant_config import LedgerCatalogue, ledger_problems, load_yaml
from store.tenants import TenantConfigVersion
from streams.commands import tenants as cli
from streams.commands.tenants import check_ledgers

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "tenants"
ACME = EXAMPLES / "acme-uk.yaml"

RATES = [
    LedgerTaxRate(code="OUTPUT2", name="20% (VAT on Income)", rate=D("20.0000")),
    LedgerTaxRate(code="OUTPUT3", name="17.5% (VAT on Income)", rate=D("17.5"), active=False),
    LedgerTaxRate(code="EXEMPTOUTPUT", name="Exempt Income", rate=D(0)),
    LedgerTaxRate(code="ECZROUTPUTSERVICES", name="Zero Rated EC Services", rate=D(0)),
    LedgerTaxRate(code="NONE", name="No VAT", rate=D(0)),
]
ACCOUNTS = [
    LedgerAccount(code="200", name="Sales", type="REVENUE"),
    LedgerAccount(code="210", name="Old sales", type="REVENUE", active=False),
    LedgerAccount(code="425", name="Freight & Courier", type="EXPENSE"),
    LedgerAccount(code="429", name="Discounts Given", type="REVENUE"),
    LedgerAccount(code="801", name="Gift Card Liability", type="CURRLIAB"),
    LedgerAccount(code="090", name="Business Bank Account", type="BANK"),
    LedgerAccount(code="091", name="PayPal", type="BANK"),
    LedgerAccount(code="877", name="Payment Clearing", type="CURRENT", accepts_payments=True),
    LedgerAccount(code="404", name="Bank Fees", type="EXPENSE"),
    LedgerAccount(code="497", name="Rounding", type="REVENUE"),
    LedgerAccount(code="610", name="Accounts Receivable", type="CURRENT"),
]


def _edit(*pairs: tuple[str, str]) -> TenantConfig:
    text = ACME.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return load_yaml(text)


@pytest.mark.parametrize(
    ("edits", "problems"),
    [
        pytest.param((), [], id="clean"),
        pytest.param(
            (("tax: {code: EXEMPTOUTPUT, rate: 0}", "tax: {code: EXEMPTEXPORT, rate: 0}"),),
            ["ledgers.xero.tax.rules[1].tax.code: tax rate 'EXEMPTEXPORT' does not exist in xero"],
            id="missing-tax-rate",
        ),
        pytest.param(
            (("tax: {code: OUTPUT2, rate: 20}", "tax: {code: OUTPUT3, rate: 20}"),),
            ["ledgers.xero.tax.rules[0].tax.code: tax rate 'OUTPUT3' is archived in xero"],
            id="archived-tax-rate",
        ),
        pytest.param(
            (("fallback: {code: OUTPUT2, rate: 20}", "fallback: {code: OUTPUT2, rate: 17.5}"),),
            ["ledgers.xero.tax.fallback.rate: 'OUTPUT2' is 20% in xero, not 17.5%"],
            id="rate-differs",
        ),
        pytest.param(
            (('rounding: "497"', 'rounding: "4970"'),),
            ["ledgers.xero.accounts.rounding: account '4970' does not exist in xero"],
            id="unknown-account",
        ),
        pytest.param(
            (('revenue: "200"', 'revenue: "210"'),),
            ["ledgers.xero.accounts.revenue: account '210' is archived in xero"],
            id="archived-account",
        ),
        pytest.param(
            (('account: "091"}', 'account: "610"}'),),
            ["ledgers.xero.accounts.payments[1].account: account '610' does not accept payments in xero"],
            id="payment-account-not-a-bank",
        ),
        pytest.param(
            (('revenue: "200"', 'revenue: "200"\n      revenue_by_product_type: {books: "2300"}'),),
            ["ledgers.xero.accounts.revenue_by_product_type.books: account '2300' does not exist in xero"],
            id="revenue-by-product-type",
        ),
    ],
)
def test_ledger_problems(edits: tuple[tuple[str, str], ...], problems: list[str]) -> None:
    config = _edit(*edits)
    assert ledger_problems(config, {"xero": LedgerCatalogue(RATES, ACCOUNTS)}) == problems


# ------------------------------------------------------------------ check_ledgers: the three modes


class FakeConnector:
    ledger = "xero"
    max_batch = 50

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[str] = []

    async def tax_rates(self, tenant_id: str) -> list[LedgerTaxRate]:
        self.calls.append(f"tax_rates:{tenant_id}")
        if self.error:
            raise self.error
        return RATES

    async def accounts(self, tenant_id: str) -> list[LedgerAccount]:
        self.calls.append(f"accounts:{tenant_id}")
        return ACCOUNTS


def _connect(sessions: sessionmaker[Session], status: str = "active") -> None:
    with sessions.begin() as session:
        row = connections.upsert(
            session,
            TokenCipher([Fernet.generate_key()]),
            tenant_id="acme-uk",
            ledger="xero",
            organisation_id="org-1",
            organisation_name="Demo UK Ltd",
            access_token="a",
            refresh_token="r",
            access_expires_at=datetime.now(UTC),
        )
        row.status = status


def _check(sessions: sessionmaker[Session], mode: bool | None, fake: FakeConnector):  # type: ignore[no-untyped-def]
    bad = load_yaml((EXAMPLES / "acme-uk-bad-taxcode.yaml").read_text())
    result = asyncio.run(check_ledgers(sessions, bad, mode, lambda ledger: fake))
    return result, result.check(bad)


def test_no_connection_auto_skips_forced_is_an_error_off_does_nothing(
    sessions: sessionmaker[Session],
) -> None:
    fake = FakeConnector()
    auto, problems = _check(sessions, None, fake)
    assert (auto.skipped, problems, fake.calls) == (["xero (no connection)"], [], [])
    _, problems = _check(sessions, True, fake)
    assert problems == [
        "ledgers.xero: cannot check against xero: tenant 'acme-uk' has no connection; "
        "connect it first, or apply without the ledger check"
    ]
    off, problems = _check(sessions, False, fake)
    assert (off.skipped, problems, fake.calls) == ([], [], [])


def test_active_connection_is_checked_by_default(sessions: sessionmaker[Session]) -> None:
    _connect(sessions)
    fake = FakeConnector()
    auto, problems = _check(sessions, None, fake)
    assert fake.calls == ["tax_rates:acme-uk", "accounts:acme-uk"]
    assert problems == ["ledgers.xero.tax.rules[0].tax.code: tax rate 'OUTPUT3' is archived in xero"]
    assert list(auto.catalogues) == ["xero"]


def test_connection_needing_reconnect_is_skipped_by_default_and_an_error_when_forced(
    sessions: sessionmaker[Session],
) -> None:
    _connect(sessions, status="needs_reconnect")
    auto, problems = _check(sessions, None, FakeConnector())
    assert (auto.skipped, problems) == (["xero (its connection is needs_reconnect)"], [])
    _, problems = _check(sessions, True, FakeConnector())
    assert problems[0].startswith("ledgers.xero: cannot check against xero: tenant 'acme-uk' has its")


def test_a_connected_ledger_that_cannot_be_read_is_a_problem(sessions: sessionmaker[Session]) -> None:
    _connect(sessions)
    _, problems = _check(sessions, None, FakeConnector(AuthRevoked("refresh token revoked", status=400)))
    assert problems == [
        "ledgers.xero: could not read tax rates and accounts from xero: refresh token revoked"
    ]


def test_cli_apply_rejects_against_the_ledger_and_writes_nothing(
    sessions: sessionmaker[Session], sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(sessions)
    fake = FakeConnector()
    original = cli.check_ledgers

    async def with_fake(s, config, mode, connector_for=None):  # type: ignore[no-untyped-def]
        return await original(s, config, mode, lambda ledger: fake)

    monkeypatch.setattr(cli, "check_ledgers", with_fake)
    runner = CliRunner()
    args = ["--no-publish", "--database-url", sqlite_url]
    bad = runner.invoke(cli.tenants, ["apply", str(EXAMPLES / "acme-uk-bad-taxcode.yaml"), *args])
    assert bad.exit_code == 1
    assert "ledgers.xero.tax.rules[0].tax.code: tax rate 'OUTPUT3' is archived in xero" in bad.output
    with sessions() as session:
        assert session.query(TenantConfigVersion).count() == 0
    good = runner.invoke(cli.tenants, ["apply", str(ACME), *args])
    assert good.exit_code == 0, good.output
    assert "acme-uk: tax codes and accounts checked against xero" in good.output
    unchecked = runner.invoke(
        cli.tenants, ["apply", str(EXAMPLES / "acme-uk-bad-taxcode.yaml"), "--no-check-ledger", *args]
    )
    assert unchecked.exit_code == 0, unchecked.output
    assert "applied acme-uk version 2" in unchecked.output
