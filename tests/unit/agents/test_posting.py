"""`Poster` scheduling with a scripted fake connector (the real XeroConnector is covered by
tests/unit/xero_client and by the integration tests against the sandbox).

What is checked: minute 429 → wait Retry-After and retry the same batch; day 429 → park only
that tenant (others keep posting, even in the same batch); revoked → park, connection marked,
blocked gauge, redrive after reconnect; rejections → dead letters carrying the ledger's
messages; transient → retries then dead letter; binding missing → park, redrive once bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError

from agents.posting import Poster
from connectors.errors import AuthRevoked, NotFound, RateLimited, Rejected, Transient
from connectors.protocol import PostResult, Quota
from schemas.commands import (
    ContactDetails,
    CreateInvoice,
    CreatePayment,
    Document,
    DocumentLine,
    PostingCommand,
    idempotency_key,
)
from schemas.dead_letter import DeadLetter
from store import bindings, connections, parked
from store.db import make_engine, make_sessions, migrate
from streams.metrics import Metrics

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CIPHER = connections.TokenCipher([Fernet.generate_key()])


def invoice(tenant: str, n: int) -> CreateInvoice:
    line = DocumentLine(
        line_ref="l1",
        description="Mug",
        quantity=Decimal(1),
        unit_amount=Decimal("10.00"),
        account_code="200",
        tax_code="OUTPUT2",
        line_amount=Decimal("10.00"),
        tax_amount=Decimal("2.00"),
    )
    return CreateInvoice(
        idempotency_key=idempotency_key(tenant, "xero", "invoice.create", f"order:{n}", 0),
        tenant_id=tenant,
        ledger="xero",
        source_id=f"order:{n}",
        event_id=f"ev-{n}",
        revision=0,
        source_type="order",
        status="authorised",
        due_date=date(2026, 3, 31),
        document=Document(
            date=date(2026, 3, 1),
            currency="GBP",
            line_amount_type="exclusive",
            contact=ContactDetails(name="Buyer", email="buyer@example.com"),
            reference=f"Order {n}",
            lines=(line,),
            subtotal=Decimal("10.00"),
            total_tax=Decimal("2.00"),
            total=Decimal("12.00"),
        ),
    )


def payment(tenant: str, n: int, invoice_n: int) -> CreatePayment:
    return CreatePayment(
        idempotency_key=idempotency_key(tenant, "xero", "payment.create", f"payment:{n}", 0),
        tenant_id=tenant,
        ledger="xero",
        source_id=f"payment:{n}",
        event_id=f"ev-p{n}",
        revision=0,
        source_type="payment",
        invoice_source_id=f"order:{invoice_n}",
        date=date(2026, 3, 2),
        currency="GBP",
        amount=Decimal("12.00"),
        account_code="090",
        reference=f"Payment {n}",
    )


class FakeConnector:
    """Answers each post() from a per-tenant script: an exception to raise, or a function of the
    commands returning results. Records every call. Default: everything posts."""

    ledger = "xero"
    max_batch = 50

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.script: dict[str, list[Any]] = {}
        self.quotas: dict[str, Quota] = {}

    def then(self, tenant: str, *steps: Any) -> None:
        self.script.setdefault(tenant, []).extend(steps)

    async def post(self, tenant_id: str, commands: Sequence[PostingCommand]) -> list[PostResult]:
        self.calls.append((tenant_id, [c.source_id for c in commands]))
        steps = self.script.get(tenant_id) or []
        step = steps.pop(0) if steps else None
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return step(commands)
        return [PostResult(c.idempotency_key, external_id=f"X-{c.source_id}") for c in commands]

    async def tax_rates(self, tenant_id: str) -> list[Any]:
        return []

    async def accounts(self, tenant_id: str) -> list[Any]:
        return []

    def quota(self, tenant_id: str) -> Quota:
        return self.quotas.get(tenant_id, Quota())


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path / 'posting.db'}"
    migrate(url)
    engine = make_engine(url)
    yield make_sessions(engine)
    engine.dispose()


def connect(sessions: Any, tenant: str, status: str = "active") -> None:
    with sessions.begin() as session:
        row = connections.upsert(
            session,
            CIPHER,
            tenant_id=tenant,
            ledger="xero",
            organisation_id=f"org-{tenant}",
            organisation_name=tenant,
            access_token="a",
            refresh_token="r",
            access_expires_at=NOW + timedelta(minutes=30),
        )
        if status != "active":
            connections.mark(session, row, status, "revoked")  # type: ignore[arg-type]


class Harness:
    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions
        self.connector = FakeConnector()
        self.letters: list[DeadLetter] = []
        self.sleeps: list[float] = []
        self.registry = CollectorRegistry()

        async def send(letter: DeadLetter) -> None:
            self.letters.append(letter)

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.poster = Poster(
            self.connector,  # type: ignore[arg-type]
            sessions,
            send,
            Metrics(self.registry),
            max_attempts=3,
            sleep=sleep,
            now=lambda: NOW,
        )

    def parked(self, tenant: str | None = None) -> list[parked.ParkedCommand]:
        with self.sessions() as session:
            rows = parked.waiting(session, "xero")
            return [r for r in rows if tenant is None or r.tenant_id == tenant]

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def connection(self, tenant: str) -> connections.LedgerConnection:
        with self.sessions() as session:
            row = connections.get(session, tenant, "xero")
            assert row is not None
            session.expunge(row)
            return row


@pytest.fixture
def h(sessions: Any) -> Harness:
    connect(sessions, "a")
    connect(sessions, "b")
    return Harness(sessions)


async def test_minute_limit_waits_retry_after_and_retries_the_same_batch(h: Harness) -> None:
    h.connector.then("a", RateLimited("minute", scope="minute", retry_after=37.0))
    cmds = [invoice("a", n) for n in range(3)]

    await h.poster.post(cmds)

    assert h.sleeps == [37.0]
    assert [ids for _, ids in h.connector.calls] == [["order:0", "order:1", "order:2"]] * 2
    assert h.letters == [] and h.parked() == []
    assert h.metric("ledgerstream_posts_total", ledger="xero", kind="invoice.create", result="posted") == 3


async def test_minute_limits_do_not_use_up_attempts(h: Harness) -> None:
    """max_attempts=3, yet five minute-limit answers in a row are waited out, not dead-lettered."""
    h.connector.then("a", *[RateLimited("minute", scope="minute", retry_after=60.0) for _ in range(5)])

    await h.poster.post([invoice("a", 1)])

    assert h.sleeps == [60.0] * 5
    assert h.letters == []
    assert len(h.connector.calls) == 6


async def test_day_limit_parks_only_that_tenant_while_the_other_posts(h: Harness) -> None:
    h.connector.then("a", RateLimited("day", scope="day", retry_after=3600.0))
    batch = [invoice("a", 1), invoice("b", 2), invoice("a", 3), invoice("b", 4)]

    await h.poster.post(batch)

    assert {r.tenant_id for r in h.parked()} == {"a"}
    assert {r.waiting_for for r in h.parked()} == {parked.DAY_LIMIT}
    assert len(h.parked("a")) == 2
    assert ("b", ["order:2", "order:4"]) in h.connector.calls
    assert h.letters == []
    until = h.connection("a").day_parked_until
    assert until == NOW + timedelta(hours=1)
    assert h.connection("b").day_parked_until is None
    assert h.metric("ledgerstream_tenants_blocked", ledger="xero", why="day_limit") == 1

    # Later batches for the parked tenant are parked without calling the ledger.
    calls = len(h.connector.calls)
    await h.poster.post([invoice("a", 5), invoice("b", 6)])
    assert h.connector.calls[calls:] == [("b", ["order:6"])]
    assert len(h.parked("a")) == 3


async def test_day_parked_commands_are_redriven_when_the_window_ends(h: Harness) -> None:
    h.connector.then("a", RateLimited("day", scope="day", retry_after=60.0))
    await h.poster.post([invoice("a", 1)])
    sent: list[PostingCommand] = []

    async def send(cmd: PostingCommand) -> None:
        sent.append(cmd)

    assert await h.poster.redrive(send) == 0  # window not over yet
    h.poster.now = lambda: NOW + timedelta(seconds=61)
    assert await h.poster.redrive(send) == 1
    assert [c.source_id for c in sent] == ["order:1"]
    assert h.parked() == []


async def test_revoked_parks_without_dead_letter_marks_and_redrives_after_reconnect(h: Harness) -> None:
    h.connector.then("a", AuthRevoked("Xero refused the grant: invalid_grant"))
    cmds = [invoice("a", 1), invoice("a", 2)]

    await h.poster.post(cmds)

    assert h.letters == []
    assert [r.waiting_for for r in h.parked("a")] == [parked.RECONNECT] * 2
    assert h.connection("a").status == "needs_reconnect"
    assert h.metric("ledgerstream_tenants_blocked", ledger="xero", why="reconnect") == 1

    sent: list[PostingCommand] = []

    async def send(cmd: PostingCommand) -> None:
        sent.append(cmd)

    assert await h.poster.redrive(send) == 0  # still not reconnected
    connect(h.sessions, "a")  # the merchant reconnects: a new connection is stored
    assert await h.poster.redrive(send) == 2
    assert sorted(c.source_id for c in sent) == ["order:1", "order:2"]
    assert h.metric("ledgerstream_tenants_blocked", ledger="xero", why="reconnect") == 0
    assert h.metric("ledgerstream_parked_commands", ledger="xero", waiting_for="reconnect") == 0


async def test_tenant_needing_reconnect_is_parked_without_a_call(sessions: Any) -> None:
    connect(sessions, "a", status="needs_reconnect")
    h = Harness(sessions)
    await h.poster.post([invoice("a", 1)])
    assert h.connector.calls == []
    assert [r.waiting_for for r in h.parked("a")] == [parked.RECONNECT]


async def test_rejected_elements_are_dead_lettered_with_the_ledgers_messages(h: Harness) -> None:
    def answer(commands: Sequence[PostingCommand]) -> list[PostResult]:
        out = []
        for c in commands:
            if c.source_id == "order:2":
                error = Rejected(
                    "Account code '999' is not a valid code for this document.",
                    messages=(
                        "Account code '999' is not a valid code for this document.",
                        "Line items must have an account",
                    ),
                    status=200,
                    body={"ValidationErrors": [{"Message": "Account code '999' ..."}]},
                )
                out.append(PostResult(c.idempotency_key, error=error))
            else:
                out.append(PostResult(c.idempotency_key, external_id="X"))
        return out

    h.connector.then("a", answer)
    await h.poster.post([invoice("a", n) for n in (1, 2, 3)])

    [letter] = h.letters
    assert letter.id == invoice("a", 2).idempotency_key
    assert letter.reason_code.value == "ledger_rejected"
    assert "Account code '999'" in letter.reason and "Line items must have an account" in letter.reason
    assert letter.ledger_response is not None
    assert letter.ledger_response.messages[1] == "Line items must have an account"
    assert len(h.connector.calls) == 1  # the two good ones were not re-sent
    assert h.metric("ledgerstream_posts_total", ledger="xero", kind="invoice.create", result="posted") == 2


async def test_transient_failures_retry_then_dead_letter(h: Harness) -> None:
    h.connector.then("a", *[Transient("Xero error 503", status=503) for _ in range(3)])
    await h.poster.post([invoice("a", 1)])
    assert len(h.connector.calls) == 3
    assert len(h.sleeps) == 2
    [letter] = h.letters
    assert letter.reason_code.value == "retries_exhausted"
    assert letter.attempts == 3


async def test_transient_then_success_posts_without_dead_letter(h: Harness) -> None:
    h.connector.then("a", Transient("reset"))
    await h.poster.post([invoice("a", 1)])
    assert h.letters == [] and len(h.connector.calls) == 2


async def test_database_outage_retries_the_same_batch_until_it_posts(h: Harness) -> None:
    outage = OperationalError("SELECT 1", {}, Exception("connection refused"))
    h.connector.then("a", outage, outage)
    await h.poster.post([invoice("a", 1), invoice("a", 2)])
    assert [ids for _, ids in h.connector.calls] == [["order:1", "order:2"]] * 3
    assert h.sleeps == [2.0, 4.0]
    assert h.letters == []
    assert h.metric("ledgerstream_posts_total", ledger="xero", kind="invoice.create", result="posted") == 2


async def test_unexpected_error_dead_letters_the_batch_and_posting_goes_on(h: Harness) -> None:
    h.connector.then("a", KeyError("Total"))
    await h.poster.post([invoice("a", 1), invoice("a", 2)])
    assert [letter.reason_code.value for letter in h.letters] == ["internal_error", "internal_error"]
    assert "KeyError" in h.letters[0].reason
    await h.poster.post([invoice("a", 3)])  # the next batch posts normally
    assert h.metric("ledgerstream_posts_total", ledger="xero", kind="invoice.create", result="posted") == 1


async def test_payment_for_unbound_invoice_is_parked_until_the_binding_exists(h: Harness) -> None:
    def answer(commands: Sequence[PostingCommand]) -> list[PostResult]:
        return [PostResult(c.idempotency_key, error=NotFound("invoice not posted yet")) for c in commands]

    h.connector.then("a", answer)
    await h.poster.post([payment("a", 1, invoice_n=9)])
    [row] = h.parked("a")
    assert row.waiting_for == parked.BINDING and row.depends_on == "order:9"

    sent: list[PostingCommand] = []

    async def send(cmd: PostingCommand) -> None:
        sent.append(cmd)

    assert await h.poster.redrive(send) == 0
    with h.sessions.begin() as session:
        bindings.record(
            session,
            tenant_id="a",
            ledger="xero",
            source_id="order:9",
            external_id="INV-9",
            kind="invoice.create",
            idempotency_key="k9",
        )
    assert await h.poster.redrive(send) == 1
    assert [c.source_id for c in sent] == ["payment:1"]


async def test_quota_gauge_follows_the_connector(h: Harness) -> None:
    h.connector.quotas["a"] = Quota(minute_remaining=41, day_remaining=4900)
    await h.poster.post([invoice("a", 1)])
    assert h.metric("ledgerstream_ledger_quota_remaining", ledger="xero", tenant="a", window="minute") == 41
    assert h.metric("ledgerstream_ledger_quota_remaining", ledger="xero", tenant="a", window="day") == 4900


# --------------------------------------------------------------------------- duplicates in a batch


async def test_the_same_command_twice_in_a_batch_is_posted_once(h: Harness) -> None:
    c = invoice("a", 1)
    await h.poster.post([c, invoice("a", 2), c])
    assert h.connector.calls == [("a", ["order:1", "order:2"])]
    assert h.metric("ledgerstream_posts_total", ledger="xero", kind="invoice.create", result="posted") == 2


async def test_a_second_key_for_the_same_source_goes_in_a_later_call(h: Harness) -> None:
    first = invoice("a", 1)
    again = first.model_copy(update={"idempotency_key": "replay-key-of-order-1"})
    await h.poster.post([first, again, invoice("a", 2)])
    # never one call carrying order:1 twice: the second copy comes after the first had its answer
    assert h.connector.calls == [("a", ["order:1", "order:2"]), ("a", ["order:1"])]


# --------------------------------------------------------------------------- cancellation


class BlockingConnector(FakeConnector):
    """Tenant "a" hangs in the ledger call (a rate-limit wait, a slow Xero) until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()

    async def post(self, tenant_id: str, commands: Sequence[PostingCommand]) -> list[PostResult]:
        if tenant_id == "a":
            self.calls.append((tenant_id, [c.source_id for c in commands]))
            self.entered.set()
            await asyncio.Event().wait()
        return await super().post(tenant_id, commands)


