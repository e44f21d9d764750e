"""Faust agents of posting: one per ledger, batching a tenant's commands into connector calls."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pydantic import ValidationError

from agents import dead_letters
from agents.enrich import send_dead_letter
from agents.enrichment import describe
from agents.posting import Poster
from connectors import registry
from schemas.commands import PostingCommand, command_adapter
from store.outbox import publish_pending
from streams.app import app, command_topics, conf, metrics
from streams.database import sessions

log = logging.getLogger(__name__)

_posters: dict[str, Poster] = {}


def now() -> datetime:
    return datetime.now(UTC)


def poster(ledger: str) -> Poster:
    if ledger not in _posters:
        _posters[ledger] = Poster(
            registry.build(ledger, sessions()),
            sessions(),
            send_dead_letter,
            metrics,
            max_attempts=conf.max_attempts,
        )
    return _posters[ledger]


async def resend(command: PostingCommand) -> None:
    await command_topics[command.ledger].send(
        key=command.tenant_id.encode(), value=command.model_dump_json().encode()
    )


def _posting_agent(ledger: str):  # type: ignore[no-untyped-def]
    async def post(stream):  # type: ignore[no-untyped-def]
        """Commands keyed by tenant: this worker owns those tenants' quota.

        `stream.take` acks every buffered event when the loop body ends, even by cancellation
        (SIGTERM, rebalance): `Poster.post` therefore parks (`parked.RETRY`) what it had not
        finished before letting a CancelledError through, and the redrive timer re-sends it.
        """
        async for batch in stream.take(poster(ledger).connector.max_batch, within=conf.post_batch_window):
            commands = []
            for raw in batch:
                try:
                    commands.append(command_adapter.validate_json(raw))
                except ValidationError as exc:
                    reason, text = describe(exc)
                    letter = dead_letters.for_input(
                        raw, reason_code=reason, reason=text, source=None, at=now()
                    )
                    await send_dead_letter(letter)
            await poster(ledger).post(commands)

    post.__name__ = f"post_{ledger}"
    return app.agent(command_topics[ledger], name=f"post-{ledger}")(post)


posting_agents = {ledger: _posting_agent(ledger) for ledger in conf.ledgers}


@app.timer(conf.redrive_interval, on_leader=True)
async def redrive_parked() -> None:
    """Re-publish parked commands whose reconnect, quota reset or invoice binding has come."""
    for ledger in conf.ledgers:
        released = await poster(ledger).redrive(resend)
        if released:
            log.info("re-drove %d parked %s command(s)", released, ledger)


@app.timer(2.0, on_leader=True)
async def relay_outbox() -> None:
    """Publish outbox rows (tenant config changes) that the CLI or API could not send."""

    async def send(topic: str, key: bytes, value: bytes) -> None:
        await app.send(topic, key=key, value=value, key_serializer="raw", value_serializer="raw")

    await publish_pending(sessions(), send)
