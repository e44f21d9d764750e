"""The inbox's agent and jobs: persist every dead letter; resolve, purge, and count the inbox.

No record is lost when the database is down: the agent retries the write with a capped
backoff *inside* its loop and does not take the next record until the write committed, so
Faust never acknowledges (commits the offset of) a record that is not stored; a worker that
crashes meanwhile re-reads it from Kafka. Re-delivery is harmless: items remember the
position of the last record applied (`store.dead_letters.upsert`). Records that are not
DeadLetter JSON are logged and skipped (nothing to store; they stay in the topic).
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from inbox.metrics import InboxMetrics
from inbox.settings import inbox_settings
from inbox.worker import inbox
from schemas.dead_letter import DeadLetter
from store import dead_letters as dl
from streams.app import app, dead_letter_topic, registry
from streams.database import sessions

log = logging.getLogger(__name__)
inbox_metrics = InboxMetrics(registry)
MAX_BACKOFF = 30.0


def _store(letter: DeadLetter, position: str) -> bool:
    with sessions().begin() as session:
        _, created = dl.upsert(session, letter, position)
        return created


async def persist(letter: DeadLetter, position: str, sleep=asyncio.sleep, store=None) -> None:  # type: ignore[no-untyped-def]
    """Write until it succeeds; a database outage blocks this partition, it loses nothing."""
    delay = 0.5
    while True:
        try:
            await asyncio.to_thread(store or _store, letter, position)
            return
        except SQLAlchemyError as exc:
            log.error("inbox: cannot store dead letter %s (retry in %.1fs): %s", letter.id, delay, exc)
            await sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)


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
        await persist(letter, position)


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