async def test_cancelled_batch_is_parked_for_an_immediate_redrive(h: Harness) -> None:
    h.poster.connector = h.connector = BlockingConnector()  # type: ignore[assignment]
    task = asyncio.create_task(h.poster.post([invoice("a", 1), invoice("b", 2), invoice("a", 3)]))
    await asyncio.wait_for(h.connector.entered.wait(), 5)  # type: ignore[attr-defined]
    for _ in range(50):  # let tenant b finish posting
        await asyncio.sleep(0.01)
        if h.metric("ledgerstream_posts_total", ledger="xero", kind="invoice.create", result="posted"):
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    rows = h.parked()
    assert sorted(r.idempotency_key for r in rows) == sorted(invoice("a", n).idempotency_key for n in (1, 3))
    assert {r.waiting_for for r in rows} == {parked.RETRY}
    assert {r.not_before for r in rows} == {None}
    assert h.letters == []

    sent: list[PostingCommand] = []

    async def send(cmd: PostingCommand) -> None:
        sent.append(cmd)

    assert await h.poster.redrive(send) == 2  # at once: not_before is None
    assert sorted(c.source_id for c in sent) == ["order:1", "order:3"]
    assert h.parked() == []


async def test_cancelled_during_a_rate_limit_wait_parks_the_batch(h: Harness) -> None:
    entered = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        entered.set()
        await asyncio.sleep(3600)

    h.poster.sleep = slow_sleep
    h.connector.then("a", RateLimited("minute", scope="minute", retry_after=60.0))
    task = asyncio.create_task(h.poster.post([invoice("a", 1)]))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = h.parked()
    assert row.waiting_for == parked.RETRY and row.idempotency_key == invoice("a", 1).idempotency_key


