"""Topic names, one place. Keys: order id for order events, tenant id for everything after."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicNames:
    prefix: str = ""

    @property
    def orders(self) -> str:
        """Every order, fulfillment, refund and payment event, keyed by order id."""
        return f"{self.prefix}orders.events"

    def commands(self, ledger: str) -> str:
        """Posting commands for one ledger, keyed by tenant id."""
        return f"{self.prefix}ledger.{ledger}.commands"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}ledger.dead-letter"

    @property
    def tenant_config(self) -> str:
        """Compacted: the latest TenantConfig JSON per tenant id."""
        return f"{self.prefix}tenant-config"

    @property
    def summaries(self) -> str:
        """Daily-summary contributions, keyed by tenant id."""
        return f"{self.prefix}ledger.summaries"
