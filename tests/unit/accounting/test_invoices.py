"""Invoice lines, accounts, tax, discounts, gift cards and ledger rounding: one case per row."""

from __future__ import annotations

import pytest
from conftest import UK_TAX, Address, Customer, line, order, placed, rows, run, uk_config

from accounting.tax import is_reverse_charge, vat_country
from schemas.commands import CreateInvoice, CreatePayment

XERO = uk_config(trigger="placed")
LINE_MODE = uk_config(trigger="placed", discount_mode="line")

CASES = [
    pytest.param(
        XERO,
        order(line("a", "2", "10.00"), shipping="5.00", total="30.00"),
        [("a", "200", "OUTPUT2", "20.00", "4.00"), ("shipping:s1", "425", "OUTPUT2", "5.00", "1.00")],
        "30.00",
        id="one-line-and-shipping-exclusive",
    ),
    pytest.param(
        XERO,
        order(
            line("a", "0.333", "1.00"), line("b", "0.333", "1.00"), line("c", "0.333", "1.00"), total="1.20"
        ),
        [
            ("a", "200", "OUTPUT2", "0.33", "0.07"),
            ("b", "200", "OUTPUT2", "0.33", "0.07"),
            ("c", "200", "OUTPUT2", "0.33", "0.07"),
        ],
        "1.20",
        id="three-lines-of-0.333",
    ),
    pytest.param(
        XERO,
        order(
            line("a", "0.333", "1.00"), line("b", "0.333", "1.00"), line("c", "0.333", "1.00"), total="1.19"
        ),
        [
            ("a", "200", "OUTPUT2", "0.33", "0.07"),
            ("b", "200", "OUTPUT2", "0.33", "0.07"),
            ("c", "200", "OUTPUT2", "0.33", "0.07"),
            ("rounding", "497", "NONE", "-0.01", "0.00"),
        ],
        "1.19",
        id="three-lines-of-0.333-upstream-rounds-the-whole-order",
    ),
    pytest.param(
        XERO,
        order(line("a", "3", "19.99"), inclusive=True, total="59.97"),
        [("a", "200", "OUTPUT2", "59.97", "10.00")],
        "59.97",
        id="19.99x3-inclusive-20pct-tax-9.995-rounds-up",
    ),
    pytest.param(
        XERO,
        order(line("a", "3", "19.99"), total="71.97"),
        [("a", "200", "OUTPUT2", "59.97", "11.99"), ("rounding", "497", "NONE", "0.01", "0.00")],
        "71.97",
        id="19.99x3-exclusive-upstream-taxed-per-unit",
    ),
    pytest.param(
        XERO,
        order(line("a", "1", "0.01"), line("b", "1", "0.01"), total="0.02"),
        [("a", "200", "OUTPUT2", "0.01", "0.00"), ("b", "200", "OUTPUT2", "0.01", "0.00")],
        "0.02",
        id="0.01-lines-carry-no-tax",
    ),
    pytest.param(
        XERO,
        order(
            line("a", "1", "10"),
            line("b", "1", "10"),
            line("c", "1", "10"),
            discounts=("10.00",),
            total="24.00",
        ),
        [
            ("a", "200", "OUTPUT2", "6.66", "1.33"),
            ("b", "200", "OUTPUT2", "6.67", "1.33"),
            ("c", "200", "OUTPUT2", "6.67", "1.33"),
            ("rounding", "497", "NONE", "0.01", "0.00"),
        ],
        "24.00",
        id="100/3-discount-allocated-largest-remainder",
    ),
    pytest.param(
        LINE_MODE,
        order(
            line("a", "1", "10"),
            line("b", "1", "10"),
            line("c", "1", "10"),
            discounts=("10.00",),
            total="24.00",
        ),
        [
            ("a", "200", "OUTPUT2", "10.00", "2.00"),
            ("b", "200", "OUTPUT2", "10.00", "2.00"),
            ("c", "200", "OUTPUT2", "10.00", "2.00"),
            ("discount:OUTPUT2", "410", "OUTPUT2", "-10.00", "-2.00"),
        ],
        "24.00",
        id="100/3-discount-as-one-line-per-tax-code",
    ),
    pytest.param(
        LINE_MODE,
        order(line("a", "1", "30"), line("g", "1", "20", gift_card=True), discounts=("6.00",), total="48.80"),
        [
            ("a", "200", "OUTPUT2", "30.00", "6.00"),
            ("g", "801", "NONE", "20.00", "0.00"),
            ("discount:OUTPUT2", "410", "OUTPUT2", "-6.00", "-1.20"),
        ],
        "48.80",
        id="discount-never-touches-gift-card-sold",
    ),
    pytest.param(
        XERO,
        order(
            line("a", "1", "10", sku="BK-1", product_type="book"),
            line("b", "1", "10", sku="B-2"),
            line("c", "1", "10", sku="X", product_type="book"),
            line("d", "1", "10"),
            total="48.00",
        ),
        [
            ("a", "230", "OUTPUT2", "10.00", "2.00"),
            ("b", "220", "OUTPUT2", "10.00", "2.00"),
            ("c", "210", "OUTPUT2", "10.00", "2.00"),
            ("d", "200", "OUTPUT2", "10.00", "2.00"),
        ],
        "48.00",
        id="account-longest-sku-prefix-then-product-type-then-default",
    ),
    pytest.param(
        XERO,
        order(line("a", "2", "10", discount="1.50"), total="22.20"),
        [("a", "200", "OUTPUT2", "18.50", "3.70")],
        "22.20",
        id="line-discount",
    ),
    pytest.param(
        XERO,
        order(line("g", "1", "25", gift_card=True), line("a", "1", "10"), total="37.00"),
        [("g", "801", "NONE", "25.00", "0.00"), ("a", "200", "OUTPUT2", "10.00", "2.00")],
        "37.00",
        id="gift-card-sold-is-a-liability-without-tax",
    ),
    pytest.param(
        XERO,
        order(line("a", "1", "100"), address=Address(country="US", region="NY"), total="100.00"),
        [("a", "200", "EXEMPTOUTPUT", "100.00", "0.00")],
        "100.00",
        id="tax-by-country-us",
    ),
    pytest.param(
        XERO,
        order(line("a", "1", "100"), address=Address(country="US", region="CA"), total="100.00"),
        [("a", "200", "CA", "100.00", "0.00")],
        "100.00",
        id="tax-region-beats-country",
    ),
    pytest.param(
        XERO,
        order(line("a", "1", "100"), address=Address(country="GB", postcode="je3 1ab"), total="105.00"),
        [("a", "200", "JE3", "100.00", "5.00")],
        "105.00",
        id="tax-longest-postcode-prefix",
    ),
    pytest.param(
        XERO,
        order(line("a", "1", "100"), address=Address(country="GB", postcode="JE2 1AB"), total="100.00"),
        [("a", "200", "ZERORATEDOUTPUT", "100.00", "0.00")],
        "100.00",
        id="tax-postcode-prefix-beats-country",
    ),
    pytest.param(
        XERO,
        order(line("a", "1", "100"), address=Address(country="FR"), total="120.00"),
        [("a", "200", "OUTPUT2", "100.00", "20.00")],
        "120.00",
        id="tax-fallback-when-no-rule",
    ),
    pytest.param(
        XERO,
        order(
            line("a", "1", "100"),
            address=Address(country="DE"),
            customer=Customer(company="Muster GmbH", vat_id="DE123456789"),
            total="100.00",
        ),
        [("a", "200", "ECZROUTPUTSERVICES", "100.00", "0.00")],
        "100.00",
        id="tax-eu-b2b-reverse-charge",
    ),
    pytest.param(
        XERO,
        order(
            line("a", "1", "100"),
            address=Address(country="GB"),
            customer=Customer(company="Home Ltd", vat_id="GB123456789"),
            total="120.00",
        ),
        [("a", "200", "OUTPUT2", "100.00", "20.00")],
        "120.00",
        id="tax-home-country-vat-id-is-not-reverse-charge",
    ),
    pytest.param(
        XERO,
        order(line("a", "1", "100"), customer=Customer(name="Charity", tax_exempt=True), total="100.00"),
        [("a", "200", "EXEMPTOUTPUT", "100.00", "0.00")],
        "100.00",
        id="tax-exempt-customer",
    ),
    pytest.param(
        XERO,
        order(line("a", "1", "99.99"), address=Address(country="IE"), inclusive=True, total="99.99"),
        [("a", "200", "OUTPUTIE", "99.99", "18.70")],
        "99.99",
        id="inclusive-23pct",
    ),
]


