"""`TokenManager`: one writer per tenant for Xero token refresh (house convention 5).

`access_token(tenant_id)` returns the stored access token while it has more than 5 minutes
left. Otherwise it refreshes:

1. open a transaction and lock the connection row (`SELECT ... FOR UPDATE` on PostgreSQL,
   `BEGIN IMMEDIATE` on SQLite — see `store.connections.lock`);
2. re-read inside the lock: another worker may have refreshed already → use its token;
3. call the token endpoint with the stored refresh token;
4. store the rotated refresh token and the new access token and COMMIT, and only then
   return the new access token. If the commit failed after Xero rotated, the old refresh
   token still works for Xero's 30-minute grace period, so the next attempt recovers.

`invalid_grant` marks the connection `needs_reconnect` (committed) and raises `AuthRevoked`.
DB work is sync SQLAlchemy run through `asyncio.to_thread`; the row lock is held across the
token call (one HTTP round trip), which is the point: other workers wait, then re-read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from connectors.errors import AuthRevoked
from connectors.xero.oauth import LEDGER, TokenSet, XeroOAuth
from store import connections
from store.base import utcnow

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class _Snapshot:
    access_token: str
    organisation_id: str
    expires_at: datetime
    status: str

    def __repr__(self) -> str:
        return f"_Snapshot(organisation_id={self.organisation_id!r}, status={self.status!r})"


class TokenManager:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: connections.TokenCipher,
        oauth: XeroOAuth,
        *,
        margin: timedelta = REFRESH_MARGIN,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.cipher = cipher
        self.oauth = oauth
        self.margin = margin
        self.clock = clock

    def __repr__(self) -> str:
        return "TokenManager()"

    # ------------------------------------------------------------ reads

    def _snapshot(self, tenant_id: str) -> _Snapshot | None:
        with self.sessions() as session:
            row = connections.get(session, tenant_id, LEDGER)
            if row is None:
                return None
            return _Snapshot(
                row.access_token(self.cipher), row.organisation_id, row.access_expires_at, row.status
            )

    @staticmethod
    def _usable(snap: _Snapshot | None, tenant_id: str) -> _Snapshot:
        if snap is None:
            raise AuthRevoked(f"tenant {tenant_id} has no Xero connection")
        if snap.status != "active":
            raise AuthRevoked(f"tenant {tenant_id}: Xero connection is {snap.status}")
        return snap

    async def access_token(self, tenant_id: str) -> tuple[str, str]:
        """`(access_token, organisation_id)`, refreshed first when it expires within the margin."""
        snap = self._usable(await asyncio.to_thread(self._snapshot, tenant_id), tenant_id)
        if snap.expires_at - self.clock() > self.margin:
            return snap.access_token, snap.organisation_id
        return await self._refresh(tenant_id, stale_token=None)

    async def refresh(self, tenant_id: str, *, stale_token: str) -> tuple[str, str]:
        """Force a refresh after Xero rejected `stale_token` (401) — unless someone already did."""
        return await self._refresh(tenant_id, stale_token=stale_token)

    # ------------------------------------------------------------ refresh under the lock

    async def _refresh(self, tenant_id: str, *, stale_token: str | None) -> tuple[str, str]:
        session = self.sessions()
        try:
            row = await asyncio.to_thread(connections.lock, session, tenant_id, LEDGER)
            if row is None or row.status != "active":
                status = "missing" if row is None else row.status
                await asyncio.to_thread(session.rollback)
                raise AuthRevoked(f"tenant {tenant_id}: Xero connection is {status}")
            current = row.access_token(self.cipher)
            if stale_token is None:
                fresh = row.access_expires_at - self.clock() > self.margin
            else:
                fresh = current != stale_token
            if fresh:  # another worker refreshed while we waited for the lock
                organisation_id = row.organisation_id
                await asyncio.to_thread(session.rollback)
                return current, organisation_id
            try:
                tokens = await self.oauth.refresh(row.refresh_token(self.cipher))
            except AuthRevoked as exc:
                await asyncio.to_thread(self._needs_reconnect, session, row, exc.message)
                log.warning("xero refresh token of tenant %s is dead: needs reconnect", tenant_id)
                raise
            organisation_id = row.organisation_id
            await asyncio.to_thread(self._persist, session, row, tokens)
            log.info("xero tokens of tenant %s refreshed", tenant_id)
            return tokens.access_token, organisation_id
        finally:
            await asyncio.to_thread(session.close)

    def _persist(self, session: Session, row: connections.LedgerConnection, tokens: TokenSet) -> None:
        row.set_tokens(
            self.cipher,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            access_expires_at=tokens.expires_at,
        )
        session.commit()  # the rotated refresh token is durable before anyone uses the access token

    @staticmethod
    def _needs_reconnect(session: Session, row: connections.LedgerConnection, message: str) -> None:
        connections.mark(session, row, "needs_reconnect", message)
        session.commit()

    # ------------------------------------------------------------ housekeeping

    async def refresh_idle(self, older_than: timedelta = timedelta(days=50)) -> dict[str, str]:
        """Refresh connections not refreshed for `older_than` (refresh tokens die after 60 idle days).

        Returns tenant id → "refreshed" / "needs_reconnect" / "error: …"; run it daily.
        """

        def idle_tenants() -> list[str]:
            with self.sessions() as session:
                return [row.tenant_id for row in connections.idle(session, LEDGER, self.clock() - older_than)]

        outcome: dict[str, str] = {}
        for tenant_id in await asyncio.to_thread(idle_tenants):
            try:
                await self._refresh_if_idle(tenant_id, older_than)
                outcome[tenant_id] = "refreshed"
            except AuthRevoked:
                outcome[tenant_id] = "needs_reconnect"
            except Exception as exc:  # report and carry on with the other tenants; nothing retried here
                outcome[tenant_id] = f"error: {type(exc).__name__}"
        return outcome

    async def _refresh_if_idle(self, tenant_id: str, older_than: timedelta) -> None:
        session = self.sessions()
        try:
            row = await asyncio.to_thread(connections.lock, session, tenant_id, LEDGER)
            if row is None or row.status != "active" or row.refreshed_at >= self.clock() - older_than:
                await asyncio.to_thread(session.rollback)
                return
            try:
                tokens = await self.oauth.refresh(row.refresh_token(self.cipher))
            except AuthRevoked as exc:
                await asyncio.to_thread(self._needs_reconnect, session, row, exc.message)
                raise
            await asyncio.to_thread(self._persist, session, row, tokens)
        finally:
            await asyncio.to_thread(session.close)
