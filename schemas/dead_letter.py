"""Dead-letter records: everything needed to understand, fix and replay a failure."""

from __future__ import annotations

import base64
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.money import Currency, Money


class Reason(StrEnum):
    """Why a record is here. Stable codes: alerts, filters and the inbox key on them."""

    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    UNKNOWN_TENANT = "unknown_tenant"
    NO_LEDGER = "no_ledger"
    OVER_CREDIT = "over_credit"
    ACCOUNTING_RULE = "accounting_rule"
    LEDGER_REJECTED = "ledger_rejected"
    RETRIES_EXHAUSTED = "retries_exhausted"
    NOT_FOUND = "not_found"
    INTERNAL_ERROR = "internal_error"


class SourcePosition(BaseModel):
    model_config = ConfigDict(frozen=True)
    topic: str
    partition: int
    offset: int


class LedgerResponse(BaseModel):
    status: int | None = None
    body: Any = None
    messages: tuple[str, ...] = ()


class DeadLetter(BaseModel):
    """One failed input or command, with its original bytes."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="stable: the command's idempotency key or source position")
    reason_code: Reason
    reason: str = Field(description="human-readable, names the field or the ledger's message")
    original_b64: str = Field(description="the exact bytes received, base64")
    payload: dict[str, Any] | None = Field(None, description="decoded JSON, when it decoded")
    command: dict[str, Any] | None = Field(None, description="the posting command, when one failed")
    ledger_response: LedgerResponse | None = None
    tenant_id: str | None = None
    ledger: str | None = None
    kind: str | None = None
    order_id: str | None = None
    amount: Money | None = None
    currency: Currency | None = None
    attempts: int = 1
    first_failed_at: AwareDatetime
    last_failed_at: AwareDatetime
    source: SourcePosition | None = None
    resolves_with: str | None = Field(
        None,
        description=(
            "the binding whose existence proves this item done: the source id of the part still "
            "pending when the command's main document was created but a second part failed (a "
            "payment's '<id>#fee', a credit note's '<id>#allocation', a sales receipt's "
            "'<id>#payment'); None: the command's own source_id"
        ),
    )

    @staticmethod
    def encode(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)


def now_utc() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
