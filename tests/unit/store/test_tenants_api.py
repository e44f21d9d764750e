"""The HTTP API's handlers (`streams.views.tenants`) on SQLite: list, get, history, PUT (YAML/JSON)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from schemas.ledger import LedgerAccount, LedgerTaxRate
from store.outbox import OutboxMessage
from store.tenant_config import canonical_json, load_yaml
from streams.views import tenants as api

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "tenants"
ACME = (EXAMPLES / "acme-uk.yaml").read_bytes()
BAD = (EXAMPLES / "acme-uk-bad-taxcode.yaml").read_bytes()
TOPIC = "t.tenant-config"


def put(sessions: sessionmaker[Session], body: bytes, content_type: str = "application/yaml", **query: str):  # type: ignore[no-untyped-def]
    return asyncio.run(api.put_tenant(sessions, "acme-uk", body, content_type, query, topic=TOPIC))


def test_put_yaml_creates_then_unchanged_then_changes(sessions: sessionmaker[Session]) -> None:
    status, doc = put(sessions, ACME, by="alice", comment="first")
    assert status == 201
    assert (doc["version"], doc["unchanged"], doc["dry_run"]) == (1, False, False)
    assert "+ ledgers.xero.accounts.shipping: 425" in doc["changes"]
    assert doc["not_checked"] == ["xero (no connection)"]  # default: only connected ledgers

    assert put(sessions, ACME)[1]["unchanged"] is True

    changed = ACME.replace(b'shipping: "425"', b'shipping: "430"')
    status, doc = put(sessions, changed, dry_run="1")
    assert (status, doc["version"], doc["dry_run"]) == (200, 2, True)
    assert doc["changes"] == ["ledgers.xero.accounts.shipping: 425 → 430"]
    assert api.get_tenant(sessions, "acme-uk")[1]["version"] == 1  # dry run wrote nothing

    status, doc = put(sessions, changed, by="bob")
    assert (status, doc["version"]) == (200, 2)

    status, current = api.get_tenant(sessions, "acme-uk")
    assert status == 200
    assert (current["version"], current["applied_by"]) == (2, "bob")
    assert current["config"]["ledgers"]["xero"]["accounts"]["shipping"] == "430"
    assert (
        api.get_tenant(sessions, "acme-uk", version=1)[1]["config"]["ledgers"]["xero"]["accounts"]["shipping"]
        == "425"
    )

    status, history = api.get_history(sessions, "acme-uk")
    assert [(v["version"], v["applied_by"], v["comment"]) for v in history["versions"]] == [
        (1, "alice", "first"),
        (2, "bob", None),
    ]
    status, listing = api.list_tenants(sessions)
    assert [(t["tenant_id"], t["version"], t["ledgers"]) for t in listing["tenants"]] == [
        ("acme-uk", 2, ["xero"])
    ]


def test_put_writes_the_config_with_its_outbox_row(sessions: sessionmaker[Session]) -> None:
    put(sessions, ACME)
    with sessions() as session:
        [row] = session.scalars(select(OutboxMessage)).all()
    assert (row.topic, row.key, row.published_at) == (TOPIC, b"acme-uk", None)
    assert row.value.decode() == canonical_json(load_yaml(ACME.decode()).model_copy(update={"version": 1}))


def test_put_json_body(sessions: sessionmaker[Session]) -> None:
    config = load_yaml(ACME.decode())
    status, doc = put(sessions, config.model_dump_json().encode(), "application/json")
    assert (status, doc["version"]) == (201, 1)
    assert api.get_tenant(sessions, "acme-uk")[1]["config"] == config.model_copy(
        update={"version": 1}
    ).model_dump(mode="json")


@pytest.mark.parametrize(
    ("body", "content_type", "problems"),
    [
        pytest.param(
            ACME.replace(b"base_currency: GBP", b"base_currency: pounds"),
            "application/yaml",
            ["PUT /api/tenants/acme-uk:6: base_currency: String should match pattern '^[A-Z]{3}$'"],
            id="yaml-names-field-and-line",
        ),
        pytest.param(
            ACME.replace(b"tenant_id: acme-uk", b"tenant_id: other"),
            "text/plain",
            ["PUT /api/tenants/acme-uk: tenant_id: 'other' does not match the tenant in the URL ('acme-uk')"],
            id="tenant-mismatch",
        ),
        pytest.param(
            json.dumps(
                {**json.loads(load_yaml(ACME.decode()).model_dump_json()), "policy": {"due_days": 400}}
            ).encode(),
            "application/json",
            ["PUT /api/tenants/acme-uk: policy.due_days: Input should be less than or equal to 365"],
            id="json-names-field",
        ),
        pytest.param(
            b'{"tenant_id": "acme-uk",',
            "application/json",
            ["PUT /api/tenants/acme-uk:1: invalid JSON: Expecting property name enclosed in double quotes"],
            id="json-syntax",
        ),
    ],
)
def test_put_rejects_with_422_naming_fields(
    sessions: sessionmaker[Session], body: bytes, content_type: str, problems: list[str]
) -> None:
    status, doc = put(sessions, body, content_type)
    assert status == 422
    assert doc == {"error": "invalid tenant configuration", "problems": problems}
    assert api.get_tenant(sessions, "acme-uk")[0] == 404


def test_put_json_rejects_a_tax_rate_sent_as_a_float(sessions: sessionmaker[Session]) -> None:
    data = json.loads(load_yaml(ACME.decode()).model_dump_json())
    data["ledgers"]["xero"]["tax"]["fallback"]["rate"] = 20.0
    status, doc = put(sessions, json.dumps(data).encode(), "application/json")
    assert status == 422
    assert doc["problems"] == [
        "PUT /api/tenants/acme-uk: ledgers.xero.tax.fallback.rate: "
        'must be a decimal string such as "19.99", not a float'
    ]


class Ledger:
    ledger, max_batch = "xero", 50

    async def tax_rates(self, tenant_id: str) -> list[LedgerTaxRate]:
        rates = {"OUTPUT2": 20, "EXEMPTOUTPUT": 0, "ECZROUTPUTSERVICES": 0, "NONE": 0}
        return [LedgerTaxRate(code=c, name=c, rate=r) for c, r in rates.items()] + [
            LedgerTaxRate(code="OUTPUT3", name="17.5%", rate="17.5", active=False)
        ]

    async def accounts(self, tenant_id: str) -> list[LedgerAccount]:
        codes = ["200", "425", "429", "801", "090", "091", "877", "404", "497"]
        return [LedgerAccount(code=c, name=c, type="BANK") for c in codes]


def test_put_with_check_ledger_rejects_the_archived_code_by_name(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    forced = asyncio.run(api.put_tenant(sessions, "acme-uk", BAD, "", {"check_ledger": "1"}, topic=TOPIC))
    assert forced[0] == 422
    assert forced[1]["problems"][0].startswith("ledgers.xero: cannot check against xero")

    from streams.commands import tenants as cli

    class Active:
        status = "active"

    monkeypatch.setattr(cli.connections, "get", lambda session, tenant, ledger: Active())
    status, doc = asyncio.run(
        api.put_tenant(sessions, "acme-uk", BAD, "", {}, topic=TOPIC, connector_for=lambda name: Ledger())
    )
    assert (status, doc) == (
        422,
        {
            "error": "rejected by the ledger check",
            "problems": ["ledgers.xero.tax.rules[0].tax.code: tax rate 'OUTPUT3' is archived in xero"],
        },
    )
    status, doc = asyncio.run(
        api.put_tenant(sessions, "acme-uk", ACME, "", {}, topic=TOPIC, connector_for=lambda name: Ledger())
    )
    assert (status, doc["checked_against"], doc["not_checked"]) == (201, ["xero"], [])


def test_unknown_tenant_is_404(sessions: sessionmaker[Session]) -> None:
    assert api.get_tenant(sessions, "nobody") == (404, {"error": "no configuration for tenant 'nobody'"})
    assert api.get_history(sessions, "nobody")[0] == 404
    assert api.list_tenants(sessions) == (200, {"tenants": []})
