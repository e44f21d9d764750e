"""Spend / receive money: `PUT` and `GET /BankTransactions` (gateway fees are SPEND ones)."""

from __future__ import annotations

from typing import Any

from tests.unit.xero_sandbox.sandbox_driver import UK


def fee(**over: Any) -> dict[str, Any]:
    """A Stripe fee paid out of the bank account, as the connector sends it."""
    base = {
        "Type": "SPEND",
        "Contact": {"Name": "Stripe"},
        "BankAccount": {"Code": "090"},
        "Date": "2026-03-02",
        "Reference": "stripe p1",
        "CurrencyCode": "GBP",
        "LineAmountTypes": "NoTax",
        "LineItems": [
            {
                "Description": "Stripe fee for payment p1",
                "Quantity": 1,
                "UnitAmount": 1.5,
                "AccountCode": "404",
                "TaxType": "NONE",
                "LineAmount": 1.5,
            }
        ],
    }
    return base | over


def line(**over: Any) -> dict[str, Any]:
    return fee()["LineItems"][0] | over


async def test_spend_money_is_stored_with_totals_and_found_by_reference(sandbox):
    key = {"Idempotency-Key": "fee-1"}
    status, body, _ = await sandbox.api(
        "PUT",
        "BankTransactions",
        json={"BankTransactions": [fee()]},
        params={"summarizeErrors": "false"},
        headers=key,
    )
    assert status == 200, body
    (bt,) = body["BankTransactions"]
    assert (bt["Type"], bt["Status"], bt["StatusAttributeString"]) == ("SPEND", "AUTHORISED", "OK")
    assert bt["BankAccount"]["Code"] == "090" and bt["Contact"]["Name"] == "Stripe"
    assert (bt["SubTotal"], bt["TotalTax"], bt["Total"]) == (1.5, 0, 1.5)
    assert bt["LineItems"][0]["AccountCode"] == "404" and bt["LineItems"][0]["TaxType"] == "NONE"
    org = sandbox.state.orgs[UK]
    (stripe,) = [c for c in org.contacts.values() if c["Name"] == "Stripe"]
    assert stripe["IsSupplier"] is True and not stripe["IsCustomer"]

    again = await sandbox.api(
        "PUT",
        "BankTransactions",
        json={"BankTransactions": [fee()]},
        params={"summarizeErrors": "false"},
        headers=key,
    )
    assert again[0] == 200 and again[2]["Idempotent-Replayed"] == "true"
    assert len(org.bank_transactions) == 1

    status, body, _ = await sandbox.api("GET", "BankTransactions", params={"where": 'Reference=="stripe p1"'})
    assert status == 200 and [b["BankTransactionID"] for b in body["BankTransactions"]] == [
        bt["BankTransactionID"]
    ]
    _, body, _ = await sandbox.api("GET", "BankTransactions", params={"where": 'Reference=="x"'})
    assert body["BankTransactions"] == []
    status, body, _ = await sandbox.api("GET", f"BankTransactions/{bt['BankTransactionID']}")
    assert status == 200 and body["BankTransactions"][0]["Total"] == 1.5
    status, _, _ = await sandbox.api("GET", "BankTransactions/00000000-0000-0000-0000-000000000001")
    assert status == 404

    dump = await sandbox.admin("GET", "state")
    assert [b["Total"] for b in dump["orgs"][UK]["bank_transactions"]] == [1.5]
    logged = [r for r in dump["requests"] if r["path"].endswith("/BankTransactions") and r["method"] == "PUT"]
    assert len(logged) == 2 and logged[0]["body"]["BankTransactions"][0]["Type"] == "SPEND"


async def test_clearing_account_with_payments_enabled_is_allowed(sandbox):
    status, body, _ = await sandbox.api(
        "PUT",
        "BankTransactions",
        json={
            "BankTransactions": [
                fee(
                    BankAccount={"Code": "877"},
                    Type="RECEIVE",
                    LineAmountTypes="Exclusive",
                    LineItems=[line(TaxType="OUTPUT2", UnitAmount=10, LineAmount=10)],
                )
            ]
        },
    )
    assert status == 200, body
    bt = body["BankTransactions"][0]
    assert (bt["Type"], bt["SubTotal"], bt["TotalTax"], bt["Total"]) == ("RECEIVE", 10, 2, 12)


async def test_each_element_is_checked(sandbox):
    cases = {
        "is not a bank account": fee(BankAccount={"Code": "404"}),
        "Bank account could not be found": fee(BankAccount={"Code": "999"}),
        "A Bank Account must be specified": {k: v for k, v in fee().items() if k != "BankAccount"},
        "Account code '999' is not a valid code": fee(LineItems=[line(AccountCode="999")]),
        "has been archived": fee(LineItems=[line(AccountCode="265")]),
        "The TaxType code 'BOGUS' does not exist": fee(LineItems=[line(TaxType="BOGUS")]),
        "does not equal Quantity": fee(LineItems=[line(LineAmount=2)]),
        "does not equal the sum of the line items": fee(Total=1.6),
        "At least one line item": fee(LineItems=[]),
        "A Contact must be specified": {k: v for k, v in fee().items() if k != "Contact"},
        "not supported by this sandbox": fee(Type="SPEND-TRANSFER"),
        "not a valid Bank Transaction Type": fee(Type="PAY"),
        "not a valid status": fee(Status="DELETED"),
        "The currency 'JPY' is not enabled": fee(CurrencyCode="JPY"),
        "Discounts are only supported": fee(LineItems=[line(DiscountRate=10)]),
    }
    status, body, _ = await sandbox.api(
        "PUT",
        "BankTransactions",
        params={"summarizeErrors": "false"},
        json={"BankTransactions": [fee(), *cases.values()]},
    )
    assert status == 200
    ok, *failed = body["BankTransactions"]
    assert ok["StatusAttributeString"] == "OK"
    for expected, element in zip(cases, failed, strict=True):
        assert element["StatusAttributeString"] == "ERROR"
        assert element["BankTransactionID"] == "00000000-0000-0000-0000-000000000000"
        messages = [m["Message"] for m in element["ValidationErrors"]]
        assert any(expected in m for m in messages), (expected, messages)
    assert len(sandbox.state.orgs[UK].bank_transactions) == 1

    status, body, _ = await sandbox.api(
        "PUT", "BankTransactions", json={"BankTransactions": [fee(BankAccount={"Code": "200"})]}
    )
    assert status == 400 and body["Type"] == "ValidationException"
    assert "is not a bank account" in body["Elements"][0]["ValidationErrors"][0]["Message"]
    assert len(sandbox.state.orgs[UK].bank_transactions) == 1


async def test_bank_transactions_need_the_transactions_scope(sandbox):
    await sandbox.connect(scope="openid offline_access accounting.settings accounting.contacts")
    status, _, _ = await sandbox.api("PUT", "BankTransactions", json={"BankTransactions": [fee()]})
    assert status == 401
    assert not sandbox.state.orgs[UK].bank_transactions
