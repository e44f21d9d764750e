"""Daily-summary mode: accumulate contributions per (tenant, ledger, day, currency), close the day.

The summaries topic is keyed by tenant id and carries two kinds of record:

* a `SummaryContribution` (JSON, from `agents.enrich`): added to that day's `DayBook` in the
  `daily-summary` table (co-partitioned with the topic); one delivered twice is dropped;
* `{"close": <book key>}`: sent by the timer on every worker for each local book that is due
  (midnight after the day in the tenant's `policy.timezone` plus the grace period) or ready
  to compact. The agent, which owns the book's partition, closes it with `close_day`, sends
  the documents to `ledger.<ledger>.commands` keyed by tenant id, and stores the book emptied
  (part + 1). Table writes happen only here, inside the stream. Books are never deleted: a
  late contribution must find the part counter (the dedup keys are dropped after `keep_days`).

One tenant's trouble (a configuration that no longer loads, a zone that fails, a close that
raises) is logged, counted in `ledgerstream_summary_errors_total{stage}` and skipped: the other
tenants' days still close, and the timer asks again on its next tick.

A crash between sending the documents and storing the emptied book closes the same part again:
the same source ids and idempotency keys, so the ledger connector binds, never duplicates.
Contributions that arrive after a close are closed as the next part (`summary:…:2`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from pydantic import Field, TypeAdapter, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from accounting.summary import DayBook, SummaryContribution
from agents import dead_letters
from agents.enrich import send_dead_letter, tenant_config
from schemas.dead_letter import Reason, SourcePosition
from streams.app import app, command_topics, conf, metrics, summaries_topic

log = logging.getLogger(__name__)


class SummarySettings(BaseSettings):
    """`LEDGERSTREAM_SUMMARY_*` variables."""

    model_config = SettingsConfigDict(env_prefix="LEDGERSTREAM_SUMMARY_", extra="ignore")

    grace_seconds: float = Field(600.0, ge=0, description="wait after midnight (tenant zone) before closing")
    tick_seconds: float = Field(15.0, gt=0, description="how often each worker looks for days to close")
    keep_days: float = Field(2.0, ge=0, description="keep a closed day's dedup keys this long after closing")


summary_settings = SummarySettings()
summary_errors = Counter(
    "ledgerstream_summary_errors_total",
    "Daily-summary books skipped because of an error (stage: due_check, close); retried next tick.",
    ["stage"],
    registry=metrics.registry,
)
contribution_adapter: TypeAdapter[SummaryContribution] = TypeAdapter(SummaryContribution)

# DayBook JSON by DayBook.key_of(...); written only by `summarise`, on the summaries topic's partitions.
day_books = app.Table("daily-summary", default=None, partitions=conf.partitions, key_type=str, value_type=str)


def _book(key: str) -> DayBook | None:
    raw = day_books.get(key)
    return DayBook.model_validate_json(raw) if raw else None


def _timezone(tenant_id: str) -> str:
    config = tenant_config(tenant_id)
    return config.policy.timezone if config else "UTC"


@app.agent(summaries_topic)
async def summarise(stream):  # type: ignore[no-untyped-def]
    """Add contributions to their day; close a day when asked and it is due."""
    async for event in stream.events():
        try:
            record = json.loads(event.value)
            if isinstance(record, dict) and "close" in record:
                await _close_logged(str(record["close"]))
                continue
            part = contribution_adapter.validate_python(record)
        except (ValueError, ValidationError) as exc:
            message = event.message
            source = SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)
            log.error("summary record at %s rejected: %s", source, exc)
            await send_dead_letter(
                dead_letters.for_input(
                    event.value,
                    reason_code=Reason.INTERNAL_ERROR,
                    reason=f"unreadable summary record: {exc}",
                    source=source,
                    at=datetime.now(UTC),
                )
            )
            continue
        key = DayBook.key_of(part)
        book = _book(key) or DayBook.for_contribution(part)
        if book.add(part):
            day_books[key] = book.model_dump_json()
        else:
            log.info("summary contribution %s already added to %s", part.dedup_key, key)


async def _close_logged(key: str) -> None:
    """`_close`, with any error logged and counted: the book stays open and is asked again."""
    try:
        await _close(key)
    except Exception:  # one tenant's book must not stop the agent: log, count, ask again next tick
        summary_errors.labels("close").inc()
        log.exception("cannot close summary book %s; it stays open and is retried on the next tick", key)


async def _close(key: str) -> None:
    book = _book(key)
    if book is None:
        return
    config = tenant_config(book.tenant_id)
    now = datetime.now(UTC)
    timezone = config.policy.timezone if config else "UTC"
    grace = timedelta(seconds=summary_settings.grace_seconds)
    if book.compactable(now, timedelta(days=summary_settings.keep_days)):
        book.compact()
        day_books[key] = book.model_dump_json()
        return
    if not book.due(now, timezone, grace):
        return
    if config is None:
        log.warning("cannot close %s: tenant %s has no configuration", key, book.tenant_id)
        return
    commands = book.close(config.policy, now)
    delivered = []
    for command in commands:
        delivered.append(
            await command_topics[command.ledger].send(
                key=command.tenant_id.encode(), value=command.model_dump_json().encode(), force=True
            )
        )
        metrics.commands_emitted.labels(command.ledger, command.kind).inc()
        metrics.summaries_closed.labels(command.ledger, command.kind).inc()
    await asyncio.gather(*delivered)  # on the broker before the book forgets what it held
    day_books[key] = book.model_dump_json()
    log.info("closed %s part %d: %d document(s)", key, book.part - 1, len(commands))


@app.timer(summary_settings.tick_seconds)
async def close_due_days() -> None:
    """Ask the owning agent to close every local day that is due (a repeated ask is a no-op)."""
    now = datetime.now(UTC)
    grace = timedelta(seconds=summary_settings.grace_seconds)
    keep = timedelta(days=summary_settings.keep_days)
    for key, raw in list(day_books.items()):
        try:
            book = DayBook.model_validate_json(raw)
            ask = book.due(now, _timezone(book.tenant_id), grace) or book.compactable(now, keep)
        except Exception:  # one tenant's config or zone must not stop the timer for all others
            summary_errors.labels("due_check").inc()
            log.exception("cannot tell whether summary book %s is due; skipped this tick", key)
            continue
        if ask:
            await summaries_topic.send(key=book.tenant_id.encode(), value=json.dumps({"close": key}).encode())