@pytest.mark.parametrize(("config", "the_order", "expected", "total"), CASES)
def test_invoice_lines(config, the_order, expected, total):
    [decision] = run(config, placed(the_order))
    [invoice] = decision.commands
    assert isinstance(invoice, CreateInvoice)
    assert rows(invoice) == expected
    assert str(invoice.document.total) == total == str(the_order.total)
    doc = invoice.document
    assert doc.total_tax == sum(ln.tax_amount for ln in doc.lines)
    assert doc.line_amount_type == ("inclusive" if the_order.prices_include_tax else "exclusive")


def test_gift_card_redemption_is_a_payment_from_the_liability_never_revenue():
    the_order = order(line("a", "1", "25"), gift_cards=(("gc1", "10.00"),), total="30.00")
    [decision] = run(XERO, placed(the_order))
    invoice, payment = decision.commands
    assert [r[1] for r in rows(invoice)] == ["200"] and invoice.document.total == 30
    assert isinstance(payment, CreatePayment)
    assert (payment.source_id, payment.account_code, str(payment.amount), payment.invoice_source_id) == (
        "giftcard:o1:gc1",
        "801",
        "10.00",
        "order:o1",
    )


def test_multi_currency_carries_currency_and_exchange_rate():
    from decimal import Decimal

    the_order = order(line("a", "1", "10"), currency="EUR", exchange_rate=Decimal("1.17"), total="12.00")
    [decision] = run(XERO, placed(the_order))
    doc = decision.commands[0].document
    assert (doc.currency, doc.exchange_rate) == ("EUR", Decimal("1.17"))


