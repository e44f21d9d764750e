"""Posting one batch of commands through a ledger connector, and re-driving parked ones.

Classify in the client, schedule here: the connector raises or returns errors from the
closed tree in `connectors.errors`; this module decides retry, park or dead-letter:

- minute / concurrent / app 429 and transient failures: retry the same batch (same
  idempotency keys) after `Retry-After` or a jittered backoff, up to `max_attempts`;
  then every unposted command is dead-lettered (`retries_exhausted`);
- day-limit 429: the tenant's commands are parked until the window resets; others flow;
- revoked authorisation / no connection: parked until the tenant reconnects;
- a credit note or payment whose invoice isn't bound yet: parked until the binding exists;
- a rejected document: dead-lettered with the ledger's own messages.
No command is lost and no command ends in two states.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import RetryCallState, wait_random_exponential

from agents import dead_letters
from connectors.errors import AuthRevoked, LedgerError, NotFound, RateLimited, RetryableError
from connectors.protocol import LedgerConnector, PostResult
from schemas.commands import PostingCommand, command_adapter
from schemas.dead_letter import DeadLetter, Reason
from store import bindings, connections, parked
from streams.metrics import Metrics

log = logging.getLogger(__name__)

SendDeadLetter = Callable[[DeadLetter], Awaitable[None]]
SendCommand = Callable[[PostingCommand], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]
DEAD_LETTER_RETRY = timedelta(minutes=1)  # a command whose dead letter could not be sent


def rounds(commands: Sequence[PostingCommand]) -> list[list[PostingCommand]]:
    """Commands split so that no connector call sees a source id twice, in arrival order.

    A copy with an idempotency key already seen is dropped (the same command delivered twice:
    an inbox double retry, a redrive re-send). A command for a source id already in the
    current round (another key) starts, or goes into, a later round: posted after the first
    one could bind, it is answered already_bound instead of becoming a second document.
    """
    out: list[list[PostingCommand]] = []
    seen_keys: set[str] = set()
    sources: list[set[str]] = []
    for command in commands:
        if command.idempotency_key in seen_keys:
            continue
        seen_keys.add(command.idempotency_key)
        n = 0
        while n < len(out) and command.source_id in sources[n]:
            n += 1
        if n == len(out):
            out.append([])
            sources.append(set())
        out[n].append(command)
        sources[n].add(command.source_id)
    return out


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before try `attempt + 1`: the ledger's Retry-After, else jittered exponential."""
    if retry_after is not None:
        return max(retry_after, 0.0)
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return float(wait_random_exponential(multiplier=0.5, max=30)(state))


