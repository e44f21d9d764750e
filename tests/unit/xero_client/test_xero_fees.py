"""Gateway fees: a payment with `fee` / `fee_account_code` also posts a SPEND bank transaction
(`PUT /BankTransactions`), bound as `<payment>#fee`, once; a rejected fee keeps the payment."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connectors.errors import NotFound, Rejected
from connectors.xero import mapper
from connectors.xero.connector import XeroConnector
from store import bindings

TENANT = "shop-1"
CID = "22222222-2222-2222-2222-222222222222"


def bound(sessions: Any, source_id: str) -> str | None:
    with sessions() as s:
        row = bindings.get(s, TENANT, "xero", source_id)
        return row.external_id if row else None


def has_row(sessions: Any, source_id: str) -> bool:
    with sessions() as s:
        return bindings.get(s, TENANT, "xero", source_id) is not None


# ---------------------------------------------------------------- mapper


def test_fee_transaction_shape_and_spec(xero_spec: Any, cmds: Any) -> None:
    cmd = cmds.payment(1, invoice=1, fee="1.50", gateway="stripe")
    element = mapper.fee_transaction(cmd, CID)
    body = mapper.decode(mapper.encode(mapper.bank_transactions_body([element])))
    xero_spec.validate_request("PUT", "/BankTransactions", body)
    xero_spec.validate("BankTransactions", body)
    assert element == {
        "Type": "SPEND",
        "Contact": {"ContactID": CID},
        "BankAccount": {"Code": "090"},
        "Date": "2026-03-02",
        "Reference": "stripe p1",
        "CurrencyCode": "GBP",
        "LineAmountTypes": "NoTax",
        "LineItems": [
            {
                "Description": "Stripe fee for payment p1",
                "Quantity": Decimal(1),
                "UnitAmount": Decimal("1.50"),
                "AccountCode": "404",
                "TaxType": "NONE",
                "LineAmount": Decimal("1.50"),
            }
        ],
    }
    assert b'"UnitAmount":1.50' in mapper.encode(element)
    assert mapper.fee_source_id(cmd) == "payment:1#fee"
    assert mapper.fee_key(cmd) != cmd.idempotency_key and len(mapper.fee_key(cmd)) == 64
    assert (
        mapper.fee_transaction(cmd, CID, tax_type="BASEXCLUDED")["LineItems"][0]["TaxType"] == "BASEXCLUDED"
    )


def test_has_fee_and_gateway_names(cmds: Any) -> None:
    assert mapper.has_fee(cmds.payment(1, invoice=1, fee="0.01"))
    assert not mapper.has_fee(cmds.payment(1, invoice=1, fee="0"))
    assert not mapper.has_fee(cmds.payment(1, invoice=1))
    no_account = cmds.payment(1, invoice=1, fee="1.00").model_copy(update={"fee_account_code": None})
    assert not mapper.has_fee(no_account)
    with pytest.raises(ValueError):
        mapper.fee_transaction(no_account, CID)
    assert [mapper.gateway_name(g) for g in ("stripe", "paypal", "shopify_payments", "my-psp", None)] == [
        "Stripe",
        "PayPal",
        "Shopify Payments",
        "My Psp",
        "Payment gateway",
    ]
    assert mapper.fee_description(cmds.payment(7, invoice=1, fee="1")) == "Payment gateway fee for payment P7"
    assert "IsCustomer" not in mapper.contact(
        mapper.gateway_contact(cmds.payment(1, invoice=1, gateway="stripe")), customer=False
    )


# ---------------------------------------------------------------- connector


async def test_fee_posted_once_as_spend_money_and_replay_skips(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any, xero_spec: Any
) -> None:
    connect()
    pay = cmds.payment(1, invoice=1, fee="1.50", gateway="stripe")
    results = await connector.post(TENANT, [cmds.invoice(1), pay])
    assert all(r.ok for r in results), [r.error for r in results]
    (payment,) = fake.payments
    assert results[1].external_id == payment["PaymentID"] and not results[1].already_bound

    (put,) = fake.api("PUT", "BankTransactions")
    assert put.url.params["summarizeErrors"] == "false"
    body = mapper.decode(put.content)
    xero_spec.validate_request("PUT", "/BankTransactions", body)  # FakeXero checked it too
    stripe = next(c for c in fake.contacts if c["Name"] == "Stripe")
    assert "IsCustomer" not in stripe  # a payee, not a customer
    assert body["BankTransactions"] == [mapper.fee_transaction(pay, stripe["ContactID"])]
    assert put.headers["Idempotency-Key"] == mapper.batch_key(
        [mapper.fee_key(pay)], "bank_transactions", body
    )
    (fee,) = fake.bank_transactions
    assert (fee["Type"], fee["BankAccount"], fee["Total"]) == ("SPEND", {"Code": "090"}, Decimal("1.50"))
    assert bound(sessions, "payment:1") == payment["PaymentID"]
    assert bound(sessions, "payment:1#fee") == fee["BankTransactionID"]

    again = await connector.post(TENANT, [cmds.invoice(1), pay])
    assert all(r.ok and r.already_bound for r in again)
    assert again[1].external_id == payment["PaymentID"]
    assert len(fake.api("PUT", "BankTransactions")) == 1 and len(fake.api("PUT", "Payments")) == 1
    assert len(fake.bank_transactions) == 1


async def test_fees_of_one_post_go_in_one_put_and_the_gateway_contact_is_cached(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    connect()
    batch = [
        cmds.invoice(1),
        cmds.invoice(2),
        cmds.payment(1, invoice=1, fee="1.50", gateway="stripe"),
        cmds.payment(2, invoice=2, fee="0.90", gateway="stripe"),
        cmds.payment(3, invoice=2, amount="0.10", gateway="stripe"),  # no fee
        cmds.payment(4, invoice=9, fee="0.50", gateway="stripe"),  # invoice not posted: no fee either
    ]
    results = await connector.post(TENANT, batch)
    assert [r.ok for r in results] == [True, True, True, True, True, False]
    assert isinstance(results[5].error, NotFound)
    (put,) = fake.api("PUT", "BankTransactions")
    sent = mapper.decode(put.content)["BankTransactions"]
    assert [(b["Reference"], b["LineItems"][0]["UnitAmount"]) for b in sent] == [
        ("stripe p1", Decimal("1.50")),
        ("stripe p2", Decimal("0.90")),
    ]
    assert len({b["Contact"]["ContactID"] for b in sent}) == 1
    assert [c["Name"] for c in fake.contacts].count("Stripe") == 1
    assert 'Name=="Stripe"' in fake.api("GET", "Contacts")[-1].url.params["where"]

    contact_calls = len(fake.api("GET", "Contacts")) + len(fake.api("PUT", "Contacts"))
    more = await connector.post(
        TENANT, [cmds.payment(5, invoice=1, amount="1.00", fee="0.20", gateway="stripe")]
    )
    assert more[0].ok
    assert len(fake.api("GET", "Contacts")) + len(fake.api("PUT", "Contacts")) == contact_calls  # cached
    assert len(fake.bank_transactions) == 3


async def test_rejected_fee_keeps_the_payment_and_a_replay_retries_only_the_fee(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    connect()
    fake.reject_line_accounts.add("404")
    pay = cmds.payment(1, invoice=1, fee="1.50", gateway="stripe")
    results = await connector.post(TENANT, [cmds.invoice(1), pay])
    (payment,) = fake.payments
    err = results[1].error
    assert results[0].ok and isinstance(err, Rejected)
    assert err.message == (
        f"payment {payment['PaymentID']} posted but its fee was rejected: "
        "Account code '404' is not a valid code for this document."
    )
    assert err.messages == ("Account code '404' is not a valid code for this document.",)
    assert results[1].external_id == payment["PaymentID"]
    assert bound(sessions, "payment:1") == payment["PaymentID"]
    assert not has_row(sessions, "payment:1#fee")  # refused: not created, intent dropped
    assert fake.bank_transactions == []

    fake.reject_line_accounts.clear()  # finance fixed the account; the dead letter is replayed
    fake.idem.clear()  # after Xero's 6 minutes (within them the identical request replays the error)
    (retry,) = await connector.post(TENANT, [pay])
    assert retry.ok and not retry.already_bound and retry.external_id == payment["PaymentID"]
    assert len(fake.api("PUT", "Payments")) == 1  # the bound payment is skipped
    assert len(fake.api("GET", "BankTransactions")) == 0  # no intent left: no search
    (fee,) = fake.bank_transactions
    assert bound(sessions, "payment:1#fee") == fee["BankTransactionID"]

    (again,) = await connector.post(TENANT, [pay])
    assert again.ok and again.already_bound and len(fake.bank_transactions) == 1


async def test_crash_after_the_fee_post_recovers_it_by_reference(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any, monkeypatch: Any
) -> None:
    connect()
    original = bindings.record

    def crash_on_fee(*args: Any, **kw: Any) -> Any:
        if kw["source_id"].endswith("#fee"):
            raise RuntimeError("worker killed")
        return original(*args, **kw)

    monkeypatch.setattr(bindings, "record", crash_on_fee)
    pay = cmds.payment(1, invoice=1, fee="1.50", gateway="stripe")
    with pytest.raises(RuntimeError):
        await connector.post(TENANT, [cmds.invoice(1), pay])
    assert len(fake.bank_transactions) == 1 and bound(sessions, "payment:1#fee") is None
    assert has_row(sessions, "payment:1#fee")  # the pending intent
    monkeypatch.setattr(bindings, "record", original)
    fake.idem.clear()  # more than 6 minutes later

    (result,) = await connector.post(TENANT, [pay])
    assert result.ok and result.already_bound  # nothing new was created
    (search,) = fake.api("GET", "BankTransactions")
    assert search.url.params["where"] == 'Reference=="stripe p1"'
    assert len(fake.bank_transactions) == 1 and len(fake.api("PUT", "BankTransactions")) == 1
    assert bound(sessions, "payment:1#fee") == fake.bank_transactions[0]["BankTransactionID"]


async def test_no_fee_no_fee_account_or_failed_payment_posts_no_bank_transaction(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    connect()
    no_account = cmds.payment(2, invoice=1, amount="1.00", fee="0.30").model_copy(
        update={"fee_account_code": None}
    )
    results = await connector.post(
        TENANT,
        [
            cmds.invoice(1),
            cmds.payment(1, invoice=1, amount="1.00"),
            no_account,
            cmds.payment(3, invoice=1, fee="0"),
        ],
    )
    assert all(r.ok for r in results)
    assert fake.api("PUT", "BankTransactions") == [] and not any(
        c["Name"] == "Payment gateway" for c in fake.contacts
    )

    fake.invoices.clear()  # Xero no longer knows the invoice: the payment is refused, so is no fee
    (refused,) = await connector.post(TENANT, [cmds.payment(4, invoice=1, fee="1.00", gateway="stripe")])
    assert isinstance(refused.error, Rejected) and "fee" not in refused.error.message
    assert fake.api("PUT", "BankTransactions") == []
