"""load_yaml / to_yaml: errors name the field and its line; round trips are exact."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from store.tenant_config import ConfigError, canonical_json, fingerprint, load_yaml, to_yaml

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "tenants"

MINIMAL = """\
tenant_id: shop-1
name: Shop One
base_currency: GBP
ledgers:
  xero:
    tax:
      fallback:
        code: OUTPUT2
        rate: 20
    accounts:
      revenue: 200
      shipping: 425
      gift_card_liability: 801
      rounding: 497
"""


def problems(text: str, source: str = "tenant.yaml") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_yaml(text, source)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_minimal_config_loads_with_codes_and_rates_as_written() -> None:
    config = load_yaml(MINIMAL)
    xero = config.ledgers["xero"]
    assert xero.accounts.revenue == "200"
    assert xero.tax.fallback.rate == Decimal(20)
    assert config.version == 0


def test_missing_field_names_path_and_the_line_of_its_parent() -> None:
    text = MINIMAL.replace("        code: OUTPUT2\n", "")
    assert problems(text) == ["tenant.yaml:7: ledgers.xero.tax.fallback.code: Field required"]


def test_wrong_value_names_the_line_of_the_value() -> None:
    text = MINIMAL.replace("base_currency: GBP", "base_currency: pounds")
    assert problems(text) == ["tenant.yaml:3: base_currency: String should match pattern '^[A-Z]{3}$'"]


def test_every_problem_is_listed_with_its_own_line() -> None:
    text = MINIMAL.replace("rate: 20", "rate: 120").replace("revenue: 200\n", "revenu: 200\n")
    assert problems(text) == [
        "tenant.yaml:9: ledgers.xero.tax.fallback.rate: Input should be less than or equal to 100",
        "tenant.yaml:10: ledgers.xero.accounts.revenue: Field required",
        "tenant.yaml:11: ledgers.xero.accounts.revenu: Extra inputs are not permitted",
    ]


def test_list_items_are_indexed_and_located() -> None:
    text = MINIMAL.replace(
        "    tax:\n",
        "    tax:\n      rules:\n        - country: GB\n          tax: {code: OUTPUT2, rate: 20}\n"
        "        - country: Germany\n          tax: {code: X, rate: 0}\n",
    )
    assert problems(text) == [
        "tenant.yaml:10: ledgers.xero.tax.rules[1].country: String should match pattern '^[A-Z]{2}$'"
    ]


def test_unknown_ledger_and_model_rule_are_located() -> None:
    text = MINIMAL.replace("      fallback:", "      reverse_charge: {code: EC, rate: 0}\n      fallback:")
    assert problems(text) == ["tenant.yaml:6: ledgers.xero.tax: reverse_charge needs home_country"]
    text = MINIMAL + "  sage:\n    tax: {fallback: {code: A, rate: 0}}\n    accounts: {}\n"
    assert problems(text)[0] == (
        "tenant.yaml:15: ledgers.sage[key]: Input should be 'xero', 'quickbooks' or 'moloni'"
    )


def test_yaml_syntax_error_names_its_line() -> None:
    text = MINIMAL.replace("name: Shop One", "name: [Shop One")
    [problem] = problems(text)
    assert problem.startswith("tenant.yaml:3: invalid YAML")


def test_duplicate_keys_are_errors_not_silently_overwritten() -> None:
    text = MINIMAL + "name: Shop Two\n"
    assert problems(text) == ["tenant.yaml:15: name: duplicate key"]


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    [problem] = problems(text)
    assert "expected a mapping" in problem


def test_scalars_stay_as_written_no_octal_no_norway_no_float() -> None:
    text = MINIMAL.replace("revenue: 200", "revenue: 0710").replace("rate: 20", "rate: 17.5")
    rules = "      rules:\n        - {country: NO, tax: {code: Z, rate: 0}}\n"
    text = text.replace("      fallback:", rules + "      fallback:")
    config = load_yaml(text)
    xero = config.ledgers["xero"]
    assert xero.accounts.revenue == "0710"  # YAML 1.1 would read octal 456
    assert xero.tax.rules[0].country == "NO"  # YAML 1.1 would read False
    assert xero.tax.fallback.rate == Decimal("17.5")  # a float would be rejected as money


def test_anchors_and_merge_keys_work() -> None:
    text = MINIMAL.replace(
        "      fallback:\n        code: OUTPUT2\n        rate: 20\n",
        "      fallback: &std {code: OUTPUT2, rate: 20}\n"
        "      no_tax:\n        <<: *std\n        code: NONE\n",
    )
    tax = load_yaml(text).ledgers["xero"].tax
    assert tax.no_tax is not None
    assert (tax.no_tax.code, tax.no_tax.rate) == ("NONE", Decimal(20))


@pytest.mark.parametrize("name", ["acme-uk.yaml", "acme-uk-bad-taxcode.yaml"])
def test_examples_load_and_round_trip(name: str) -> None:
    config = load_yaml((EXAMPLES / name).read_text(), name)
    text = to_yaml(config)
    assert load_yaml(text) == config
    assert to_yaml(load_yaml(text)) == text  # stable
    assert "rate: '20'" in text  # Decimals as strings
    assert "account: '090'" in text  # number-like codes quoted for any YAML reader


def test_acme_example_content() -> None:
    config = load_yaml((EXAMPLES / "acme-uk.yaml").read_text())
    xero = config.ledgers["xero"]
    assert [(r.country, r.tax.code, r.tax.rate) for r in xero.tax.rules] == [
        ("GB", "OUTPUT2", 20),
        ("US", "EXEMPTOUTPUT", 0),
    ]
    assert xero.tax.reverse_charge is not None and xero.tax.reverse_charge.code == "ECZROUTPUTSERVICES"
    assert xero.tax.home_country == "GB"
    assert [(p.gateway, p.currency, p.account) for p in xero.accounts.payments] == [
        ("stripe", "GBP", "090"),
        ("paypal", None, "091"),
    ]
    assert (config.policy.trigger, config.policy.status) == ("fulfilled", "authorised")


def test_fingerprint_ignores_version_dict_order_and_decimal_spelling() -> None:
    a = load_yaml(MINIMAL)
    b = load_yaml(MINIMAL.replace("rate: 20", "rate: '20.00'"))
    assert a == b
    assert fingerprint(a) == fingerprint(b) == fingerprint(a.model_copy(update={"version": 7}))
    assert canonical_json(a) == canonical_json(b)
    assert fingerprint(load_yaml(MINIMAL.replace("Shop One", "Shop 1"))) != fingerprint(a)
