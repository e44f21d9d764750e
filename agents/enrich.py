"""Faust agents of enrichment: order events → posting commands; tenant config → table."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict
from datetime import UTC, datetime

from prometheus_client import Counter

from accounting.state import OrderState
from accounting.summary import SummaryContribution
from agents.enrichment import enrich, route_tenant_config
from schemas.dead_letter import DeadLetter, SourcePosition
from schemas.tenant import TenantConfig
from streams.app import (
    app,
    command_topics,
    dead_letter_topic,
    metrics,
    order_state,
    orders_topic,
    summaries_topic,
    tenant_config_topic,
    tenant_configs,
)

log = logging.getLogger(__name__)

rule_warnings = Counter(
    "ledgerstream_rule_warnings_total",
    "Things the accounting rules left out on purpose and said so (e.g. fee_dropped).",
    ["warning"],
    registry=metrics.registry,
)

_parsed: dict[str, tuple[str, TenantConfig]] = {}
"""tenant id → (the stored JSON, the config parsed from it): parsed once per stored version."""


def tenant_config(tenant_id: str) -> TenantConfig | None:
    """The tenant's loaded configuration (the global tenant-config table), or None.

    Parsed once per stored record (tenant, version), not per event; raises
    `pydantic.ValidationError` when the stored record no longer validates.
    """
    raw = tenant_configs.get(tenant_id)
    if not raw:
        _parsed.pop(tenant_id, None)
        return None
    cached = _parsed.get(tenant_id)
    if cached is not None and cached[0] == raw:
        return cached[1]
    config = TenantConfig.model_validate_json(raw)
    _parsed[tenant_id] = (raw, config)
    return config


def _state_for(order_id: str) -> OrderState | None:
    raw = order_state.get(order_id)
    return OrderState.model_validate_json(raw) if raw else None


async def send_dead_letter(letter: DeadLetter) -> None:
    key = (letter.tenant_id or "").encode()
    await dead_letter_topic.send(key=key, value=letter.model_dump_json().encode())
    metrics.dead_letters.labels(letter.reason_code.value).inc()


@app.agent(orders_topic)
async def enrich_orders(stream):  # type: ignore[no-untyped-def]
    """Every event ends emitted, skipped, parked (in the order state) or dead-lettered."""
    async for event in stream.events():
        message = event.message
        source = SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)
        result = enrich(
            event.value,
            key=event.key,
            source=source,
            config_for=tenant_config,
            state_for=_state_for,
            now=datetime.now(UTC),
        )
        # Commands and contributions reach the broker BEFORE the state records the event as
        # processed: a crash in between re-sends them (same idempotency keys / dedup keys)
        # instead of skipping the event as a duplicate with its commands lost. (Faust would
        # otherwise hold them until the offset commit, after the state's changelog write.)
        delivered = []
        for command in result.commands:
            delivered.append(
                await command_topics[command.ledger].send(
                    key=command.tenant_id.encode(), value=command.model_dump_json().encode(), force=True
                )
            )
            metrics.commands_emitted.labels(command.ledger, command.kind).inc()
        for part in result.summary:
            delivered.append(
                await summaries_topic.send(
                    key=part.tenant_id.encode(), value=_contribution_json(part), force=True
                )
            )
        await asyncio.gather(*delivered)
        if result.state is not None and result.order_id:
            order_state[result.order_id] = result.state.model_dump_json()
        if result.dead_letter is not None:
            await send_dead_letter(result.dead_letter)
        for letter in result.unapplied:
            await send_dead_letter(letter)
        for warning in result.warnings:
            rule_warnings.labels(warning).inc()
        metrics.events.labels(result.outcome.kind, result.outcome.reason_code).inc()
        log.info("event %s: %s (%s)", message.offset, result.outcome.kind, result.outcome.reason)


@app.agent(tenant_config_topic)
async def load_tenant_config(stream):  # type: ignore[no-untyped-def]
    """Materialise the compacted tenant-config topic (see `agents.enrichment.route_tenant_config`):
    invalid or wrongly keyed records are dead-lettered, tombstones delete the tenant."""
    async for event in stream.events():
        message = event.message
        source = SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)
        update = route_tenant_config(
            event.key, event.value, current=tenant_config, source=source, now=datetime.now(UTC)
        )
        tenant_id = update.tenant_id
        if update.action == "store" and update.config is not None:
            tenant_configs[tenant_id] = update.config.model_dump_json()
            metrics.tenant_config_version.labels(tenant_id).set(update.config.version)
            log.info("tenant %s config version %s loaded", tenant_id, update.config.version)
        elif update.action == "delete":
            if tenant_id in tenant_configs:
                del tenant_configs[tenant_id]
            _parsed.pop(tenant_id, None)
            with contextlib.suppress(KeyError):  # no gauge yet for this tenant
                metrics.tenant_config_version.remove(tenant_id)
            log.warning("tenant %s config deleted (tombstone at %s)", tenant_id, source)
        elif update.action == "dead_letter" and update.dead_letter is not None:
            log.error("tenant config at %s (key %r) rejected: %s", source, tenant_id, update.reason)
            await send_dead_letter(update.dead_letter)
        else:
            log.info("tenant config at %s (key %r) ignored: %s", source, tenant_id, update.reason)


def _contribution_json(part: SummaryContribution) -> bytes:
    return json.dumps(asdict(part), default=str, sort_keys=True).encode()


@tenant_configs.on_recover
async def _report_recovered_versions() -> None:
    """After a (re)start the table is filled from its changelog, not by the loading agent: report
    the versions it recovered, so `ledgerstream_tenant_config_version` is right from the start."""
    for tenant_id, raw in list(tenant_configs.items()):
        if not raw:
            continue
        try:
            config = TenantConfig.model_validate_json(raw)
        except ValueError as exc:
            log.error("recovered config of tenant %s no longer validates: %s", tenant_id, exc)
            continue
        metrics.tenant_config_version.labels(config.tenant_id).set(config.version)
