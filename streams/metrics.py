"""Prometheus metrics, built against a registry passed in (no global registry at import).

Labels are bounded: outcomes, reason codes, ledgers, document kinds, error classes and
tenants (a tenant is a paying merchant, not an order); never order or event ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = Counter(
            "ledgerstream_events_total",
            "Input events by how they ended (emitted, skipped, parked, dead_letter).",
            ["outcome", "reason"],
            registry=registry,
        )
        self.commands_emitted = Counter(
            "ledgerstream_commands_emitted_total",
            "Posting commands emitted by enrichment.",
            ["ledger", "kind"],
            registry=registry,
        )
        self.posts = Counter(
            "ledgerstream_posts_total",
            "Posting command results (posted, already_bound, parked, dead_letter).",
            ["ledger", "kind", "result"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "ledgerstream_dead_letters_total",
            "Records sent to the dead-letter topic.",
            ["reason"],
            registry=registry,
        )
        self.ledger_errors = Counter(
            "ledgerstream_ledger_errors_total",
            "Errors answered by a ledger API, by class (RateLimited, Transient, Rejected, ...).",
            ["ledger", "error"],
            registry=registry,
        )
        self.ledger_calls = Histogram(
            "ledgerstream_ledger_post_seconds",
            "Time of one connector post call (one batch).",
            ["ledger"],
            registry=registry,
        )
        self.parked = Gauge(
            "ledgerstream_parked_commands",
            "Commands parked, waiting for a reconnect, a quota reset or their invoice.",
            ["ledger", "waiting_for"],
            registry=registry,
        )
        self.quota_remaining = Gauge(
            "ledgerstream_ledger_quota_remaining",
            "Calls left in the ledger's current window, as the ledger last reported.",
            ["ledger", "tenant", "window"],
            registry=registry,
        )
        self.tenant_config_version = Gauge(
            "ledgerstream_tenant_config_version",
            "Version of each tenant's configuration this worker has loaded.",
            ["tenant"],
            registry=registry,
        )
        self.tenants_blocked = Gauge(
            "ledgerstream_tenants_blocked",
            "Tenants whose posting is paused (needs_reconnect or day limit).",
            ["ledger", "why"],
            registry=registry,
        )
        self.summaries_closed = Counter(
            "ledgerstream_summaries_closed_total",
            "Daily summaries closed into documents (kind: invoice.create, credit_note.create).",
            ["ledger", "kind"],
            registry=registry,
        )