@pytest.mark.parametrize(
    ("customer", "name"),
    [
        pytest.param(Customer(name="Ada", company="Co", email="a@x"), "Ada", id="name"),
        pytest.param(Customer(company="Co", email="a@x"), "Co", id="company"),
        pytest.param(Customer(email="a@x"), "a@x", id="email"),
        pytest.param(Customer(), "Online customer", id="anonymous"),
    ],
)
def test_contact_name_fallback(customer, name):
    [decision] = run(XERO, placed(order(line("a", "1", "10"), customer=customer, total="12.00")))
    contact = decision.commands[0].document.contact
    assert contact.name == name and contact.postcode == "SW1A 1AA"


@pytest.mark.parametrize(
    ("policy", "status", "due", "reference", "number", "day"),
    [
        pytest.param({}, "authorised", "2024-03-01", "Order 1001", None, "2024-03-01", id="defaults"),
        pytest.param(
            {"status": "draft", "due_days": 14, "reference_template": "{channel}/{order_number}"},
            "draft",
            "2024-03-15",
            "web/1001",
            None,
            "2024-03-01",
            id="draft-due-14-days-template",
        ),
        pytest.param(
            {"invoice_number_template": "INV-{order_number}", "timezone": "Pacific/Kiritimati"},
            "authorised",
            "2024-03-02",
            "Order 1001",
            "INV-1001",
            "2024-03-02",
            id="number-template-and-tenant-timezone-date",
        ),
    ],
)
def test_invoice_header_from_policy(policy, status, due, reference, number, day):
    config = uk_config(trigger="placed", **policy)
    [decision] = run(config, placed(order(line("a", "1", "10"), channel="web", total="12.00")))
    invoice = decision.commands[0]
    assert (invoice.status, str(invoice.due_date), invoice.document.reference) == (status, due, reference)
    assert (invoice.document.number, str(invoice.document.date)) == (number, day)


@pytest.mark.parametrize(
    ("vat_id", "country"),
    [
        pytest.param("DE123456789", "DE", id="de"),
        pytest.param("de 123.456-789", "DE", id="de-spaced-lowercase"),
        pytest.param("EL123456789", "GR", id="greece-uses-el"),
        pytest.param("ATU12345678", "AT", id="at"),
        pytest.param("NL123456789B01", "NL", id="nl"),
        pytest.param("FRAB123456789", "FR", id="fr-letters-key"),
        pytest.param("CZ12345678", "CZ", id="generic-format-country"),
        pytest.param("DE", None, id="bare-prefix"),
        pytest.param("DE ", None, id="bare-prefix-space"),
        pytest.param("DE1", None, id="too-short"),
        pytest.param("DE12345678", None, id="de-eight-digits"),
        pytest.param("DE12345678X", None, id="de-letter"),
        pytest.param("ATU1234567", None, id="at-short"),
        pytest.param("IT1234567890", None, id="it-short"),
        pytest.param("CZ12345678901234", None, id="too-long"),
        pytest.param("123456789", None, id="no-prefix"),
        pytest.param("", None, id="empty"),
    ],
)
def test_vat_country_needs_a_plausible_vat_id(vat_id, country):
    assert vat_country(vat_id) == country


def _b2b(vat_id: str, dest: str, home: str = "GB"):
    o = order(
        line("a", "1", "100"),
        address=Address(country=dest),
        customer=Customer(company="Muster GmbH", vat_id=vat_id),
        total="100.00",
    )
    return is_reverse_charge(o, UK_TAX.model_copy(update={"home_country": home}))


@pytest.mark.parametrize(
    ("vat_id", "dest", "home", "expected"),
    [
        pytest.param("DE123456789", "DE", "GB", True, id="other-eu-country"),
        pytest.param("DE", "DE", "GB", False, id="bare-prefix-is-not-a-vat-id"),
        pytest.param("DE12", "DE", "GB", False, id="de-number-too-short"),
        pytest.param("FR12345678901", "DE", "DE", False, id="delivered-in-the-home-country"),
        pytest.param("FR12345678901", "BE", "DE", True, id="foreign-id-to-another-eu-country"),
        pytest.param("DE123456789", "FR", "DE", False, id="home-vat-id"),
        pytest.param("DE123456789", "US", "GB", False, id="destination-outside-the-eu"),
    ],
)
def test_reverse_charge_needs_a_plausible_foreign_vat_id_and_a_foreign_eu_destination(
    vat_id, dest, home, expected
):
    assert _b2b(vat_id, dest, home) is expected


def test_a_bare_vat_prefix_is_charged_the_destination_rate():
    o = order(
        line("a", "1", "100"),
        address=Address(country="DE"),
        customer=Customer(company="Muster GmbH", vat_id="DE"),
        total="120.00",
    )
    [decision] = run(XERO, placed(o))
    assert rows(decision.commands[0]) == [("a", "200", "OUTPUT2", "100.00", "20.00")]


def test_template_fields_are_the_ones_documents_pass():
    from accounting.documents import _fields
    from schemas.tenant import TEMPLATE_FIELDS

    assert set(_fields(order(line("a", "1", "1"), total="1.20"), "o1")) == set(TEMPLATE_FIELDS)
