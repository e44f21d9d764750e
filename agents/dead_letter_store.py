"""The inbox's agent and jobs: persist every dead letter; resolve, purge, and count the inbox.

No record is lost when the database is down: the agent retries the write with a capped
backoff *inside* its loop and does not take the next record until the write committed, so
Faust never acknowledges (commits the offset of) a record that is not stored; a worker that
crashes meanwhile re-reads it from Kafka. Re-delivery is harmless: items remember the
position of the last record applied (`store.dead_letters.upsert`). Records that are not
DeadLetter JSON are logged and skipped (nothing to store; they stay in the topic).

Shutdown while waiting: a SIGTERM cancels the agent, and Faust may then acknowledge the
record it was holding, which would lose it. So when `persist` is cancelled before the write
committed, it first sends the record's original bytes (and key) back to the dead-letter topic
(shielded from the cancellation, at most `HAND_BACK_TIMEOUT` seconds) and then re-raises: a
worker picks it up again. If the cancellation lands while a write is running in its thread,
`persist` waits for that write's outcome and hands the record back only if it failed. A second
cancellation during that wait hands it back anyway: in that rare case the record may be stored
twice, which counts one extra failure on its item (`upsert` deduplicates by position, and the
copy has a new one) — a duplicate is preferred to a loss.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from inbox.metrics import InboxMetrics
from inbox.settings import inbox_settings
from inbox.worker import inbox, publish
from schemas.dead_letter import DeadLetter
from store import dead_letters as dl
from streams.app import app, dead_letter_topic, names, registry
from streams.database import sessions

log = logging.getLogger(__name__)
inbox_metrics = InboxMetrics(registry)
MAX_BACKOFF = 30.0
HAND_BACK_TIMEOUT = 10.0
Send = Callable[[str, bytes | None, bytes], Awaitable[None]]


def _store(letter: DeadLetter, position: str) -> bool:
    with sessions().begin() as session:
        _, created = dl.upsert(session, letter, position)
        return created


async def persist(  # type: ignore[no-untyped-def]
    letter: DeadLetter,
    position: str,
    sleep=asyncio.sleep,
    store=None,
    *,
    original: bytes | None = None,
    key: bytes | None = None,
    send: Send | None = None,
    topic: str | None = None,
) -> None:
    """Write until it succeeds; a database outage blocks this partition, it loses nothing.

    `original`/`key` are the record as read from the topic: if this is cancelled before the
    write committed, they are sent back to `topic` (the dead-letter topic) before re-raising.
    """
    write = store or _store

    async def hand_back() -> None:
        if original is None:
            log.critical("inbox: dead letter %s at %s not stored at shutdown", letter.id, position)
            return
        try:
            target = topic or names.dead_letter
            sending = asyncio.ensure_future((send or publish)(target, key, original))  # type: ignore[arg-type]
            await asyncio.wait_for(asyncio.shield(sending), HAND_BACK_TIMEOUT)
            log.warning(
                "inbox: dead letter %s at %s re-published at shutdown (not stored yet)", letter.id, position
            )
        except (Exception, asyncio.CancelledError) as exc:
            log.critical(
                "inbox: dead letter %s at %s not stored and not re-published at shutdown: %r",
                letter.id,
                position,
                exc,
            )

    delay = 0.5
    while True:
        attempt = asyncio.ensure_future(asyncio.to_thread(write, letter, position))
        try:
            await asyncio.shield(attempt)  # a cancellation must not hide this write's outcome
            return
        except SQLAlchemyError as exc:
            log.error("inbox: cannot store dead letter %s (retry in %.1fs): %s", letter.id, delay, exc)
        except asyncio.CancelledError:
            if not await _stored_anyway(attempt):
                await hand_back()
            raise
        try:
            await sleep(delay)
        except asyncio.CancelledError:
            await hand_back()
            raise
        delay = min(delay * 2, MAX_BACKOFF)


async def _stored_anyway(attempt: asyncio.Future[object]) -> bool:
    """After a cancellation: did the write that was running commit? (False when unknown.)"""
    try:
        await asyncio.shield(attempt)
        return True
    except (Exception, asyncio.CancelledError):
        return False


@app.agent(dead_letter_topic, name="dead-letter-store")
async def store_dead_letters(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        message = event.message
        position = f"{message.topic}:{message.partition}:{message.offset}"
        try:
            letter = DeadLetter.model_validate_json(event.value)
        except ValidationError as exc:
            log.error("inbox: record at %s is not a dead letter, skipped: %s", position, exc)
            continue
        await persist(letter, position, original=event.value, key=message.key)


@app.timer(inbox_settings().inbox_interval, on_leader=True)
async def inbox_jobs() -> None:
    """Resolve retried items whose document is now bound; refresh the open-items gauge."""
    try:
        resolved = await asyncio.to_thread(inbox().resolve_bound)
        if resolved:
            log.info("inbox: %d item(s) resolved (posted after retry)", resolved)
        inbox_metrics.set_open(await asyncio.to_thread(inbox().open_by_reason))
    except SQLAlchemyError as exc:
        log.warning("inbox jobs skipped: database unavailable: %s", exc)


@app.timer(inbox_settings().purge_interval, on_leader=True)
async def inbox_retention() -> None:
    """Delete resolved and discarded items older than the retention period (audit kept)."""
    try:
        purged = await asyncio.to_thread(inbox().purge, inbox_settings().retention_days)
    except SQLAlchemyError as exc:
        log.warning("inbox retention skipped: database unavailable: %s", exc)
        return
    if purged:
        log.info("inbox: purged %d closed item(s)", purged)
