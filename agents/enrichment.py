"""One order event in, a routed result out: decode, look up config and state, apply the rules.

No Kafka here, so it is tested directly; `agents.enrich` wraps it in a Faust agent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from accounting.engine import apply
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
    source: SourcePosition | None,
    config_for: Callable[[str], TenantConfig | None],
    state_for: Callable[[str], OrderState | None],
    now: datetime,
) -> Enriched:
    """Book one raw event. Never raises for bad input: that becomes a dead letter."""

    def dead(code: Reason, reason: str, payload: dict | None = None) -> Enriched:
        letter = dead_letters.for_input(
            raw, reason_code=code, reason=reason, source=source, at=now, payload=payload
        )
        return Enriched(Outcome.dead_letter(code, reason), dead_letter=letter)

    try:
        event = parse_event(raw)
    except ValidationError as exc:
        return dead(*describe(exc))
    config = config_for(event.tenant_id)
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
    )
