"""XeroConnector.post(): batches, bindings, replay, partial failure, crash recovery, errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.errors import AuthRevoked, NotFound, RateLimited, Rejected, Transient
from connectors.protocol import LedgerConnector
from connectors.xero import mapper
from connectors.xero.connector import XeroConnector
from store import bindings, connections

TENANT = "shop-1"


def bound(sessions: Any, source_id: str) -> str | None:
    with sessions() as s:
        row = bindings.get(s, TENANT, "xero", source_id)
        return row.external_id if row else None


def test_implements_protocol(connector: XeroConnector) -> None:
    assert isinstance(connector, object)
    proto: LedgerConnector = connector
    assert (proto.ledger, proto.max_batch) == ("xero", 50)


async def test_batch_posts_once_and_binds(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    connect()
    batch = [cmds.invoice(n) for n in range(1, 4)]
    results = await connector.post(TENANT, batch)
    puts = fake.api("PUT", "Invoices")
    assert len(puts) == 1
    assert puts[0].url.params["summarizeErrors"] == "false" and puts[0].url.params["unitdp"] == "4"
    assert puts[0].headers["Idempotency-Key"] == connector_batch_key(batch, puts[0])
    assert [r.ok for r in results] == [True] * 3
    assert [r.idempotency_key for r in results] == [c.idempotency_key for c in batch]
    assert [bound(sessions, c.source_id) for c in batch] == [r.external_id for r in results]
    assert len(fake.contacts) == 1  # one customer, created once, then cached
    assert len(fake.api("GET", "Contacts")) == 1  # one lookup by email; then one create

    again = await connector.post(TENANT, batch)  # replay: bindings win, no second PUT
    assert len(fake.api("PUT", "Invoices")) == 1
    assert all(r.already_bound for r in again)
    assert [r.external_id for r in again] == [r.external_id for r in results]
    assert len(fake.invoices) == 3
    assert connector.quota(TENANT).minute_remaining == 59 and connector.quota(TENANT).day_remaining == 4990


def connector_batch_key(batch: list[Any], request: httpx.Request, operation: str = "invoices") -> str:
    """The key the connector must send: members' keys + the body exactly as sent."""
    body = mapper.decode(request.content)
    assert mapper.encode(body) == request.content  # the hashed body is byte for byte the sent one
    return mapper.batch_key([c.idempotency_key for c in batch], operation, body)


async def test_partial_failure_gives_per_element_results(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    connect()
    fake.reject_references.add("#2")
    results = await connector.post(TENANT, [cmds.invoice(1), cmds.invoice(2), cmds.invoice(3)])
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, Rejected)
    assert results[1].error.messages == ("Account code '999' is not a valid code.",)
    assert bound(sessions, "order:2") is None
    with sessions() as s:  # the failed element's intent is dropped: no search on the next attempt
        assert bindings.get(s, TENANT, "xero", "order:2") is None
    fake.reject_references.clear()
    retry = await connector.post(TENANT, [cmds.invoice(2)])
    assert retry[0].ok and not retry[0].already_bound
    assert len(fake.api("GET", "Invoices")) == 0


