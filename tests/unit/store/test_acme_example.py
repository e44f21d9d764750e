"""examples/tenants/acme-uk.yaml: UK 20 % VAT, EU B2B reverse charge, US exempt; applies and round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from accounting.tax import sale_tax
from schemas.events import parse_event
from store.tenant_config import load_yaml
from streams.commands.tenants import tenants

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "tenants"
ACME = EXAMPLES / "acme-uk.yaml"
PLACED = Path(__file__).resolve().parents[3] / "schemas" / "examples" / "order.placed.json"


def test_acme_applies_and_round_trips_through_tenants_show(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    db = ["--database-url", sqlite_url]
    applied = runner.invoke(tenants, ["apply", str(ACME), "--no-publish", *db], catch_exceptions=False)
    assert applied.exit_code == 0, applied.output
    assert "applied acme-uk version 1" in applied.output
    assert "not checked against xero (no connection)" in applied.output

    shown = runner.invoke(tenants, ["show", "acme-uk", *db], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert load_yaml(shown.output) == load_yaml(ACME.read_text()).model_copy(update={"version": 1})

    as_json = runner.invoke(tenants, ["show", "acme-uk", "--format", "json", *db], catch_exceptions=False)
    assert json.loads(as_json.output)["ledgers"]["xero"]["tax"]["home_country"] == "GB"


@pytest.mark.parametrize(
    ("country", "customer", "code", "rate"),
    [
        pytest.param("GB", {}, "OUTPUT2", "20", id="uk-consumer-20pct-vat"),
        pytest.param("GB", {"vat_id": "GB123456789"}, "OUTPUT2", "20", id="uk-business-20pct-vat"),
        pytest.param(
            "DE",
            {"vat_id": "DE123456789", "company": "Beispiel GmbH"},
            "ECZROUTPUTSERVICES",
            "0",
            id="eu-b2b-reverse-charge",
        ),
        pytest.param("FR", {}, "OUTPUT2", "20", id="eu-consumer-fallback"),
        pytest.param("US", {}, "EXEMPTOUTPUT", "0", id="us-exempt"),
    ],
)
def test_acme_tax_for_uk_eu_and_us_customers(country: str, customer: dict, code: str, rate: str) -> None:
    mapping = load_yaml(ACME.read_text()).ledgers["xero"].tax
    event = json.loads(PLACED.read_text())
    event["order"]["shipping_address"]["country"] = country
    event["order"]["customer"].update(customer)
    order = parse_event(json.dumps(event)).order  # type: ignore[union-attr]
    tax = sale_tax(order, mapping)
    assert (tax.code, str(tax.rate)) == (code, rate)
