"""XeroConnector.post(): duplicates within one batch, and commands whose second part failed
(fee, allocation, a sales receipt's settling payment): the error names the pending binding and
a replay finishes only that part."""

from __future__ import annotations

from typing import Any

from connectors.errors import Rejected
from connectors.xero.connector import XeroConnector
from store import bindings

TENANT = "shop-1"


def bound(sessions: Any, source_id: str) -> str | None:
    with sessions() as s:
        row = bindings.get(s, TENANT, "xero", source_id)
        return row.external_id if row else None


# --------------------------------------------------------------------------- duplicates


async def test_the_same_command_twice_in_a_batch_makes_one_invoice(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    connect()
    c = cmds.invoice(1)
    results = await connector.post(TENANT, [c, c])
    assert len(fake.invoices) == 1
    assert [r.ok for r in results] == [True, True]
    assert results[0] == results[1]
    assert results[0].external_id == fake.invoices[0]["InvoiceID"]


async def test_a_second_key_for_the_same_source_in_a_batch_is_already_bound(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    connect()
    first = cmds.invoice(1)
    replayed = first.model_copy(update={"idempotency_key": "remapped-replay-key"})
    results = await connector.post(TENANT, [first, replayed, cmds.invoice(2)])
    assert len(fake.invoices) == 2
    assert [r.ok for r in results] == [True, True, True]
    assert results[1].already_bound and results[1].external_id == results[0].external_id
    assert results[1].idempotency_key == "remapped-replay-key"


async def test_duplicate_payments_in_a_batch_pay_once(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    connect()
    pay = cmds.payment(1, invoice=1)
    results = await connector.post(TENANT, [cmds.invoice(1), pay, pay])
    assert len(fake.payments) == 1 and all(r.ok for r in results)


# --------------------------------------------------------------------------- partial failures


async def test_rejected_fee_names_the_pending_fee_binding(
    connector: XeroConnector, connect: Any, fake: Any, cmds: Any
) -> None:
    connect()
    fake.reject_line_accounts.add("404")
    pay = cmds.payment(1, invoice=1, fee="1.50", gateway="stripe")
    results = await connector.post(TENANT, [cmds.invoice(1), pay])
    assert isinstance(results[1].error, Rejected)
    assert results[1].error.pending_source_id == "payment:1#fee"
    assert results[0].error is None


async def test_rejected_allocation_names_its_binding_and_a_replay_allocates_only(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    connect()
    fake.reject_allocations = "The amount exceeds the outstanding amount on the invoice."
    note = cmds.credit_note(1, invoice=1)
    results = await connector.post(TENANT, [cmds.invoice(1), note])
    (cn,) = fake.credit_notes
    err = results[1].error
    assert isinstance(err, Rejected) and err.pending_source_id == "refund:1#allocation"
    assert "created but its allocation was rejected" in err.message
    assert bound(sessions, "refund:1") == cn["CreditNoteID"]
    assert bound(sessions, "refund:1#allocation") is None
    assert cn["Allocations"] == []

    fake.reject_allocations = None  # finance fixed it; the dead letter is replayed
    fake.idem.clear()
    (retry,) = await connector.post(TENANT, [note])
    assert retry.ok and not retry.already_bound and retry.external_id == cn["CreditNoteID"]
    assert len(fake.credit_notes) == 1 and len(fake.api("PUT", "CreditNotes")) == 1
    assert len(cn["Allocations"]) == 1
    assert bound(sessions, "refund:1#allocation") == cn["CreditNoteID"]

    (again,) = await connector.post(TENANT, [note])
    assert again.ok and again.already_bound and len(cn["Allocations"]) == 1
    assert len(fake.api("GET", f"CreditNotes/{cn['CreditNoteID']}")) == 1  # bound: no second read


async def test_allocated_note_without_allocation_binding_is_not_allocated_twice(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    """A note bound by an older version (no `#allocation` row) whose allocation went through."""
    connect()
    note = cmds.credit_note(1, invoice=1)
    await connector.post(TENANT, [cmds.invoice(1), note])
    with sessions.begin() as s:
        s.delete(bindings.get(s, TENANT, "xero", "refund:1#allocation"))
    (cn,) = fake.credit_notes
    (replay,) = await connector.post(TENANT, [note])
    assert replay.ok and replay.already_bound
    assert len(cn["Allocations"]) == 1
    assert bound(sessions, "refund:1#allocation") == cn["CreditNoteID"]


async def test_sales_receipt_whose_settling_payment_failed_names_the_payment_binding(
    connector: XeroConnector, connect: Any, fake: Any, sessions: Any, cmds: Any
) -> None:
    connect()

    def refuse_payments(request: Any) -> None:
        if request.method == "PUT" and request.url.path.endswith("/Payments"):
            message = "Payment amount exceeds the amount outstanding"
            fake.fail_next.append(
                fake.json(
                    {
                        "ErrorNumber": 10,
                        "Type": "ValidationException",
                        "Message": "A validation exception occurred",
                        "Elements": [{"ValidationErrors": [{"Message": message}]}],
                    },
                    400,
                )
            )

    fake.on_api_call = refuse_payments
    receipt = cmds.receipt(7)
    (result,) = await connector.post(TENANT, [receipt])
    (invoice,) = fake.invoices
    assert result.error is not None and result.error.pending_source_id == "order:7#payment"
    assert result.external_id == invoice["InvoiceID"]
    assert bound(sessions, "order:7") == invoice["InvoiceID"]

    fake.on_api_call = None
    (retry,) = await connector.post(TENANT, [receipt])
    assert retry.ok and len(fake.invoices) == 1 and len(fake.payments) == 1
    assert bound(sessions, "order:7#payment") == fake.payments[0]["PaymentID"]