async def test_crash_after_post_before_binding_creates_no_duplicate(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any, monkeypatch: Any
) -> None:
    connect()
    batch = [cmds.invoice(1), cmds.invoice(2)]
    original = bindings.record

    def crash(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("worker killed")

    monkeypatch.setattr(bindings, "record", crash)
    with pytest.raises(RuntimeError):
        await connector.post(TENANT, batch)
    assert len(fake.invoices) == 2 and bound(sessions, "order:1") is None
    monkeypatch.setattr(bindings, "record", original)
    fake.idem.clear()  # more than 6 minutes later: Xero's idempotency cache is gone

    results = await connector.post(TENANT, [cmds.invoice(3), *batch])  # a different batch, even
    assert len(fake.invoices) == 3  # only order:3 is new
    assert [r.already_bound for r in results] == [False, True, True]
    assert {results[1].external_id, results[2].external_id} == {i["InvoiceID"] for i in fake.invoices[:2]}
    assert len(fake.api("GET", "Invoices")) == 1  # one search for the two pending intents


async def test_credit_note_allocates_or_waits_for_invoice(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    connect()
    early = await connector.post(TENANT, [cmds.credit_note(1, invoice=1)])
    assert isinstance(early[0].error, NotFound) and "not posted yet" in early[0].error.message
    assert fake.api("PUT", "CreditNotes") == []

    results = await connector.post(TENANT, [cmds.invoice(1), cmds.credit_note(1, invoice=1)])
    assert all(r.ok for r in results)
    (note,) = fake.credit_notes
    assert note["Type"] == "ACCRECCREDIT" and results[1].external_id == note["CreditNoteID"]
    assert note["Allocations"][0]["Invoice"]["InvoiceID"] == results[0].external_id
    assert note["Allocations"][0]["Amount"] == Decimal("10.00")


async def test_payments_and_sales_receipts(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    connect()
    results = await connector.post(
        TENANT, [cmds.invoice(1), cmds.payment(1, invoice=1), cmds.payment(2, invoice=9), cmds.receipt(7)]
    )
    assert results[0].ok and results[1].ok and results[3].ok
    assert isinstance(results[2].error, NotFound)
    assert len(fake.api("PUT", "Payments")) == 2  # the settling payment, then the batch's payments
    receipt_invoice = next(i for i in fake.invoices if i["Reference"] == "#7")
    assert (
        receipt_invoice["Status"] == "AUTHORISED" and results[3].external_id == receipt_invoice["InvoiceID"]
    )
    settled = [p for p in fake.payments if p["Invoice"]["InvoiceID"] == receipt_invoice["InvoiceID"]]
    assert settled[0]["Account"] == {"Code": "090"} and settled[0]["Amount"] == receipt_invoice["Total"]
    assert bound(sessions, "order:7#payment") == settled[0]["PaymentID"]
    assert bound(sessions, "payment:1") == results[1].external_id

    replay = await connector.post(TENANT, [cmds.receipt(7), cmds.payment(1, invoice=1)])
    assert all(r.already_bound for r in replay) and len(fake.payments) == 2


async def test_upsert_contact_binds(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    connect()
    (result,) = await connector.post(TENANT, [cmds.contact(1)])
    assert result.ok and result.external_id == fake.contacts[0]["ContactID"]
    assert bound(sessions, "contact:1") == result.external_id


async def test_batch_level_errors_are_raised(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    connect()
    fake.fail_next.append(fake.json({}, 429, {"X-Rate-Limit-Problem": "minute", "Retry-After": "7"}))
    with pytest.raises(RateLimited) as info:
        await connector.post(TENANT, [cmds.invoice(1)])
    assert info.value.retry_after == 7
    fake.fail_next.append(httpx.Response(503, text="down"))
    with pytest.raises(Transient):
        await connector.post(TENANT, [cmds.invoice(1)])


async def test_daily_limit_parks_the_connection(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    connect()
    fake.fail_next.append(fake.json({}, 429, {"X-Rate-Limit-Problem": "day", "Retry-After": "3600"}))
    with pytest.raises(RateLimited):
        await connector.post(TENANT, [cmds.invoice(1)])
    with sessions() as s:
        assert connections.get(s, TENANT, "xero").day_parked_until is not None  # type: ignore[union-attr]


async def test_401_refreshes_once_and_repeats(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    issued = connect()
    fake.access_tokens.discard(issued["access_token"])  # expired early at Xero
    results = await connector.post(TENANT, [cmds.invoice(1)])
    assert results[0].ok and fake.token_calls == 1


async def test_403_marks_needs_reconnect(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    connect()
    fake.fail_next.append(fake.json({"Type": "AuthorizationUnsuccessful"}, 403))
    with pytest.raises(AuthRevoked):
        await connector.post(TENANT, [cmds.invoice(1)])
    with sessions() as s:
        assert connections.get(s, TENANT, "xero").status == "needs_reconnect"  # type: ignore[union-attr]


async def test_tax_rates_and_accounts(connector: XeroConnector, connect: Any) -> None:
    connect()
    rates = await connector.tax_rates(TENANT)
    assert [(r.code, r.rate, r.active) for r in rates] == [
        ("OUTPUT2", Decimal("20"), True),
        ("OLD", Decimal("17.5"), False),
    ]
    accounts = await connector.accounts(TENANT)
    assert [(a.code, a.type, a.accepts_payments) for a in accounts] == [
        ("200", "REVENUE", False),
        ("090", "BANK", True),
    ]


async def test_rejects_foreign_or_oversized_batches(connector: XeroConnector, cmds: Any) -> None:
    with pytest.raises(ValueError):
        await connector.post("other-tenant", [cmds.invoice(1)])
    with pytest.raises(ValueError):
        await connector.post(TENANT, [cmds.invoice(n) for n in range(51)])


# ---------------------------------------------------------------- contacts in bulk


def contact_ids(request: httpx.Request) -> list[str]:
    return [i["Contact"]["ContactID"] for i in mapper.decode(request.content)["Invoices"]]


def wheres(fake: Any) -> list[str]:
    return [r.url.params["where"] for r in fake.api("GET", "Contacts")]


async def test_fifty_new_customers_cost_two_lookups_and_one_create(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    """50 invoices, 50 new customers: 2 × GET (25 emails each) + 1 PUT /Contacts, not 50 × 3."""
    connect()
    batch = [cmds.invoice(n, email=f"buyer{n}@example.com", name=f"Buyer {n}") for n in range(50)]
    results = await connector.post(TENANT, batch)
    assert all(r.ok for r in results)
    assert len(fake.api("GET", "Contacts")) == 2
    assert [w.count(" OR ") + 1 for w in wheres(fake)] == [25, 25]
    assert all(w.count("EmailAddress==") == 25 for w in wheres(fake))
    (put,) = fake.api("PUT", "Contacts")
    assert put.url.params["summarizeErrors"] == "false"
    sent = mapper.decode(put.content)["Contacts"]
    assert [c["Name"] for c in sent] == [f"Buyer {n}" for n in range(50)]
    key = put.headers["Idempotency-Key"]
    assert len(key) == 64 and key == mapper.batch_key(
        [connector_member(c["Name"], c["EmailAddress"]) for c in sent], "contacts", {"Contacts": sent}
    )
    by_email = {c["EmailAddress"]: c["ContactID"] for c in fake.contacts}
    (invoices,) = fake.api("PUT", "Invoices")
    assert contact_ids(invoices) == [by_email[f"buyer{n}@example.com"] for n in range(50)]

    # the same customers again: all cached, no contact call at all
    again = [cmds.invoice(n + 100, email=f"buyer{n}@example.com", name=f"Buyer {n}") for n in range(50)]
    assert all(r.ok for r in await connector.post(TENANT, again))
    assert len(fake.api("GET", "Contacts")) == 2 and len(fake.api("PUT", "Contacts")) == 1
    assert len(fake.contacts) == 50


def connector_member(name: str, email: str) -> str:
    import hashlib

    return hashlib.sha256("\x1f".join((TENANT, "contact", name, email)).encode()).hexdigest()


async def test_existing_contacts_are_found_by_email_or_name_and_repeats_share_one(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    """Known email → that contact; no email → by name, in the same lookup; the same customer
    twice in a batch (by email, or by name with another email) → one contact, created once."""
    connect()
    fake.contacts += [
        {
            "ContactID": "c-old",
            "Name": "Old Buyer",
            "EmailAddress": "OLD@example.com",
            "ContactStatus": "ACTIVE",
        },
        {"ContactID": "c-noemail", "Name": "Walk In", "ContactStatus": "ACTIVE"},
        {
            "ContactID": "c-gone",
            "Name": "Gone",
            "EmailAddress": "gone@example.com",
            "ContactStatus": "ARCHIVED",
        },
    ]
    batch = [
        cmds.invoice(1, email="old@example.com", name="Old Buyer"),
        cmds.invoice(2, email=None, name="Walk In"),
        cmds.invoice(3, email="new@example.com", name="New Buyer"),
        cmds.invoice(4, email="new@example.com", name="New Buyer"),
        cmds.invoice(5, email="other@example.com", name="New Buyer"),  # same name: same contact
        cmds.invoice(6, email="gone@example.com", name="Gone Again"),  # archived: not reused
    ]
    results = await connector.post(TENANT, batch)
    assert all(r.ok for r in results)
    (where,) = wheres(fake)
    assert where.count("EmailAddress==") == 4 and 'Name=="Walk In"' in where
    (put,) = fake.api("PUT", "Contacts")
    assert [c["Name"] for c in mapper.decode(put.content)["Contacts"]] == ["New Buyer", "Gone Again"]
    new_id = next(c["ContactID"] for c in fake.contacts if c["Name"] == "New Buyer")
    gone_again = next(c["ContactID"] for c in fake.contacts if c["Name"] == "Gone Again")
    (invoices,) = fake.api("PUT", "Invoices")
    assert contact_ids(invoices) == ["c-old", "c-noemail", new_id, new_id, new_id, gone_again]


async def test_taken_name_uses_that_contact_and_a_refused_one_rejects_only_its_documents(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    """In the one PUT /Contacts: "Ann Smith" exists with another email → Xero refuses the
    element (unique names) → one lookup by name, that contact is used; "Bad Name" is refused
    for another reason → its two invoices are Rejected with Xero's message, the rest post."""
    connect()
    fake.contacts.append(
        {
            "ContactID": "c-ann",
            "Name": "Ann Smith",
            "EmailAddress": "ann@old.example",
            "ContactStatus": "ACTIVE",
        }
    )
    fake.reject_contact_names["Bad Name"] = "The contact name must not contain <>."
    batch = [
        cmds.invoice(1, email="ann@example.com", name="Ann Smith"),
        cmds.invoice(2, email="bad@example.com", name="Bad Name"),
        cmds.invoice(3, email="zed@example.com", name="Zed"),
        cmds.invoice(4, email="bad@example.com", name="Bad Name"),
    ]
    results = await connector.post(TENANT, batch)
    assert [r.ok for r in results] == [True, False, True, False]
    for r in (results[1], results[3]):
        assert isinstance(r.error, Rejected)
        assert r.error.messages == ("The contact name must not contain <>.",)
    assert len(fake.api("PUT", "Contacts")) == 1
    assert wheres(fake)[1:] == ['Name=="Ann Smith" OR Name=="Bad Name"']  # after the refusals
    (invoices,) = fake.api("PUT", "Invoices")
    zed = next(c["ContactID"] for c in fake.contacts if c["Name"] == "Zed")
    assert contact_ids(invoices) == ["c-ann", zed]  # the refused contact's documents are not sent

    fake.reject_contact_names.clear()  # not cached: the next attempt tries again
    retry = await connector.post(TENANT, [batch[1]])
    assert retry[0].ok and any(c["Name"] == "Bad Name" for c in fake.contacts)


async def test_whole_contacts_call_rejected_rejects_the_documents_needing_new_contacts(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    connect()
    fake.contacts.append(
        {
            "ContactID": "c-ann",
            "Name": "Ann Smith",
            "EmailAddress": "ann@example.com",
            "ContactStatus": "ACTIVE",
        }
    )
    envelope = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
    }
    fake.fail_next += [fake.json({"Contacts": []}), fake.json(envelope, 400)]  # the GET, then the PUT
    results = await connector.post(
        TENANT, [cmds.invoice(1), cmds.invoice(2, email="x@example.com", name="X")]
    )
    assert [r.ok for r in results] == [False, False]  # the GET was answered empty: both needed creating
    assert all(isinstance(r.error, Rejected) for r in results)
    assert fake.api("PUT", "Invoices") == []


# ---------------------------------------------------------------- batch key covers the body


async def test_corrected_replay_under_the_same_keys_posts_and_a_repeat_replays(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    """The dead-letter inbox re-maps a tax code and re-posts the same command (same idempotency
    key) within Xero's 6 minutes: the body differs, so the batch key does, and Xero processes it
    (with a members-only key the fake, like Xero, would answer 400 "key already used")."""
    connect()
    fake.reject_tax_types.add("OUTPUT2")
    original = cmds.invoice(1)
    (first,) = await connector.post(TENANT, [original])
    assert isinstance(first.error, Rejected) and "OUTPUT2" in first.error.message

    (repeat,) = await connector.post(TENANT, [original])  # the identical request: Xero replays
    puts = fake.api("PUT", "Invoices")
    assert puts[1].headers["Idempotency-Key"] == puts[0].headers["Idempotency-Key"]
    assert isinstance(repeat.error, Rejected) and repeat.error.messages == first.error.messages
    assert fake.invoices == []

    doc = original.document
    lines = tuple(line.model_copy(update={"tax_code": "EXEMPTOUTPUT"}) for line in doc.lines)
    corrected = original.model_copy(update={"document": doc.model_copy(update={"lines": lines})})
    assert corrected.idempotency_key == original.idempotency_key
    (fixed,) = await connector.post(TENANT, [corrected])
    assert fixed.ok, fixed.error
    puts = fake.api("PUT", "Invoices")
    assert puts[2].headers["Idempotency-Key"] != puts[0].headers["Idempotency-Key"]
    assert puts[2].headers["Idempotency-Key"] == connector_batch_key([corrected], puts[2])
    assert [i["InvoiceID"] for i in fake.invoices] == [fixed.external_id]
    assert bound(sessions, "order:1") == fixed.external_id
