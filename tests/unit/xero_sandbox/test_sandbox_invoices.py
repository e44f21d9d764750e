"""Invoices and contacts: Xero's arithmetic, validation and batch error reporting."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.xero_sandbox.sandbox_driver import UK, invoice


async def test_exclusive_invoice_totals_and_numbering(sandbox):
    status, body, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]})
    assert status == 200, body
    inv = body["Invoices"][0]
    assert inv["InvoiceNumber"] == "INV-0001" and inv["StatusAttributeString"] == "OK"
    assert (inv["SubTotal"], inv["TotalTax"], inv["Total"]) == (20, 4, 24)
    assert inv["AmountDue"] == 24 and inv["AmountPaid"] == 0
    assert inv["Date"].startswith("/Date(") and inv["DateString"] == "2026-03-01T00:00:00"
    assert inv["LineItems"][0]["LineAmount"] == 20 and inv["LineItems"][0]["TaxAmount"] == 4
    status, body, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]})
    assert body["Invoices"][0]["InvoiceNumber"] == "INV-0002"


async def test_inclusive_tax_is_rounded_per_line(sandbox):
    lines = [
        {
            "Description": "Tee",
            "Quantity": 3,
            "UnitAmount": 19.99,
            "AccountCode": "200",
            "TaxType": "OUTPUT2",
        },
        {"Description": "Cap", "Quantity": 1, "UnitAmount": 9.99, "AccountCode": "200", "TaxType": "OUTPUT2"},
    ]
    status, body, _ = await sandbox.api(
        "PUT", "Invoices", json={"Invoices": [invoice(LineAmountTypes="Inclusive", LineItems=lines)]}
    )
    assert status == 200, body
    inv = body["Invoices"][0]
    # 59.97 incl. 20%: tax 9.995 -> 10.00 ; 9.99 incl.: tax 1.665 -> 1.67
    assert [li["TaxAmount"] for li in inv["LineItems"]] == [10.0, 1.67]
    assert [li["LineAmount"] for li in inv["LineItems"]] == [59.97, 9.99]
    assert (inv["SubTotal"], inv["TotalTax"], inv["Total"]) == (58.29, 11.67, 69.96)


async def test_totals_are_serialised_with_two_decimals(sandbox):
    resp = await sandbox.http.put(
        "/api.xro/2.0/Invoices",
        json={"Invoices": [invoice()]},
        headers={"Authorization": f"Bearer {sandbox.bearer}", "xero-tenant-id": UK},
    )
    text = await resp.text()
    assert '"Total":24.00' in text and '"SubTotal":20.00' in text and '"Quantity":2.0000' in text


async def test_discount_rate_and_no_tax(sandbox):
    lines = [
        {
            "Description": "Bundle",
            "Quantity": 3,
            "UnitAmount": "10.00",
            "DiscountRate": 15,
            "AccountCode": "200",
        }
    ]
    status, body, _ = await sandbox.api(
        "PUT", "Invoices", json={"Invoices": [invoice(LineAmountTypes="NoTax", LineItems=lines)]}
    )
    inv = body["Invoices"][0]
    assert status == 200 and inv["LineItems"][0]["LineAmount"] == 25.5
    assert inv["TotalTax"] == 0 and inv["Total"] == 25.5 and inv["IsDiscounted"] is True


async def test_summarize_errors_false_returns_every_element(sandbox):
    bad = invoice(
        LineItems=[
            {"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "999", "TaxType": "OUTPUT2"}
        ]
    )
    status, body, _ = await sandbox.api(
        "PUT", "Invoices", params={"summarizeErrors": "false"}, json={"Invoices": [invoice(), bad]}
    )
    assert status == 200
    ok, failed = body["Invoices"]
    assert ok["StatusAttributeString"] == "OK" and ok["HasErrors"] is False
    assert failed["StatusAttributeString"] == "ERROR" and failed["HasErrors"] is True
    assert "Account code '999' is not a valid code" in failed["ValidationErrors"][0]["Message"]
    assert len(sandbox.state.orgs[UK].invoices) == 1


async def test_summarized_400_envelope_still_creates_valid_elements(sandbox):
    bad = invoice(Type="NOPE")
    status, body, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice(), bad]})
    assert status == 400
    assert body["ErrorNumber"] == 10 and body["Type"] == "ValidationException"
    assert body["Message"] == "A validation exception occurred"
    assert len(body["Elements"]) == 1 and body["Elements"][0]["ValidationErrors"]
    assert len(sandbox.state.orgs[UK].invoices) == 1


async def test_inactive_tax_rate_rejected_until_reactivated(sandbox):
    inv = invoice(
        LineItems=[
            {"Description": "x", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200", "TaxType": "OUTPUT3"}
        ]
    )
    status, body, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [inv]})
    assert status == 400
    message = body["Elements"][0]["ValidationErrors"][0]["Message"]
    assert "OUTPUT3" in message and "not active" in message
    await sandbox.admin("POST", f"orgs/{UK}/taxrates", {"TaxType": "OUTPUT3", "Status": "ACTIVE"})
    status, body, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [inv]})
    assert status == 200 and body["Invoices"][0]["TotalTax"] == 1.75


async def test_other_validation_messages(sandbox):
    cases = {
        "Account code '265' has been archived": invoice(
            LineItems=[{"Description": "x", "UnitAmount": 1, "AccountCode": "265", "TaxType": "NONE"}]
        ),
        "does not exist": invoice(
            LineItems=[{"Description": "x", "UnitAmount": 1, "AccountCode": "200", "TaxType": "BOGUS"}]
        ),
        "currency 'JPY' is not enabled": invoice(CurrencyCode="JPY"),
        "A Contact must be specified": invoice(Contact={}),
        "is not a valid LineAmountTypes": invoice(LineAmountTypes="Gross"),
        "could not be found": invoice(Contact={"ContactID": "00000000-0000-0000-0000-000000000001"}),
    }
    for expected, payload in cases.items():
        status, body, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [payload]})
        messages = [e["Message"] for e in body["Elements"][0]["ValidationErrors"]]
        assert status == 400 and any(expected in m for m in messages), (expected, messages)


async def test_invoice_number_unique_and_post_updates(sandbox):
    status, body, _ = await sandbox.api(
        "PUT",
        "Invoices",
        json={"Invoices": [invoice(InvoiceNumber="WEB-1001", Status="DRAFT", Reference="order-1")]},
    )
    created = body["Invoices"][0]
    status, body, _ = await sandbox.api(
        "PUT", "Invoices", json={"Invoices": [invoice(InvoiceNumber="WEB-1001")]}
    )
    assert status == 400
    assert body["Elements"][0]["ValidationErrors"][0]["Message"] == "Invoice # must be unique."
    status, body, _ = await sandbox.api(
        "POST",
        "Invoices",
        json={
            "Invoices": [{"InvoiceID": created["InvoiceID"], "Status": "AUTHORISED", "Reference": "order-1b"}]
        },
    )
    assert status == 200
    updated = body["Invoices"][0]
    assert updated["InvoiceID"] == created["InvoiceID"] and updated["Status"] == "AUTHORISED"
    assert updated["Total"] == created["Total"] and updated["Reference"] == "order-1b"
    assert len(sandbox.state.orgs[UK].invoices) == 1


async def test_get_invoices_filters(sandbox):
    await sandbox.api(
        "PUT",
        "Invoices",
        json={"Invoices": [invoice(Reference="order-7"), invoice(Reference="order-8", Status="DRAFT")]},
    )
    _, body, _ = await sandbox.api("GET", "Invoices", params={"where": 'Reference=="order-7"'})
    assert [i["Reference"] for i in body["Invoices"]] == ["order-7"]
    number = body["Invoices"][0]["InvoiceNumber"]
    _, body, _ = await sandbox.api("GET", "Invoices", params={"InvoiceNumbers": number})
    assert len(body["Invoices"]) == 1
    _, body, _ = await sandbox.api("GET", "Invoices", params={"Statuses": "DRAFT,SUBMITTED"})
    assert [i["Reference"] for i in body["Invoices"]] == ["order-8"]
    ident = body["Invoices"][0]["InvoiceID"]
    status, body, _ = await sandbox.api("GET", f"Invoices/{ident}")
    assert status == 200 and body["Invoices"][0]["InvoiceID"] == ident
    status, _, _ = await sandbox.api("GET", "Invoices/00000000-0000-0000-0000-000000000009")
    assert status == 404
    status, body, _ = await sandbox.api("GET", "Invoices", params={"page": "1"})
    assert body["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 1, "itemCount": 2}
    status, body, _ = await sandbox.api("GET", "Invoices", params={"where": "Total > 5"})
    assert status == 400 and body["Type"] == "QueryParseException"


async def test_contacts_unique_name_and_where(sandbox):
    status, body, _ = await sandbox.api(
        "PUT", "Contacts", json={"Contacts": [{"Name": "Grace Hopper", "EmailAddress": "grace@example.com"}]}
    )
    assert status == 200
    status, body, _ = await sandbox.api("PUT", "Contacts", json={"Contacts": [{"Name": "Grace Hopper"}]})
    assert status == 400
    assert "is already assigned to another contact" in (body["Elements"][0]["ValidationErrors"][0]["Message"])
    _, body, _ = await sandbox.api("GET", "Contacts", params={"where": 'EmailAddress=="grace@example.com"'})
    assert [c["Name"] for c in body["Contacts"]] == ["Grace Hopper"]
    contact_id = body["Contacts"][0]["ContactID"]
    status, body, _ = await sandbox.api(
        "PUT", "Invoices", json={"Invoices": [invoice(Contact={"ContactID": contact_id})]}
    )
    assert status == 200 and body["Invoices"][0]["Contact"]["Name"] == "Grace Hopper"
    status, body, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]})
    _, body, _ = await sandbox.api("GET", "Contacts", params={"where": 'Name=="Ada Lovelace"'})
    assert len(body["Contacts"]) == 1 and body["Contacts"][0]["IsCustomer"] is True


async def test_contacts_bulk_lookup_with_or_and_bulk_create(sandbox):
    """What the connector does per batch: one PUT of many contacts (summarizeErrors=false: a
    taken name fails only its element), then `where` lookups joining emails and names by OR;
    quoted values may contain OR/AND and escaped quotes."""
    contacts = [
        {"Name": "Grace Hopper", "EmailAddress": "grace@example.com"},
        {"Name": "Black or White Ltd"},
        {"Name": 'Ada "Countess" Lovelace', "EmailAddress": "ada@example.com"},
        {"Name": "Grace Hopper", "EmailAddress": "other@example.com"},
    ]
    status, body, _ = await sandbox.api(
        "PUT", "Contacts", json={"Contacts": contacts}, params={"summarizeErrors": "false"}
    )
    assert status == 200
    assert [c["HasValidationErrors"] for c in body["Contacts"]] == [False, False, False, True]
    assert body["Contacts"][3]["StatusAttributeString"] == "ERROR"
    assert "already assigned" in body["Contacts"][3]["ValidationErrors"][0]["Message"]
    assert len(sandbox.state.orgs[UK].contacts) == 3

    where = (
        'EmailAddress=="grace@example.com" OR EmailAddress=="nobody@example.com" OR '
        'Name=="Black or White Ltd" OR Name=="Ada \\"Countess\\" Lovelace"'
    )
    status, body, _ = await sandbox.api("GET", "Contacts", params={"where": where})
    assert status == 200
    assert sorted(c["Name"] for c in body["Contacts"]) == [
        'Ada "Countess" Lovelace',
        "Black or White Ltd",
        "Grace Hopper",
    ]
    _, body, _ = await sandbox.api("GET", "Contacts", params={"where": 'Name=="Black"'})
    assert body["Contacts"] == []  # "Black or White Ltd" was not split into two clauses


async def test_tax_rates_and_accounts(sandbox):
    _, body, _ = await sandbox.api("GET", "TaxRates", params={"where": 'Status=="ACTIVE"'})
    types = {t["TaxType"]: t for t in body["TaxRates"]}
    assert "OUTPUT3" not in types and types["OUTPUT2"]["EffectiveRate"] == 20
    assert types["ECZROUTPUTSERVICES"]["Name"] == "Zero Rated EC Services"
    _, body, _ = await sandbox.api("GET", "Accounts")
    accounts = {a["Code"]: a for a in body["Accounts"]}
    assert accounts["090"]["Type"] == "BANK" and accounts["877"]["EnablePaymentsToAccount"]


async def test_scope_is_enforced(make_sandbox):
    driver = await make_sandbox()
    await driver.connect(scope="offline_access accounting.transactions")
    assert (await driver.api("GET", "Invoices"))[0] == 200
    assert (await driver.api("GET", "TaxRates"))[0] == 401


async def test_decimal_parsing_is_exact(sandbox):
    lines = [
        {"Description": "x", "Quantity": 1, "UnitAmount": 0.1, "AccountCode": "200", "TaxType": "NONE"}
        for _ in range(3)
    ]
    _, body, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice(LineItems=lines)]})
    stored = next(iter(sandbox.state.orgs[UK].invoices.values()))
    assert stored["Total"] == Decimal("0.30") and body["Invoices"][0]["Total"] == 0.3