@dataclass
class Poster:
    """Posts batches for one ledger; one instance per worker and ledger."""

    connector: LedgerConnector
    sessions: sessionmaker[Session]
    send_dead_letter: SendDeadLetter
    metrics: Metrics
    max_attempts: int = 5
    max_rate_limit_waits: int = 30
    sleep: Sleep = asyncio.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def ledger(self) -> str:
        return self.connector.ledger

    async def post(self, commands: Sequence[PostingCommand]) -> None:
        """Post commands (any tenants), grouped per tenant in arrival order, in connector-sized batches.

        Tenants are posted concurrently: ledger limits are per tenant, so one tenant waiting out
        a minute limit (or a slow ledger) does not hold the others back. Within a tenant the
        batches go one after the other, in order.

        Duplicates are collapsed (`rounds`): a copy with the same idempotency key is posted once;
        a second command for the same source id (another key: a re-mapped replay, a re-sent
        revision) goes in a later connector call, after the first one had the chance to bind,
        so the connector answers it already_bound instead of creating a second document.

        Cancelled (SIGTERM, rebalance, deploy) while waiting: the stream acks the whole batch
        anyway, so every command without an outcome yet is parked (`parked.RETRY`, re-published
        by the next redrive; re-posting one that did post is harmless: bindings) before the
        cancellation goes on.
        """
        done: set[str] = set()  # idempotency keys with an outcome: posted, parked, dead-lettered
        by_tenant: dict[str, list[PostingCommand]] = {}
        for command in commands:
            by_tenant.setdefault(command.tenant_id, []).append(command)

        async def one_tenant(tenant_id: str, group: list[PostingCommand]) -> None:
            for batch in rounds(group):
                for i in range(0, len(batch), self.connector.max_batch):
                    await self._post_guarded(tenant_id, batch[i : i + self.connector.max_batch], done)

        try:
            outcomes = await asyncio.gather(
                *(one_tenant(t, g) for t, g in by_tenant.items()), return_exceptions=True
            )
        except asyncio.CancelledError:
            unfinished = {c.idempotency_key: c for c in commands if c.idempotency_key not in done}
            if unfinished:
                await self._park_on_cancel(list(unfinished.values()))
            raise
        for outcome in outcomes:  # every tenant has finished; now surface the first crash
            if isinstance(outcome, BaseException):
                raise outcome

    async def _park_on_cancel(self, commands: list[PostingCommand]) -> None:
        """Park `commands` for an immediate redrive, shielded from the cancellation in progress."""
        reason = "posting was interrupted (worker stopping); re-sent by the next redrive"
        task = asyncio.ensure_future(self._park_safely(commands, parked.RETRY, reason))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:  # cancelled again: let the park finish on its own
            log.warning("cancelled again while parking %d interrupted command(s)", len(commands))

    async def _park_safely(
        self,
        commands: Sequence[PostingCommand],
        waiting_for: str,
        reason: str,
        not_before: datetime | None = None,
    ) -> None:
        """`_park`, tried a few times (a write of the same key racing in another thread); the
        commands are logged in full if it cannot be done at all."""
        for attempt in range(3):
            try:
                await self._park(commands, waiting_for, reason, not_before=not_before)
                return
            except Exception as exc:
                log.warning("parking %d command(s) failed (try %d): %r", len(commands), attempt + 1, exc)
        for command in commands:
            log.error("LOST unless re-sent by hand: %s", command.model_dump_json())

    async def _post_guarded(self, tenant_id: str, commands: list[PostingCommand], done: set[str]) -> None:
        """`_post_tenant`, never losing the batch to a failure outside the ledger error tree.

        The stream acks a batch once this returns or raises, so: while our database is
        unreachable, wait and try the same batch again (replays are safe: bindings); any
        other unexpected error dead-letters the batch (`internal_error`) and the agent goes on.
        """
        outage = 0
        while True:
            try:
                todo = [c for c in commands if c.idempotency_key not in done]
                await self._post_tenant(tenant_id, todo, done)
                return
            except OperationalError as exc:
                outage += 1
                log.error("database unavailable while posting for %s (try %d): %s", tenant_id, outage, exc)
                await self.sleep(min(2.0**outage, 30.0))
            except Exception as exc:
                log.exception("posting for tenant %s failed unexpectedly", tenant_id)
                await self._dead(
                    [c for c in commands if c.idempotency_key not in done],
                    Reason.INTERNAL_ERROR,
                    LedgerError(f"internal error: {exc!r}"),
                    1,
                    done,
                )
                return

    async def _post_tenant(self, tenant_id: str, commands: list[PostingCommand], done: set[str]) -> None:
        if not commands:
            return
        blocked = await self._db(lambda s: self._blocked(s, tenant_id))
        if blocked is not None:
            waiting_for, until, reason = blocked
            await self._park(commands, waiting_for, reason, not_before=until, done=done)
            return
        pending = commands
        attempt = 0  # failures that count towards max_attempts
        waits = 0  # minute / concurrent / app 429s: the ledger said when to come back
        while pending:
            attempt += 1
            try:
                started = time.perf_counter()
                try:
                    results = await self.connector.post(tenant_id, pending)
                finally:
                    self._quota_gauge(tenant_id)
                self.metrics.ledger_calls.labels(self.ledger).observe(time.perf_counter() - started)
            except RateLimited as exc:
                self._count_error(exc)
                if exc.scope == "day":
                    until = self.now() + timedelta(seconds=exc.retry_after or 3600)
                    await self._db(lambda s, u=until: self._set_day_parked(s, tenant_id, u))
                    await self._park(
                        pending, parked.DAY_LIMIT, f"daily API limit reached: {exc.message}", until, done=done
                    )
                    await self._db(self._gauge)
                    return
                # A minute-type limit with Retry-After is a schedule, not a failure: wait as told
                # and try again without using up an attempt (bounded by max_rate_limit_waits).
                if exc.retry_after is not None and waits < self.max_rate_limit_waits:
                    waits += 1
                    attempt -= 1
                    log.info(
                        "%s %s limit for tenant %s: waiting %.1fs",
                        self.ledger,
                        exc.scope,
                        tenant_id,
                        exc.retry_after,
                    )
                    await self.sleep(backoff(attempt, exc.retry_after))
                    continue
                if attempt >= self.max_attempts:
                    await self._dead(pending, Reason.RETRIES_EXHAUSTED, exc, attempt, done)
                    return
                await self.sleep(backoff(attempt, exc.retry_after))
                continue
            except RetryableError as exc:
                self._count_error(exc)
                if attempt >= self.max_attempts:
                    await self._dead(pending, Reason.RETRIES_EXHAUSTED, exc, attempt, done)
                    return
                await self.sleep(backoff(attempt, exc.retry_after))
                continue
            except AuthRevoked as exc:
                self._count_error(exc)
                await self._park(
                    pending,
                    parked.RECONNECT,
                    f"the ledger connection needs reconnecting: {exc.message}",
                    done=done,
                )
                await self._db(lambda s, m=exc.message: self._needs_reconnect(s, tenant_id, m))
                await self._db(self._gauge)
                return
            except LedgerError as exc:
                self._count_error(exc)
                await self._dead(pending, Reason.LEDGER_REJECTED, exc, attempt, done)
                return
            pending = await self._route(pending, results, attempt, done)

    async def _route(
        self, commands: list[PostingCommand], results: list[PostResult], attempt: int, done: set[str]
    ) -> list[PostingCommand]:
        """Record each result; returns the commands to try again (per-element retryable errors)."""
        if len(results) != len(commands):
            raise RuntimeError(f"{self.ledger} connector returned {len(results)} results for {len(commands)}")
        retry: list[PostingCommand] = []
        for command, result in zip(commands, results, strict=True):
            error = result.error
            if error is None:
                outcome = "already_bound" if result.already_bound else "posted"
                self.metrics.posts.labels(self.ledger, command.kind, outcome).inc()
                done.add(command.idempotency_key)
                continue
            self._count_error(error)
            if isinstance(error, NotFound) and hasattr(command, "invoice_source_id"):
                await self._park(
                    [command], parked.BINDING, error.message, depends_on=command.invoice_source_id, done=done
                )
            elif isinstance(error, RetryableError) and attempt < self.max_attempts:
                retry.append(command)
            elif isinstance(error, RetryableError):
                await self._dead([command], Reason.RETRIES_EXHAUSTED, error, attempt, done)
            elif isinstance(error, NotFound):
                await self._dead([command], Reason.NOT_FOUND, error, attempt, done)
            else:
                await self._dead([command], Reason.LEDGER_REJECTED, error, attempt, done)
        if retry:
            await self.sleep(backoff(attempt, None))
        return retry

    async def _park(
        self,
        commands: Sequence[PostingCommand],
        waiting_for: str,
        reason: str,
        not_before: datetime | None = None,
        depends_on: str | None = None,
        done: set[str] | None = None,
    ) -> None:
        def work(session: Session) -> None:
            for command in commands:
                parked.park(
                    session,
                    idempotency_key=command.idempotency_key,
                    tenant_id=command.tenant_id,
                    ledger=command.ledger,
                    kind=command.kind,
                    waiting_for=waiting_for,
                    reason=reason,
                    command=command.model_dump_json().encode(),
                    depends_on=depends_on,
                    not_before=not_before,
                )

        await self._db(work)
        for command in commands:
            self.metrics.posts.labels(self.ledger, command.kind, "parked").inc()
            if done is not None:
                done.add(command.idempotency_key)
        log.warning("parked %d %s command(s) (%s): %s", len(commands), self.ledger, waiting_for, reason)

    async def _dead(
        self,
        commands: Sequence[PostingCommand],
        code: Reason,
        error: LedgerError,
        attempts: int,
        done: set[str] | None = None,
    ) -> None:
        """Dead-letter each command; one whose record cannot be sent (Kafka down) is parked for a
        later retry instead of being lost (the next attempt dead-letters it again if it must)."""
        for command in commands:
            letter = dead_letters.for_command(
                command,
                reason_code=code,
                reason=_describe(error),
                attempts=attempts,
                at=self.now(),
                error=error,
            )
            try:
                await self.send_dead_letter(letter)
            except Exception as exc:
                log.error("dead letter for %s not sent (%r): parking the command", command.source_id, exc)
                await self._park(
                    [command],
                    parked.RETRY,
                    f"dead letter could not be sent ({exc!r}); was: {letter.reason}",
                    not_before=self.now() + DEAD_LETTER_RETRY,
                    done=done,
                )
                continue
            self.metrics.posts.labels(self.ledger, command.kind, "dead_letter").inc()
            if done is not None:
                done.add(command.idempotency_key)

    def _blocked(self, session: Session, tenant_id: str) -> tuple[str, datetime | None, str] | None:
        row = connections.get(session, tenant_id, self.ledger)
        if row is None or row.status == "disconnected":
            return parked.RECONNECT, None, f"tenant {tenant_id} is not connected to {self.ledger}"
        if row.status == "needs_reconnect":
            return parked.RECONNECT, None, f"the {self.ledger} connection needs reconnecting"
        if row.day_parked_until is not None and row.day_parked_until > self.now():
            return parked.DAY_LIMIT, row.day_parked_until, "daily API limit reached"
        return None

    def _set_day_parked(self, session: Session, tenant_id: str, until: datetime) -> None:
        row = connections.get(session, tenant_id, self.ledger)
        if row is not None and (row.day_parked_until is None or row.day_parked_until < until):
            row.day_parked_until = until

    def _needs_reconnect(self, session: Session, tenant_id: str, message: str) -> None:
        """Make sure a connection the ledger refused is marked (the connector usually has already)."""
        row = connections.get(session, tenant_id, self.ledger)
        if row is not None and row.status == "active":
            connections.mark(session, row, "needs_reconnect", message[:1000])

    def _quota_gauge(self, tenant_id: str) -> None:
        quota = self.connector.quota(tenant_id)
        for window, value in (("minute", quota.minute_remaining), ("day", quota.day_remaining)):
            if value is not None:
                self.metrics.quota_remaining.labels(self.ledger, tenant_id, window).set(value)

    def _count_error(self, error: LedgerError) -> None:
        self.metrics.ledger_errors.labels(self.ledger, type(error).__name__).inc()

    async def _db(self, fn: Callable[[Session], object]):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            with self.sessions.begin() as session:
                return fn(session)

        return await asyncio.to_thread(run)

    async def redrive(self, send: SendCommand) -> int:
        """Re-publish parked commands whose wait is over; returns how many were released.

        Claim first: one transaction deletes the ready rows and returns them; then each is sent.
        (Sending first and deleting by key afterwards could delete the row of the same command
        consumed and parked again in between.) A command whose send fails, or is not reached
        because the redrive is cancelled, is put back (unless it was parked again meanwhile).
        """

        def claim(session: Session) -> list[parked.Claimed]:
            now = self.now()
            out = []
            for row in parked.waiting(session, self.ledger):
                conn = connections.get(session, row.tenant_id, self.ledger)
                if row.waiting_for == parked.BINDING:
                    binding = bindings.get(session, row.tenant_id, self.ledger, row.depends_on or "")
                    go = binding is not None and binding.bound
                elif row.waiting_for == parked.RECONNECT:
                    go = conn is not None and conn.status == "active"
                else:
                    go = row.not_before is None or row.not_before <= now
                if go:
                    out.append(row)
            return parked.claim(session, out)

        pending: list[parked.Claimed] = await self._db(claim)
        sent = 0
        try:
            while pending:
                row = pending[0]
                try:
                    await send(command_adapter.validate_json(row.command))
                    sent += 1
                except Exception as exc:
                    log.error("redrive of %s failed (%r): parked again", row.idempotency_key, exc)
                    await self._db(lambda s, row=row: parked.restore(s, [row]))
                pending.pop(0)
        finally:
            if pending:  # cancelled (or the database failed) mid-way: put the rest back
                rest = list(pending)
                await asyncio.shield(self._db(lambda s: parked.restore(s, rest)))
        await self._db(self._gauge)
        return sent

    def _gauge(self, session: Session) -> None:
        counts = parked.counts(session)
        for why in (parked.RECONNECT, parked.DAY_LIMIT, parked.BINDING, parked.RETRY):
            self.metrics.parked.labels(self.ledger, why).set(counts.get((self.ledger, why), 0))
        blocked = blocked_tenants(session, self.ledger, self.now())
        for why in (parked.RECONNECT, parked.DAY_LIMIT):
            self.metrics.tenants_blocked.labels(self.ledger, why).set(blocked[why])


def blocked_tenants(session: Session, ledger: str, now: datetime) -> dict[str, int]:
    """Tenants of `ledger` that cannot post now: connection needs reconnecting / day limit reached."""
    out = {parked.RECONNECT: 0, parked.DAY_LIMIT: 0}
    model = connections.LedgerConnection
    for row in session.scalars(select(model).where(model.ledger == ledger)):
        if row.status != "active":
            out[parked.RECONNECT] += 1
        elif row.day_parked_until is not None and row.day_parked_until > now:
            out[parked.DAY_LIMIT] += 1
    return out


def _describe(error: LedgerError) -> str:
    messages = getattr(error, "messages", None) or (error.message,)
    return "; ".join(str(m) for m in messages)[:2000]