async def test_a_dead_letter_that_cannot_be_sent_parks_the_command(h: Harness) -> None:
    async def broken(letter: DeadLetter) -> None:
        raise ConnectionError("kafka unreachable")

    h.poster.send_dead_letter = broken
    h.connector.then(
        "a", lambda cmds: [PostResult(c.idempotency_key, error=Rejected("bad account")) for c in cmds]
    )
    await h.poster.post([invoice("a", 1)])
    [row] = h.parked()
    assert row.waiting_for == parked.RETRY
    assert row.not_before == NOW + timedelta(minutes=1)
    assert "bad account" in row.reason


# --------------------------------------------------------------------------- redrive races


async def test_redrive_keeps_a_command_parked_again_while_it_was_being_sent(h: Harness) -> None:
    h.connector.then("a", RateLimited("day", scope="day", retry_after=60.0))
    await h.poster.post([invoice("a", 1)])
    h.poster.now = lambda: NOW + timedelta(seconds=61)

    async def send(cmd: PostingCommand) -> None:
        # The re-published command is consumed and parked again before redrive goes on.
        with h.sessions.begin() as session:
            parked.park(
                session,
                idempotency_key=cmd.idempotency_key,
                tenant_id=cmd.tenant_id,
                ledger="xero",
                kind=cmd.kind,
                waiting_for=parked.RECONNECT,
                reason="parked again",
                command=cmd.model_dump_json().encode(),
            )

    assert await h.poster.redrive(send) == 1
    [row] = h.parked()
    assert row.waiting_for == parked.RECONNECT and row.reason == "parked again"


