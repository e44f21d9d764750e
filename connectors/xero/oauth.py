"""Xero OAuth 2.0 authorisation-code flow (with PKCE S256) and connection bookkeeping.

Used by the web views (connect / callback / disconnect) and by `TokenManager` (refresh):

    oauth = XeroOAuth(settings, sessions, cipher)
    url, state, verifier = oauth.start(tenant_id)            # keep state+verifier in the web session
    tokens = await oauth.finish(code, verifier)               # on the callback, after checking state
    orgs = await oauth.list_connections(tokens.access_token)  # let the user pick one if several
    with sessions() as s: oauth.store_connection(s, tenant_id, orgs[0], tokens); s.commit()
    await oauth.disconnect(tenant_id)                         # DELETE /connections/{id} + the row

Token-endpoint failures are classified with `translate()` (`invalid_grant` → AuthRevoked).

Disconnecting removes *this tenant's* connection only (`DELETE /connections/{connectionId}`,
the id stored with the row; rows stored before it was kept look it up by organisation). It
does not call `/connect/revocation`: that revokes the refresh token *and every connection the
Xero user gave the app*, which would cut off other tenants the same user authorised. The
refresh token is simply dropped with the row (unused, it dies after 60 days).

Connecting a tenant to a different organisation than the one its bindings were made in is
refused (`OrganisationChanged`) while bindings exist: each would claim a document "already
bound" that the new organisation does not have. Disconnect and clear the tenant's bindings first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy.orm import Session, sessionmaker

from connectors.errors import AuthRevoked, LedgerError, NotFound, Rejected, Transient
from connectors.xero.settings import XeroSettings
from connectors.xero.translate import translate, translate_transport
from store import bindings, connections
from store.base import utcnow

log = logging.getLogger(__name__)
LEDGER = "xero"
T = TypeVar("T")


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    scope: str | None = None
    id_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class XeroOrganisation:
    """One entry of `GET /connections`: `organisation_id` is what goes in `xero-tenant-id`."""

    connection_id: str
    organisation_id: str
    name: str | None
    type: str
    auth_event_id: str | None = None


class OrganisationChanged(ValueError):
    """The tenant has documents bound in another organisation than the one being connected."""

    def __init__(self, tenant_id: str, bound_in: str, connecting: str) -> None:
        super().__init__(
            f"tenant {tenant_id} has documents bound in organisation {bound_in}; disconnect and clear "
            f"bindings before connecting organisation {connecting}"
        )
        self.tenant_id = tenant_id
        self.bound_in = bound_in
        self.connecting = connecting


def _raise_for_token_response(response: httpx.Response) -> httpx.Response:
    if not response.is_success:
        raise translate(response)
    return response


class XeroOAuth:
    def __init__(
        self,
        settings: XeroSettings,
        sessions: sessionmaker[Session] | None = None,
        cipher: connections.TokenCipher | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.cipher = cipher
        self._transport = transport
        self._clock = clock

    def __repr__(self) -> str:
        return f"XeroOAuth(client_id={self.settings.client_id!r})"

    # ------------------------------------------------------------ authorisation code

    def start(self, tenant_id: str) -> tuple[str, str, str]:
        """`(authorize_url, state, code_verifier)`: redirect to the URL, keep state and verifier
        server-side with `tenant_id` (state protects against CSRF; PKCE S256 binds the code)."""
        state = generate_token(32)
        verifier = generate_token(64)
        url = prepare_grant_uri(
            self.settings.login_url,
            self.settings.client_id,
            "code",
            redirect_uri=self.settings.redirect_uri,
            scope=self.settings.scopes,
            state=state,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        log.info("xero connect started for tenant %s", tenant_id)
        return url, state, verifier

    def _oauth_client(self) -> AsyncOAuth2Client:
        client = AsyncOAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret.get_secret_value(),
            token_endpoint_auth_method="client_secret_basic",
            redirect_uri=self.settings.redirect_uri,
            scope=self.settings.scopes,
            code_challenge_method="S256",
            transport=self._transport,
            timeout=self.settings.timeout,
        )
        client.register_compliance_hook("access_token_response", _raise_for_token_response)
        client.register_compliance_hook("refresh_token_response", _raise_for_token_response)
        return client

    async def _call(self, make: Callable[[AsyncOAuth2Client], Awaitable[T]]) -> T:
        try:
            async with self._oauth_client() as client:
                return await make(client)
        except LedgerError:
            raise
        except OAuthError as exc:  # a 2xx body carrying {"error": ...}
            if exc.error == "invalid_grant":
                raise AuthRevoked(f"Xero refused the grant: {exc.description or exc.error}") from None
            raise Rejected(f"Xero OAuth error {exc.error}: {exc.description or ''}") from None
        except httpx.HTTPStatusError as exc:
            raise translate(exc.response) from None
        except httpx.TransportError as exc:
            raise translate_transport(exc) from None
        except ValueError as exc:
            raise Transient(f"Xero token endpoint: unreadable response ({exc})") from None

    def _token_set(self, token: dict[str, Any], previous_refresh: str | None = None) -> TokenSet:
        access = token.get("access_token")
        refresh = token.get("refresh_token") or previous_refresh
        if not access or not refresh:
            raise Transient("Xero token response without access_token / refresh_token")
        expires_in = int(token.get("expires_in") or 1800)
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=self._clock() + timedelta(seconds=expires_in),
            scope=token.get("scope"),
            id_token=token.get("id_token"),
        )

    async def finish(self, code: str, code_verifier: str) -> TokenSet:
        """Exchange the callback's `code` (after the view has checked `state`)."""
        token = await self._call(
            lambda c: c.fetch_token(
                self.settings.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=self.settings.redirect_uri,
            )
        )
        return self._token_set(dict(token))

    async def refresh(self, refresh_token: str) -> TokenSet:
        """Rotate: returns a new access token *and a new refresh token* that replaces the old one."""
        token = await self._call(
            lambda c: c.refresh_token(self.settings.token_url, refresh_token=refresh_token)
        )
        return self._token_set(dict(token), previous_refresh=refresh_token)

    # ------------------------------------------------------------ connections (tenants)

    async def _plain(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self.settings.timeout) as http:
                response = await http.request(method, url, **kw)
        except httpx.TransportError as exc:
            raise translate_transport(exc) from None
        if not response.is_success:
            raise translate(response)
        return response

    async def list_connections(self, access_token: str) -> list[XeroOrganisation]:
        response = await self._plain(
            "GET",
            self.settings.connections_url,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        try:
            rows = response.json()
        except ValueError:
            raise Transient("GET /connections: non-JSON response") from None
        return [
            XeroOrganisation(
                connection_id=row["id"],
                organisation_id=row["tenantId"],
                name=row.get("tenantName"),
                type=row.get("tenantType", "ORGANISATION"),
                auth_event_id=row.get("authEventId"),
            )
            for row in rows
        ]

    async def delete_connection(self, access_token: str, connection_id: str) -> None:
        """`DELETE /connections/{id}`: disconnect one organisation; the user's others stay."""
        await self._plain(
            "DELETE",
            f"{self.settings.connections_url.rstrip('/')}/{connection_id}",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )

    async def revoke(self, refresh_token: str) -> None:
        """Revoke the refresh token. Careful: Xero also removes ALL of the user's connections to
        the app (other tenants included); `disconnect` does not use it."""
        await self._plain(
            "POST",
            self.settings.revoke_url,
            data={"token": refresh_token},
            auth=(self.settings.client_id, self.settings.client_secret.get_secret_value()),
        )

    def _require_store(self) -> tuple[sessionmaker[Session], connections.TokenCipher]:
        if self.sessions is None or self.cipher is None:
            raise RuntimeError("XeroOAuth needs sessions and a cipher for connection storage")
        return self.sessions, self.cipher

    def store_connection(
        self, session: Session, tenant_id: str, organisation: XeroOrganisation, tokens: TokenSet
    ) -> connections.LedgerConnection:
        """Create or replace the tenant's Xero connection (tokens encrypted). The caller commits.

        Raises `OrganisationChanged` if the tenant has bindings made in another organisation.
        """
        _, cipher = self._require_store()
        existing = connections.get(session, tenant_id, LEDGER)
        bound_in = bindings.organisation(session, tenant_id, LEDGER) or (
            existing.organisation_id if existing is not None else None
        )
        if (
            bound_in is not None
            and bound_in != organisation.organisation_id
            and bindings.has_documents(session, tenant_id, LEDGER)
        ):
            raise OrganisationChanged(tenant_id, bound_in, organisation.organisation_id)
        bindings.set_organisation(session, tenant_id, LEDGER, organisation.organisation_id)
        return connections.upsert(
            session,
            cipher,
            tenant_id=tenant_id,
            ledger=LEDGER,
            organisation_id=organisation.organisation_id,
            organisation_name=organisation.name,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            access_expires_at=tokens.expires_at,
            connection_id=organisation.connection_id,
        )

    async def disconnect(self, tenant_id: str) -> bool:
        """Remove this tenant's connection at Xero and delete the row; False if none existed.

        `DELETE /connections/{connectionId}` with a valid access token (refreshed under the
        connection's lock when needed); a connection Xero no longer has (404), or a dead token
        (AuthRevoked: nothing more can be done at Xero with it), does not stop the local delete;
        other failures (Transient, RateLimited) are raised and the row is kept.
        """
        from connectors.xero.tokens import TokenManager  # tokens imports this module

        sessions, cipher = self._require_store()

        def load() -> tuple[str | None, str] | None:
            with sessions() as session:
                row = connections.get(session, tenant_id, LEDGER)
                return (row.connection_id, row.organisation_id) if row is not None else None

        loaded = await asyncio.to_thread(load)
        if loaded is None:
            return False
        connection_id, organisation_id = loaded
        try:
            access, _ = await TokenManager(sessions, cipher, self, clock=self._clock).access_token(tenant_id)
            if connection_id is None:  # stored before connection ids were kept
                orgs = await self.list_connections(access)
                found = [o for o in orgs if o.organisation_id == organisation_id]
                connection_id = found[0].connection_id if found else None
            if connection_id is not None:
                await self.delete_connection(access, connection_id)
        except AuthRevoked as exc:
            log.info("xero connection of tenant %s not removed at Xero (%s)", tenant_id, exc.message)
        except NotFound:
            log.info("xero connection of tenant %s was already gone at Xero", tenant_id)

        def delete() -> None:
            with sessions() as session:
                row = connections.get(session, tenant_id, LEDGER)
                if row is not None:
                    session.delete(row)
                    session.commit()

        await asyncio.to_thread(delete)
        return True
