"""The small contract every ledger connector implements (Xero, QuickBooks Online, Moloni)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from connectors.errors import LedgerError
from schemas.commands import PostingCommand
from schemas.ledger import LedgerAccount, LedgerTaxRate


@dataclass(frozen=True)
class PostResult:
    """The fate of one command in a batch: posted (with the ledger's id) or an error."""

    idempotency_key: str
    external_id: str | None = None
    error: LedgerError | None = None
    already_bound: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Quota:
    """Remaining calls the ledger reported on its last response, for metrics and health."""

    minute_remaining: int | None = None
    day_remaining: int | None = None


class LedgerConnector(Protocol):
    ledger: str
    max_batch: int

    async def post(self, tenant_id: str, commands: Sequence[PostingCommand]) -> list[PostResult]:
        """Post commands of one tenant, in order; one result per command, same order.

        Looks up the binding before any create and records it on success, so a replay
        never creates a second document. Errors that concern the whole call (rate
        limits, auth, outages) are raised; per-document rejections are results.
        """
        ...

    async def tax_rates(self, tenant_id: str) -> list[LedgerTaxRate]: ...

    async def accounts(self, tenant_id: str) -> list[LedgerAccount]: ...

    def quota(self, tenant_id: str) -> Quota: ...