async def test_redrive_puts_back_a_command_it_could_not_send(h: Harness) -> None:
    h.connector.then("a", RateLimited("day", scope="day", retry_after=60.0))
    await h.poster.post([invoice("a", 1), invoice("a", 2)])
    h.poster.now = lambda: NOW + timedelta(seconds=61)
    sent: list[str] = []

    async def send(cmd: PostingCommand) -> None:
        if cmd.source_id == "order:1":
            raise ConnectionError("kafka unreachable")
        sent.append(cmd.source_id)

    assert await h.poster.redrive(send) == 1
    assert sent == ["order:2"]
    [row] = h.parked()
    assert row.idempotency_key == invoice("a", 1).idempotency_key and row.waiting_for == parked.DAY_LIMIT


async def test_a_partial_failure_is_dead_lettered_with_the_pending_binding(h: Harness) -> None:
    def answer(commands: Sequence[PostingCommand]) -> list[PostResult]:
        error = Rejected("payment P posted but its fee was rejected: bad", pending_source_id="payment:1#fee")
        return [PostResult(c.idempotency_key, external_id="P", error=error) for c in commands]

    h.connector.then("a", answer)
    await h.poster.post([payment("a", 1, invoice_n=1)])
    [letter] = h.letters
    assert letter.resolves_with == "payment:1#fee"
