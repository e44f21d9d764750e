"""In-memory sandbox state: clock, organisations and their documents, identity records."""

from __future__ import annotations

import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.xero.sandbox.config import AccountSeed, OrgConfig, SandboxConfig, TaxRateSeed
from connectors.xero.sandbox.faults import Faults
from connectors.xero.sandbox.idempotency import IdempotencyCache
from connectors.xero.sandbox.limits import RateLimiter
from connectors.xero.sandbox.wire import ms_date

_NS = uuid.UUID("5e1d7c3a-8f0b-4b6e-9c2d-1a2b3c4d5e6f")


class Clock:
    """Wall clock with an adjustable offset so tests can move time forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        """Current (possibly advanced) UTC time."""
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.offset += seconds


def _tax_rate_wire(seed: TaxRateSeed) -> dict[str, Any]:
    rate = seed.rate.quantize(Decimal("0.0001"))
    return {
        "Name": seed.name,
        "TaxType": seed.tax_type,
        "ReportTaxType": seed.report_tax_type,
        "CanApplyToAssets": True,
        "CanApplyToEquity": True,
        "CanApplyToExpenses": True,
        "CanApplyToLiabilities": True,
        "CanApplyToRevenue": True,
        "DisplayTaxRate": rate,
        "EffectiveRate": rate,
        "Status": seed.status,
        "TaxComponents": [
            {
                "Name": "VAT" if seed.rate else "None",
                "Rate": rate,
                "IsCompound": False,
                "IsNonRecoverable": False,
            }
        ],
    }


def _account_wire(tenant_id: str, seed: AccountSeed, stamp: str) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "AccountID": str(uuid.uuid5(_NS, f"{tenant_id}/{seed.code}")),
        "Code": seed.code,
        "Name": seed.name,
        "Status": seed.status,
        "Type": seed.type,
        "TaxType": seed.tax_type,
        "Class": seed.account_class,
        "EnablePaymentsToAccount": seed.enable_payments,
        "ShowInExpenseClaims": False,
        "BankAccountType": "",
        "ReportingCode": "",
        "HasAttachments": False,
        "UpdatedDateUTC": stamp,
        "AddToWatchlist": False,
    }
    if seed.type == "BANK":
        wire |= {"BankAccountNumber": "12345678", "BankAccountType": "BANK"}
    return wire


@dataclass
class Org:
    """One organisation (tenant) and the documents posted to it."""

    config: OrgConfig
    tax_rates: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    credit_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    bank_transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    allocations: list[dict[str, Any]] = field(default_factory=list)
    sequences: Counter[str] = field(default_factory=Counter)

    @classmethod
    def seed(cls, config: OrgConfig, now: datetime) -> Org:
        """Build an org from its seed."""
        org = cls(config=config)
        stamp = ms_date(now)
        org.tax_rates = {t.tax_type: _tax_rate_wire(t) for t in config.tax_rates}
        org.accounts = {a.code: _account_wire(config.tenant_id, a, stamp) for a in config.accounts}
        return org

    def next_number(self, prefix: str) -> str:
        """Next document number in a sequence, e.g. INV-0001."""
        self.sequences[prefix] += 1
        return f"{prefix}-{self.sequences[prefix]:04d}"

    def put_tax_rate(self, seed: TaxRateSeed) -> dict[str, Any]:
        """Add or replace (e.g. re-activate) a tax rate."""
        self.tax_rates[seed.tax_type] = _tax_rate_wire(seed)
        return self.tax_rates[seed.tax_type]

    def put_account(self, seed: AccountSeed, now: datetime) -> dict[str, Any]:
        """Add or replace an account."""
        self.accounts[seed.code] = _account_wire(self.config.tenant_id, seed, ms_date(now))
        return self.accounts[seed.code]


@dataclass
class AuthCode:
    """An authorization code waiting to be exchanged."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    tenant_ids: list[str]
    auth_event_id: str
    expires_at: datetime
    challenge: str | None = None


@dataclass
class Grant:
    """One authorisation: the family of refresh/access tokens it produced."""

    grant_id: str
    client_id: str
    scope: str
    tenant_ids: list[str]
    revoked: bool = False


@dataclass
class RefreshToken:
    """A refresh token; `superseded_at` starts its grace period."""

    token: str
    grant_id: str
    issued_at: datetime
    superseded_at: datetime | None = None


@dataclass
class AccessToken:
    """An opaque bearer token."""

    token: str
    grant_id: str
    client_id: str
    scope: str
    expires_at: datetime


@dataclass
class Connection:
    """A tenant connected to an app (identity `Connection`)."""

    id: str
    client_id: str
    tenant_id: str
    auth_event_id: str
    created: datetime
    updated: datetime


class SandboxState:
    """All mutable sandbox state; `reset()` returns it to the seed."""

    def __init__(self, config: SandboxConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.now: Callable[[], datetime] = self.clock.now
        self.reset()

    def reset(self) -> None:
        """Forget every document, token, fault and counter."""
        now = self.now()
        self.orgs: dict[str, Org] = {o.tenant_id: Org.seed(o, now) for o in self.config.orgs}
        self.clients = {c.client_id: c for c in self.config.clients}
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.connections: dict[str, Connection] = {}
        self.request_log: deque[dict[str, Any]] = deque(maxlen=self.config.request_log_size)
        self.api_calls: Counter[str] = Counter()
        self.refused_calls: Counter[str] = Counter()  # 429s from the rate limits, per tenant
        self.limits = RateLimiter(self.config.limits, self.now)
        self.idempotency = IdempotencyCache(self.config.idempotency_seconds, self.now)
        self.faults = Faults()

    def connect(self, client_id: str, tenant_id: str, auth_event_id: str) -> Connection:
        """Connect (or reconnect) a tenant to an app."""
        now = self.now()
        for conn in self.connections.values():
            if conn.client_id == client_id and conn.tenant_id == tenant_id:
                conn.updated, conn.auth_event_id = now, auth_event_id
                return conn
        conn = Connection(str(uuid.uuid4()), client_id, tenant_id, auth_event_id, now, now)
        self.connections[conn.id] = conn
        return conn

    def revoke_grant(self, grant: Grant, tenant_ids: list[str] | None = None) -> None:
        """Revoke a grant's tokens and disconnect its tenants (all, or those given)."""
        grant.revoked = True
        self.access_tokens = {k: v for k, v in self.access_tokens.items() if v.grant_id != grant.grant_id}
        doomed = set(tenant_ids) if tenant_ids is not None else None
        self.connections = {
            k: c
            for k, c in self.connections.items()
            if not (c.client_id == grant.client_id and (doomed is None or c.tenant_id in doomed))
        }

    def bearer(self, token: str) -> AccessToken | None:
        """The live access token for a bearer string, if any."""
        access = self.access_tokens.get(token)
        if access is None or access.expires_at <= self.now():
            return None
        grant = self.grants.get(access.grant_id)
        return None if grant is None or grant.revoked else access

    def tenants_for(self, access: AccessToken) -> list[Connection]:
        """Connections reachable with an access token."""
        grant = self.grants[access.grant_id]
        conns = [c for c in self.connections.values() if c.client_id == access.client_id]
        if self.clients[access.client_id].custom_connection_org:
            conns = [c for c in conns if c.tenant_id in grant.tenant_ids]
        return conns
