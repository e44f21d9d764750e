"""The inbox's operations, shared by the web pages, the JSON API, the CLI and the worker's jobs.

Reads and writes go through `store.dead_letters`; publishing goes through a `Publish`
callable (the worker's Faust producer, or an aiokafka producer in the CLI). A retry marks
the item `retrying` (and audits it) *before* it publishes, so a fast new failure always
lands on top and sets it back to `open`; if publishing fails the mark is undone.

Only an `open` item can be retried, and taking it is atomic: the transaction starts with a
conditional `UPDATE … SET status='retrying' WHERE id=… AND status='open'` and goes on only
when that changed one row (PostgreSQL locks the row, so a concurrent retry waits and then
matches nothing; SQLite serialises writers). A double click, two people, or a "retry all"
racing a single retry therefore publish the command once; the others are refused with
"already being retried". An item stays `retrying` until the posting agent's result moves it:
bound in the ledger → the resolve job closes it; a new failure → back to `open`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from inbox import replay
from schemas.tenant import TenantConfig
from store import bindings, tenant_config
from store import dead_letters as dl
from store.base import utcnow
from streams.topics import TopicNames

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bytes], Awaitable[None]]
Progress = Callable[[int], None]


class NotAllowed(LookupError):
    """No such item for this user (unknown, or another tenant's: the same answer)."""


@dataclass(frozen=True)
class RetryOutcome:
    item_id: int
    action: str  # published | resolved | refused | skipped | failed
    note: str


def config_at(session: Session, tenant_id: str, when: datetime) -> TenantConfig | None:
    """The tenant's configuration version in effect at `when` (the first one if none was yet)."""
    versions = tenant_config.history(session, tenant_id)
    if not versions:
        return None
    chosen = versions[0]
    for info in versions:
        if info.applied_at <= when:
            chosen = info
    return tenant_config.get_version(session, tenant_id, chosen.version)


class Inbox:
    def __init__(self, sessions: sessionmaker[Session], publish: Publish, names: TopicNames) -> None:
        self.sessions = sessions
        self.publish = publish
        self.names = names

    async def _db(self, fn):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            with self.sessions.begin() as session:
                return fn(session)

        return await asyncio.to_thread(run)

    # ----------------------------------------------------------------- retry

    async def retry(self, item_id: int, actor: str, scope: frozenset[str] | None) -> RetryOutcome:
        def prepare(session: Session) -> tuple[replay.Plan, str] | RetryOutcome:
            item = dl.get(session, item_id)
            if item is None or (scope is not None and item.tenant_id not in scope):
                raise NotAllowed(item_id)
            if not _claim(session, item_id):  # someone else is retrying it, or it is closed
                session.refresh(item)
                if item.status == dl.RETRYING:
                    since = f" since {item.last_retry_at:%Y-%m-%d %H:%M} UTC" if item.last_retry_at else ""
                    note = (
                        f"already being retried{since}; wait for the ledger's answer "
                        "(it is resolved when posted, or reopened if it fails again)"
                    )
                    return RetryOutcome(item_id, "refused", note)
                return RetryOutcome(item_id, "skipped", f"already {item.status}")
            session.refresh(item)  # now `retrying`, and ours until this transaction ends
            letter = item.letter()
            bound = None
            if item.source_id and item.tenant_id and item.ledger:
                row = bindings.get(session, item.tenant_id, item.ledger, item.source_id)
                bound = row.external_id if row is not None and row.bound else None
            old = new = None
            if item.tenant_id:
                old = config_at(session, item.tenant_id, letter.first_failed_at)
                new = tenant_config.current(session, item.tenant_id)
            plan = replay.plan(letter, bound_external_id=bound, old_config=old, new_config=new)
            if plan.action == "resolved":
                dl.resolve(session, item, actor, plan.note)
                return RetryOutcome(item_id, "resolved", plan.note)
            if plan.action == "refuse":
                dl.audit(session, actor, "retry_refused", item, plan.note)
                item.status = dl.OPEN  # undo the claim: nothing is sent
                item.status_note = plan.note
                return RetryOutcome(item_id, "refused", plan.note)
            dl.mark_retrying(session, item, actor, plan.note, plan.replay_key)
            return plan, dl.OPEN

        prepared = await self._db(prepare)
        if isinstance(prepared, RetryOutcome):
            return prepared
        plan, previous = prepared
        topic = (
            self.names.orders if plan.action == "publish_event" else self.names.commands(plan.ledger or "")
        )
        try:
            await self.publish(topic, plan.key, plan.value)
        except Exception as exc:  # Kafka down: undo the mark, tell the user; nothing was sent
            log.warning("retry of inbox item %s not published: %s", item_id, exc)
            error = str(exc) or type(exc).__name__

            def undo(session: Session) -> None:
                item = dl.get(session, item_id)
                if item is not None and item.status == dl.RETRYING:
                    item.status = previous
                    dl.audit(session, actor, "retry_failed", item, f"could not publish: {error}")

            await self._db(undo)
            return RetryOutcome(item_id, "failed", f"could not publish: {error}")
        return RetryOutcome(item_id, "published", plan.note)

    def matching_ids(self, filters: dl.Filters) -> list[int]:
        """Items a bulk retry would touch: open ones (or retrying ones, when filtered by that
        status: each is then refused as already being retried, which the outcome reports)."""
        status = filters.status if filters.status in (dl.OPEN, dl.RETRYING) else dl.OPEN
        from dataclasses import replace

        with self.sessions() as session:
            items = dl.search(session, replace(filters, status=status), limit=None)
            return sorted(item.id for item in items)

    async def retry_matching(
        self, filters: dl.Filters, actor: str, progress: Progress | None = None
    ) -> list[RetryOutcome]:
        ids = await asyncio.to_thread(self.matching_ids, filters)
        outcomes = []
        for item_id in ids:
            outcomes.append(await self.retry(item_id, actor, filters.tenants))
            if progress is not None:
                progress(1)
        await self._db(
            lambda s: dl.audit(
                s,
                actor,
                "retry_all",
                detail=f"{len(ids)} item(s) matching {filters.as_params()}",
                tenant_id=filters.tenant,
            )
        )
        return outcomes

    # ----------------------------------------------------------------- discard

    def discard(self, item_id: int, actor: str, reason: str, scope: frozenset[str] | None) -> None:
        with self.sessions.begin() as session:
            item = dl.get(session, item_id)
            if item is None or (scope is not None and item.tenant_id not in scope):
                raise NotAllowed(item_id)
            if item.status in (dl.RESOLVED, dl.DISCARDED):
                raise ValueError(f"item {item_id} is already {item.status}")
            dl.discard(session, item, actor, reason)

    # ----------------------------------------------------------------- jobs

    def resolve_bound(self) -> int:
        with self.sessions.begin() as session:
            return len(dl.resolve_bound(session))

    def purge(self, retention_days: int, now: datetime | None = None) -> int:
        with self.sessions.begin() as session:
            return dl.purge(session, (now or utcnow()) - timedelta(days=retention_days))

    def open_by_reason(self) -> dict[str, int]:
        with self.sessions() as session:
            return dl.open_by_reason(session)


def _claim(session: Session, item_id: int) -> bool:
    """open → retrying, atomically: True when this transaction took the item."""
    result = session.execute(
        update(dl.DeadLetterItem)
        .where(dl.DeadLetterItem.id == item_id, dl.DeadLetterItem.status == dl.OPEN)
        .values(status=dl.RETRYING)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def summarize(outcomes: Sequence[RetryOutcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
    return counts
