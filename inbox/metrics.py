"""The inbox's Prometheus gauge, built against a passed-in registry (no global registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from schemas.dead_letter import Reason


class InboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge(
            "ledgerstream_dead_letters_open",
            "Inbox items waiting for finance (status open), by reason code.",
            ["reason"],
            registry=registry,
        )

    def set_open(self, counts: dict[str, int]) -> None:
        for reason in Reason:  # bounded labels; zeros so an alert resolves
            self.open.labels(reason.value).set(counts.get(reason.value, 0))
