"""One order event in, a routed result out: decode, check the key, look up config and state,
apply the rules. One tenant-config record in, what to do with the config table.

No Kafka here, so it is tested directly; `agents.enrich` wraps it in Faust agents.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from accounting.engine import Unapplied, apply
from accounting.outcome import Outcome
from accounting.state import OrderState
from accounting.summary import SummaryContribution
from agents import dead_letters
from schemas.commands import PostingCommand
from schemas.dead_letter import DeadLetter, Reason, SourcePosition
from schemas.events import parse_event
from schemas.tenant import TenantConfig

log = logging.getLogger(__name__)


@dataclass
class Enriched:
    """What to do with one input: exactly one outcome, plus what to send and store."""

    outcome: Outcome
    commands: tuple[PostingCommand, ...] = ()
    summary: tuple[SummaryContribution, ...] = ()
    state: OrderState | None = None
    dead_letter: DeadLetter | None = None
    order_id: str | None = field(default=None)
    unapplied: tuple[DeadLetter, ...] = ()
    """Dead letters for money the rules could not apply (over-payments), besides the outcome."""
    warnings: tuple[str, ...] = ()


def describe(error: ValidationError) -> tuple[Reason, str]:
    """A reason code and a message that names each bad field."""
    if any(e["type"] == "json_invalid" for e in error.errors()):
        return Reason.INVALID_JSON, f"not valid JSON: {error.errors()[0]['msg']}"
    parts = []
    for e in error.errors()[:10]:
        loc = ".".join(str(p) for p in e["loc"]) or "(event)"
        parts.append(f"{loc}: {e['msg']}")
    return Reason.SCHEMA_VIOLATION, "; ".join(parts)


def enrich(
    raw: bytes,
    *,
    key: bytes | None,
    source: SourcePosition | None,
    config_for: Callable[[str], TenantConfig | None],
    state_for: Callable[[str], OrderState | None],
    now: datetime,
) -> Enriched:
    """Book one raw event. Never raises for bad input: that becomes a dead letter.

    `key` is the Kafka message key: it must be the order id, else the order's events could be
    split over partitions (read out of order, state on two workers), so the event is refused.
    """

    def dead(code: Reason, reason: str, payload: dict | None = None) -> Enriched:
        letter = dead_letters.for_input(
            raw, reason_code=code, reason=reason, source=source, at=now, payload=payload
        )
        return Enriched(Outcome.dead_letter(code, reason), dead_letter=letter)

    try:
        event = parse_event(raw)
    except ValidationError as exc:
        return dead(*describe(exc))
    if key is None or key != event.order_id.encode():
        got = "no key" if key is None else f"key {key.decode(errors='replace')!r}"
        return dead(
            Reason.SCHEMA_VIOLATION,
            f"key must be the order id: the event for order {event.order_id!r} came with {got}; "
            "publish it again keyed by its order_id",
        )
    try:
        config = config_for(event.tenant_id)
    except ValidationError as exc:
        log.error("stored configuration of tenant %s is invalid: %s", event.tenant_id, exc)
        return dead(
            Reason.UNKNOWN_TENANT,
            f"tenant {event.tenant_id!r} has no valid configuration: {describe(exc)[1]}",
        )
    if config is None:
        return dead(Reason.UNKNOWN_TENANT, f"tenant {event.tenant_id!r} has no configuration")
    try:
        decision = apply(state_for(event.order_id), event, config)
    except Exception as exc:  # a bug in the rules must not stop the stream or lose the event
        log.exception("rules failed on event %s", event.event_id)
        return dead(Reason.INTERNAL_ERROR, f"internal error in the accounting rules: {exc!r}")
    if decision.outcome.kind == "dead_letter":
        return Enriched(
            decision.outcome,
            dead_letter=dead_letters.for_input(
                raw,
                reason_code=Reason(decision.outcome.reason_code),
                reason=decision.outcome.reason,
                source=source,
                at=now,
            ),
            order_id=event.order_id,
        )
    return Enriched(
        decision.outcome,
        commands=decision.commands,
        summary=decision.summary,
        state=decision.state,
        order_id=event.order_id,
        unapplied=tuple(
            _unapplied_letter(u, event.tenant_id, event.order_id, event.event_id, source, now)
            for u in decision.unapplied
        ),
        warnings=decision.warnings,
    )


def _unapplied_letter(
    money: Unapplied,
    tenant_id: str,
    order_id: str,
    found_by: str,
    source: SourcePosition | None,
    now: datetime,
) -> DeadLetter:
    """A dead letter for parked payment money that can never be applied (one per ledger).

    Its "original" is a JSON description of that money (the payment event itself was booked
    earlier and is not at hand): which payment, how much, and the event that found it left over.
    """
    payload = {
        "type": "payment.captured",
        "tenant_id": tenant_id,
        "order_id": order_id,
        "payment_id": money.payment_id,
        "event_id": money.event_id,
        "gateway": money.gateway,
        "currency": money.currency,
        "ledger": money.ledger,
        "unapplied": format(money.amount, "f"),
        "found_by_event_id": found_by,
    }
    return DeadLetter(
        id=f"unapplied:{tenant_id}:{money.ledger}:{order_id}:{money.payment_id}",
        reason_code=money.code,
        reason=money.reason,
        original_b64=DeadLetter.encode(json.dumps(payload, sort_keys=True).encode()),
        payload=payload,
        tenant_id=tenant_id,
        ledger=money.ledger,
        kind="payment.captured",
        order_id=order_id,
        amount=money.amount,
        currency=money.currency,
        first_failed_at=now,
        last_failed_at=now,
        source=source,
    )


@dataclass(frozen=True)
class ConfigUpdate:
    """What one tenant-config record does to the table: store, delete, ignore or dead-letter."""

    action: str  # "store" | "delete" | "ignore" | "dead_letter"
    tenant_id: str
    config: TenantConfig | None = None
    dead_letter: DeadLetter | None = None
    reason: str = ""


def route_tenant_config(
    key: bytes | None,
    value: bytes | None,
    *,
    current: Callable[[str], TenantConfig | None],
    source: SourcePosition | None,
    now: datetime,
) -> ConfigUpdate:
    """One record of the compacted tenant-config topic (keyed by tenant id).

    A tombstone (no value) deletes the tenant; a record that does not validate, or whose key is
    not its `tenant_id`, is dead-lettered (schema_violation, original bytes, source position);
    an older version than the one loaded is ignored.
    """
    tenant_id = (key or b"").decode(errors="replace")

    def dead(reason: str) -> ConfigUpdate:
        letter = dead_letters.for_input(
            value or b"", reason_code=Reason.SCHEMA_VIOLATION, reason=reason, source=source, at=now
        )
        if letter.tenant_id is None and tenant_id:
            letter = letter.model_copy(update={"tenant_id": tenant_id})
        letter = letter.model_copy(update={"kind": "tenant.config"})
        return ConfigUpdate("dead_letter", tenant_id, dead_letter=letter, reason=reason)

    if value is None:
        if not tenant_id:
            return ConfigUpdate("ignore", tenant_id, reason="a tombstone without a key")
        return ConfigUpdate("delete", tenant_id, reason="tombstone: the tenant's configuration is removed")
    try:
        config = TenantConfig.model_validate_json(value)
    except ValidationError as exc:
        return dead(f"invalid tenant configuration for key {tenant_id!r}: {describe(exc)[1]}")
    if key is None or tenant_id != config.tenant_id:
        return dead(
            f"key must be the tenant id: the configuration of tenant {config.tenant_id!r} "
            f"came with key {tenant_id!r}"
        )
    try:
        loaded = current(config.tenant_id)
    except ValidationError:
        loaded = None  # the stored one no longer validates: any valid version replaces it
    if loaded is not None and loaded.version > config.version:
        return ConfigUpdate(
            "ignore",
            config.tenant_id,
            config,
            reason=f"version {config.version} is older than the loaded {loaded.version}",
        )
    return ConfigUpdate("store", config.tenant_id, config, reason=f"version {config.version}")
