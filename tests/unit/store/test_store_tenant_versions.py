"""apply / current / history / all_current on a migrated SQLite database."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from schemas.ledger import LedgerAccount, LedgerTaxRate
from schemas.tenant import TenantConfig
from store import tenant_config
from store.outbox import OutboxMessage
from store.tenant_config import ConfigError, LedgerCatalogue, ledger_problems, load_yaml, to_yaml
from store.tenants import Tenant, TenantConfigVersion

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "tenants"


def _apply(sessions: sessionmaker[Session], config: TenantConfig, **kw: object) -> tenant_config.ApplyResult:
    with sessions.begin() as session:
        return tenant_config.apply(session, config, "alice", **kw)  # type: ignore[arg-type]


def _outbox(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    with sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _count(sessions: sessionmaker[Session], table: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_round_trip_apply_current_to_yaml_load_yaml(sessions: sessionmaker[Session], acme_yaml: str) -> None:
    config = load_yaml(acme_yaml)
    result = _apply(sessions, config, comment="first setup")
    assert (result.version, result.unchanged) == (1, False)
    with sessions() as session:
        stored = tenant_config.current(session, "acme-uk")
    assert stored is not None
    assert stored.version == 1
    assert stored == config.model_copy(update={"version": 1}) == result.config
    assert load_yaml(to_yaml(stored)) == stored


def test_same_config_twice_is_unchanged_and_writes_nothing(
    sessions: sessionmaker[Session], acme_yaml: str
) -> None:
    config = load_yaml(acme_yaml)
    _apply(sessions, config)
    again = _apply(sessions, load_yaml(acme_yaml + "\n# a comment changes nothing\n"))
    assert (again.version, again.changes, again.unchanged) == (1, [], True)
    assert _count(sessions, TenantConfigVersion) == 1
    assert len(_outbox(sessions)) == 1


def test_changed_config_is_version_2_with_diff_and_outbox_row(
    sessions: sessionmaker[Session], acme_yaml: str
) -> None:
    _apply(sessions, load_yaml(acme_yaml))
    changed = acme_yaml.replace('shipping: "425"', 'shipping: "430"').replace(
        "        - country: US\n          tax: {code: EXEMPTOUTPUT, rate: 0}        # Exempt Income\n", ""
    )
    changed = changed.replace(
        "      rules:\n",
        "      rules:\n        - {country: GB, postcode_prefix: BT, tax: {code: ZERORATEDOUTPUT, rate: 0}}\n",
    )
    result = _apply(sessions, load_yaml(changed), comment="Freight account moved")
    assert (result.version, result.unchanged) == (2, False)
    assert result.changes == [
        "+ ledgers.xero.tax.rules[GB/BT]: {country: GB, postcode_prefix: BT, "
        "tax: {code: ZERORATEDOUTPUT, rate: 0}}",
        "- ledgers.xero.tax.rules[US]: {country: US, tax: {code: EXEMPTOUTPUT, rate: 0}}",
        "ledgers.xero.accounts.shipping: 425 → 430",
    ]
    rows = _outbox(sessions)
    assert [(r.topic, r.key, r.published_at) for r in rows] == [
        ("tenant-config", b"acme-uk", None),
        ("tenant-config", b"acme-uk", None),
    ]
    message = TenantConfig.model_validate_json(rows[1].value)
    assert message.version == 2
    assert message.ledgers["xero"].accounts.shipping == "430"
    assert json.loads(rows[1].value)["ledgers"]["xero"]["tax"]["fallback"]["rate"] == "20"

    with sessions() as session:
        assert [(v.version, v.applied_by, v.comment) for v in tenant_config.history(session, "acme-uk")] == [
            (1, "alice", None),
            (2, "alice", "Freight account moved"),
        ]
        old = tenant_config.get_version(session, "acme-uk", 1)
        assert old is not None and old.ledgers["xero"].accounts.shipping == "425"
        assert tenant_config.get_version(session, "acme-uk", 3) is None
        assert session.get(Tenant, "acme-uk") is not None


def test_a_changed_rule_shows_field_level_change(sessions: sessionmaker[Session], acme_yaml: str) -> None:
    old = load_yaml(acme_yaml)
    new = load_yaml(acme_yaml.replace("code: OUTPUT2, rate: 20}            #", "code: OUTPUT3, rate: 20} #"))
    assert tenant_config.diff(old, new) == ["ledgers.xero.tax.rules[GB].tax.code: OUTPUT2 → OUTPUT3"]
    assert tenant_config.diff(old, old) == []
    first = tenant_config.diff(None, old)
    assert first[0] == "+ tenant_id: acme-uk"
    assert "+ ledgers.xero.accounts.payments[paypal]: {gateway: paypal, account: 091}" in first


def test_topic_is_a_parameter(sessions: sessionmaker[Session], acme_yaml: str) -> None:
    _apply(sessions, load_yaml(acme_yaml), topic="test.tenant-config")
    assert [r.topic for r in _outbox(sessions)] == ["test.tenant-config"]


def test_dry_run_reports_but_writes_nothing(sessions: sessionmaker[Session], acme_yaml: str) -> None:
    result = _apply(sessions, load_yaml(acme_yaml), dry_run=True)
    assert (result.version, result.unchanged, result.dry_run) == (1, False, True)
    assert result.changes[0] == "+ tenant_id: acme-uk"
    assert _count(sessions, Tenant) == _count(sessions, TenantConfigVersion) == len(_outbox(sessions)) == 0


def test_check_problems_raise_and_nothing_is_written(sessions: sessionmaker[Session], acme_yaml: str) -> None:
    seen: list[TenantConfig] = []

    def check(config: TenantConfig) -> list[str]:
        seen.append(config)
        return ["ledgers.xero.tax.rules[0].tax.code: tax rate 'OUTPUT3' is archived in xero"]

    with pytest.raises(ConfigError) as caught:
        _apply(sessions, load_yaml(acme_yaml), check=check)
    assert caught.value.problems == [
        "ledgers.xero.tax.rules[0].tax.code: tax rate 'OUTPUT3' is archived in xero"
    ]
    assert len(seen) == 1
    assert _count(sessions, Tenant) == _count(sessions, TenantConfigVersion) == len(_outbox(sessions)) == 0
    assert _apply(sessions, load_yaml(acme_yaml), check=lambda c: []).version == 1


def test_all_current_and_unknown_tenant(sessions: sessionmaker[Session], acme_yaml: str) -> None:
    acme = load_yaml(acme_yaml)
    other = acme.model_copy(update={"tenant_id": "zed-shop", "name": "Zed"})
    _apply(sessions, acme)
    _apply(sessions, other)
    _apply(sessions, acme.model_copy(update={"name": "Acme Limited"}))
    with sessions() as session:
        assert [(c.tenant_id, c.version, c.name) for c in tenant_config.all_current(session)] == [
            ("acme-uk", 2, "Acme Limited"),
            ("zed-shop", 1, "Zed"),
        ]
        assert session.get(Tenant, "acme-uk").name == "Acme Limited"  # type: ignore[union-attr]
        assert tenant_config.current(session, "nobody") is None
        assert tenant_config.history(session, "nobody") == []


# The Xero demo organisation's catalogue (the codes the brief lists).
RATES = [
    LedgerTaxRate(code="OUTPUT2", name="20% (VAT on Income)", rate=Decimal(20)),
    LedgerTaxRate(code="ZERORATEDOUTPUT", name="Zero Rated Income", rate=Decimal(0)),
    LedgerTaxRate(code="ECZROUTPUTSERVICES", name="Zero Rated EC Services", rate=Decimal(0)),
    LedgerTaxRate(code="EXEMPTOUTPUT", name="Exempt Income", rate=Decimal(0)),
    LedgerTaxRate(code="NONE", name="No VAT", rate=Decimal(0)),
    LedgerTaxRate(code="OUTPUT3", name="17.5% (VAT on Income)", rate=Decimal("17.5"), active=False),
]
ACCOUNTS = [
    LedgerAccount(code="200", name="Sales", type="REVENUE"),
    LedgerAccount(code="201", name="Sales Other", type="REVENUE"),
    LedgerAccount(code="260", name="Other Revenue", type="OTHERINCOME"),
    LedgerAccount(code="425", name="Freight & Courier", type="REVENUE"),
    LedgerAccount(code="429", name="Discounts Given", type="REVENUE"),
    LedgerAccount(code="497", name="Rounding", type="REVENUE"),
    LedgerAccount(code="801", name="Gift Card Liability", type="CURRLIAB"),
    LedgerAccount(code="090", name="Business Bank Account", type="BANK"),
    LedgerAccount(code="091", name="PayPal", type="BANK"),
    LedgerAccount(code="877", name="Payment Clearing", type="CURRENT", accepts_payments=True),
    LedgerAccount(code="404", name="Bank Fees", type="EXPENSE"),
    LedgerAccount(code="610", name="Accounts Receivable", type="CURRENT"),
]


def test_ledger_problems_accepts_acme_and_rejects_archived_rate(acme_yaml: str) -> None:
    catalogue = {"xero": LedgerCatalogue(RATES, ACCOUNTS)}
    assert ledger_problems(load_yaml(acme_yaml), catalogue) == []
    bad = load_yaml((EXAMPLES / "acme-uk-bad-taxcode.yaml").read_text())
    assert ledger_problems(bad, catalogue) == [
        "ledgers.xero.tax.rules[0].tax.code: tax rate 'OUTPUT3' is archived in xero"
    ]
    assert ledger_problems(bad, {}) == []  # no catalogue for xero: nothing to check against


def test_ledger_problems_unknown_codes_rates_and_payment_accounts(acme_yaml: str) -> None:
    text = acme_yaml.replace('revenue: "200"', 'revenue: "999"').replace(
        "no_tax: {code: NONE, rate: 0}", "no_tax: {code: NONE, rate: 5}"
    )
    text = text.replace('default_payment: "877"', 'default_payment: "610"')
    catalogue = {"xero": LedgerCatalogue(RATES, ACCOUNTS)}
    assert ledger_problems(load_yaml(text), catalogue) == [
        "ledgers.xero.tax.no_tax.rate: 'NONE' is 0% in xero, not 5%",
        "ledgers.xero.accounts.revenue: account '999' does not exist in xero",
        "ledgers.xero.accounts.default_payment: account '610' does not accept payments in xero",
    ]


def test_apply_with_ledger_check_rejects_the_bad_example(sessions: sessionmaker[Session]) -> None:
    bad = load_yaml((EXAMPLES / "acme-uk-bad-taxcode.yaml").read_text())
    catalogue = {"xero": LedgerCatalogue(RATES, ACCOUNTS)}
    with pytest.raises(ConfigError, match="OUTPUT3' is archived"):
        _apply(sessions, bad, check=lambda c: ledger_problems(c, catalogue))
    assert _count(sessions, TenantConfigVersion) == 0
