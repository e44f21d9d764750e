"""Building dead-letter records for bad input and for commands a ledger would not take."""

from __future__ import annotations

import json
from datetime import datetime

from connectors.errors import LedgerError, Rejected
from schemas.commands import (
    CreateCreditNote,
    CreateInvoice,
    CreatePayment,
    CreateSalesReceipt,
    PostingCommand,
)
from schemas.dead_letter import DeadLetter, LedgerResponse, Reason, SourcePosition


def for_input(
    raw: bytes,
    *,
    reason_code: Reason,
    reason: str,
    source: SourcePosition | None,
    at: datetime,
    payload: dict | None = None,
) -> DeadLetter:
    """An input event that could not be booked; keeps the exact bytes received."""
    if payload is None:
        try:
            decoded = json.loads(raw)
            payload = decoded if isinstance(decoded, dict) else None
        except ValueError:
            payload = None
    get = (payload or {}).get
    position = f"{source.topic}:{source.partition}:{source.offset}" if source else "unknown"
    return DeadLetter(
        id=f"input:{get('event_id') or position}",
        reason_code=reason_code,
        reason=reason,
        original_b64=DeadLetter.encode(raw),
        payload=payload,
        tenant_id=_str(get("tenant_id")),
        order_id=_str(get("order_id")),
        kind=_str(get("type")),
        first_failed_at=at,
        last_failed_at=at,
        source=source,
    )


def for_command(
    command: PostingCommand,
    *,
    reason_code: Reason,
    reason: str,
    attempts: int,
    at: datetime,
    error: LedgerError | None = None,
    source: SourcePosition | None = None,
) -> DeadLetter:
    """A posting command that failed; replaying it re-sends the same idempotency key.

    An error naming a `pending_source_id` (the main document was created, a second part of the
    command failed) makes that the letter's `resolves_with`: the item is done when it is bound.
    """
    raw = command.model_dump_json().encode()
    response = None
    if error is not None:
        messages = error.messages if isinstance(error, Rejected) else (error.message,)
        response = LedgerResponse(status=error.status, body=error.body, messages=tuple(messages))
    amount, currency = _amount(command)
    return DeadLetter(
        id=command.idempotency_key,
        reason_code=reason_code,
        reason=reason,
        original_b64=DeadLetter.encode(raw),
        command=json.loads(raw),
        ledger_response=response,
        tenant_id=command.tenant_id,
        ledger=command.ledger,
        kind=command.kind,
        order_id=command.order_id,
        amount=amount,
        currency=currency,
        attempts=attempts,
        first_failed_at=at,
        last_failed_at=at,
        source=source,
        resolves_with=error.pending_source_id if error is not None else None,
    )


def _amount(command: PostingCommand) -> tuple[object, str | None]:
    if isinstance(command, CreateInvoice | CreateSalesReceipt | CreateCreditNote):
        return command.document.total, command.document.currency
    if isinstance(command, CreatePayment):
        return command.amount, command.currency
    return None, None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
