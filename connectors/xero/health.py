"""Connection health for Xero: what `GET /health/connections` and `ledgerstream xero check` show.

`describe(row, quota, now)` turns a stored connection (plus the quota the client last saw in
this process) into a JSON-able dict; `check(tenant_id, ...)` goes further and talks to Xero:
token (refreshed if needed) → `GET /Organisation`, and returns the problems it found.
Tokens never appear in either.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors.errors import LedgerError, Transient
from connectors.protocol import Quota
from connectors.xero.client import Auth, XeroClient
from connectors.xero.oauth import LEDGER
from connectors.xero.tokens import TokenManager
from store import connections
from store.base import utcnow

REFRESH_TOKEN_LIFETIME = timedelta(days=60)  # Xero: a refresh token unused for 60 days dies


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def describe(row: connections.LedgerConnection, quota: Quota, now: datetime) -> dict[str, Any]:
    """One connection as JSON (no tokens)."""
    parked = row.day_parked_until if row.day_parked_until and row.day_parked_until > now else None
    return {
        "tenant_id": row.tenant_id,
        "ledger": row.ledger,
        "organisation_id": row.organisation_id,
        "organisation_name": row.organisation_name,
        "status": row.status,
        "last_success_at": _iso(row.last_success_at),
        "access_token_expires_at": _iso(row.access_expires_at),
        "refreshed_at": _iso(row.refreshed_at),
        "refresh_token_expires_at": _iso(row.refreshed_at + REFRESH_TOKEN_LIFETIME),
        "minute_calls_remaining": quota.minute_remaining,
        "day_calls_remaining": quota.day_remaining,
        "last_error": row.last_error,
        "day_parked_until": _iso(parked),
    }


def list_connections(sessions: sessionmaker[Session], quota_of: Any = None) -> list[dict[str, Any]]:
    """Every Xero connection, described; `quota_of(tenant_id) -> Quota` when a connector is at hand."""
    from sqlalchemy import select

    now = utcnow()
    with sessions() as session:
        rows = session.scalars(
            select(connections.LedgerConnection)
            .where(connections.LedgerConnection.ledger == LEDGER)
            .order_by(connections.LedgerConnection.tenant_id)
        )
        return [describe(row, quota_of(row.tenant_id) if quota_of else Quota(), now) for row in rows]


@dataclass
class CheckResult:
    tenant_id: str
    problems: list[str] = field(default_factory=list)
    organisation: dict[str, Any] | None = None
    connection: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


async def check(
    tenant_id: str, sessions: sessionmaker[Session], tokens: TokenManager, client: XeroClient
) -> CheckResult:
    """Load the connection, get a usable access token (refreshing it if due), call GET /Organisation."""
    result = CheckResult(tenant_id)

    def load() -> dict[str, Any] | None:
        with sessions() as session:
            row = connections.get(session, tenant_id, LEDGER)
            return describe(row, Quota(), utcnow()) if row is not None else None

    result.connection = await asyncio.to_thread(load)
    if result.connection is None:
        result.problems.append(f"tenant {tenant_id} has no Xero connection")
        return result
    if result.connection["day_parked_until"]:
        until = result.connection["day_parked_until"]
        result.problems.append(f"daily API limit reached; parked until {until}")
    try:
        token, org_id = await tokens.access_token(tenant_id)
        try:
            org = await client.organisation(Auth(token, org_id))
        except Transient as exc:
            if exc.status != 401:
                raise
            token, org_id = await tokens.refresh(tenant_id, stale_token=token)
            org = await client.organisation(Auth(token, org_id))
    except LedgerError as exc:
        result.problems.append(f"{type(exc).__name__}: {exc.message}")
    else:
        if org is None:
            result.problems.append("GET /Organisation returned no organisation")
        else:
            result.organisation = {
                "id": org.get("OrganisationID"),
                "name": org.get("Name"),
                "base_currency": org.get("BaseCurrency"),
                "country": org.get("CountryCode"),
            }
            if org.get("OrganisationID") and org["OrganisationID"] != result.connection["organisation_id"]:
                result.problems.append("Xero answered for a different organisation than the one stored")
    quota = client.quota(result.connection["organisation_id"])
    result.connection["minute_calls_remaining"] = quota.minute_remaining
    result.connection["day_calls_remaining"] = quota.day_remaining
    result.connection = await asyncio.to_thread(_refresh_description, sessions, tenant_id, quota) or (
        result.connection
    )
    return result


def _refresh_description(
    sessions: sessionmaker[Session], tenant_id: str, quota: Quota
) -> dict[str, Any] | None:
    with sessions() as session:
        row = connections.get(session, tenant_id, LEDGER)
        return describe(row, quota, utcnow()) if row is not None else None
