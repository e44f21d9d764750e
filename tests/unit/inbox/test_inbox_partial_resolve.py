"""Partial failures (main document created, a second part failed) are resolved only once the
pending part is bound: by the periodic `resolve_bound` and by a retry's `replay.plan`."""

from __future__ import annotations

from inbox_helpers import T0, invoice

from agents import dead_letters
from connectors.errors import Rejected
from inbox import replay
from schemas.dead_letter import DeadLetter, Reason
from store import bindings
from store import dead_letters as dl


def partial(order: str, pending: str | None) -> DeadLetter:
    text = "invoice X posted but its second part was rejected: Account code '404' is not valid"
    return dead_letters.for_command(
        invoice(order),
        reason_code=Reason.LEDGER_REJECTED,
        reason=text,
        attempts=1,
        at=T0,
        error=Rejected(text, status=200, pending_source_id=pending),
    )


def bind(s, source_id: str, external_id: str) -> None:
    bindings.record(
        s,
        tenant_id="acme-uk",
        ledger="xero",
        source_id=source_id,
        external_id=external_id,
        kind="invoice.create",
        idempotency_key="k",
    )


def test_for_command_takes_resolves_with_from_the_error() -> None:
    assert partial("1", "order:1:f:f1#payment").resolves_with == "order:1:f:f1#payment"
    assert partial("1", None).resolves_with is None
    assert replay.proof_source_id(partial("1", None)) == "order:1:f:f1"
    assert replay.proof_source_id(partial("1", "order:1:f:f1#payment")) == "order:1:f:f1#payment"


def test_resolve_bound_waits_for_the_pending_part(sessions) -> None:
    with sessions.begin() as s:
        dl.upsert(s, partial("1", "order:1:f:f1#payment"))
        dl.upsert(s, partial("2", None))
        bind(s, "order:1:f:f1", "INV-1")  # the main documents are in the ledger
        bind(s, "order:2:f:f1", "INV-2")
    with sessions.begin() as s:
        assert [i.order_id for i in dl.resolve_bound(s)] == ["2"]
    with sessions.begin() as s:
        bind(s, "order:1:f:f1#payment", "PAY-1")  # the replay finished the settling payment
    with sessions.begin() as s:
        assert [i.order_id for i in dl.resolve_bound(s)] == ["1"]


def test_replay_of_a_partial_failure_is_not_resolved_by_the_main_binding(acme) -> None:
    letter = partial("1", "order:1:f:f1#payment")
    plan = replay.plan(letter, bound_external_id="INV-1", old_config=acme, new_config=acme)
    assert plan.action == "publish_command"  # the connector does only the pending part
    plan = replay.plan(
        letter,
        bound_external_id="INV-1",
        old_config=acme,
        new_config=acme,
        resolves_with_external_id="PAY-1",
    )
    assert plan.action == "resolved" and "PAY-1" in plan.note
    whole = partial("2", None)
    plan = replay.plan(whole, bound_external_id="INV-2", old_config=acme, new_config=acme)
    assert plan.action == "resolved"
