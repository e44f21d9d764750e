"""Xero connect flow and connection health on the worker's web server.

    GET  /connect/xero?tenant=ID            API token → 302 to Xero's consent page
    GET  /connect/xero/callback?code&state  Xero sends the browser back here
    POST /connect/xero/callback             the organisation picker's form (several orgs)
    POST /connect/xero/disconnect?tenant=ID API token → revoke at Xero, delete the connection
    GET  /health/connections                API token → every Xero connection's health (JSON)

Authentication: starting and removing a connection needs the operations API bearer token
(`LEDGERSTREAM_API_TOKEN`, `streams.views.auth.require_api_token`). A browser cannot send a
bearer header, so an operator's tool calls `GET /connect/xero?tenant=ID` with the token and
`Accept: application/json`, receives `{"authorize_url": ...}` and hands that URL to the
merchant (without that header the answer is the 302 itself). The callback needs no token: the
one-time `state` (32 random characters, single use, 10 minutes) is what authenticates it, and
PKCE (S256) binds the code to this worker's verifier.

Pending authorisations live in this process's memory, not in the database (a table would need
a migration in a chain others are editing right now). Limitation: the callback must reach the
same worker process that started the flow within 10 minutes, and a worker restart drops the
pending ones (the merchant just starts again). `XERO_REDIRECT_URI` must point at this worker's
`/connect/xero/callback` and be registered with the Xero app.

Organisation picker: when the consent covered several organisations, the callback renders a
small form listing them; its POST carries a fresh single-use pick token (the CSRF token) and
the chosen organisation id. Tokens from the code exchange wait in memory (same 10 minutes).
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeVar

from aiohttp import web
from faust.web import View

from connectors.errors import LedgerError
from connectors.protocol import Quota
from connectors.xero import health
from connectors.xero.oauth import TokenSet, XeroOAuth, XeroOrganisation
from connectors.xero.settings import XeroSettings
from store.connections import TokenCipher
from streams.app import app
from streams.database import sessions
from streams.views.auth import require_api_token

log = logging.getLogger(__name__)

PENDING_SECONDS = 600.0
V = TypeVar("V")


@dataclass(frozen=True)
class PendingAuth:
    tenant_id: str
    verifier: str = field(repr=False)


@dataclass(frozen=True)
class PendingPick:
    tenant_id: str
    tokens: TokenSet = field(repr=False)
    organisations: tuple[XeroOrganisation, ...]


class Expiring(Generic[V]):
    """Single-use entries that expire after `ttl` seconds (monotonic clock)."""

    def __init__(self, ttl: float = PENDING_SECONDS) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, V]] = {}

    def put(self, key: str, value: V) -> None:
        self._purge()
        self._items[key] = (time.monotonic() + self.ttl, value)

    def pop(self, key: str) -> V | None:
        self._purge()
        entry = self._items.pop(key, None)
        return entry[1] if entry is not None else None

    def __len__(self) -> int:
        self._purge()
        return len(self._items)

    def _purge(self) -> None:
        now = time.monotonic()
        for key in [k for k, (expires, _) in self._items.items() if expires <= now]:
            del self._items[key]


pending_auth: Expiring[PendingAuth] = Expiring()
pending_pick: Expiring[PendingPick] = Expiring()


@cache
def oauth() -> XeroOAuth:
    return XeroOAuth(XeroSettings(), sessions(), TokenCipher.from_settings())


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _problem(message: str, status: int = 400) -> web.Response:
    return _page("Xero connection failed", f"<p>{html.escape(message)}</p>", status)


def _tenant_param(request: web.Request) -> str:
    tenant = request.query.get("tenant", "").strip()
    if not tenant:
        raise web.HTTPBadRequest(text='{"error": "tenant is required"}', content_type="application/json")
    return tenant


async def _store(tenant_id: str, organisation: XeroOrganisation, tokens: TokenSet) -> web.Response:
    flow = oauth()

    def work() -> None:
        with flow.sessions.begin() as session:  # type: ignore[union-attr]
            flow.store_connection(session, tenant_id, organisation, tokens)

    await asyncio.to_thread(work)
    log.info("xero: tenant %s connected to organisation %s", tenant_id, organisation.organisation_id)
    name = html.escape(organisation.name or organisation.organisation_id)
    return _page(
        "Connected to Xero",
        f"<p>Tenant <b>{html.escape(tenant_id)}</b> now posts to <b>{name}</b> "
        f"(<code>{html.escape(organisation.organisation_id)}</code>). You can close this page.</p>",
    )


def _picker(token: str, pick: PendingPick) -> web.Response:
    options = "".join(
        f"<p><label><input type='radio' name='organisation_id' value='{html.escape(o.organisation_id)}'"
        f"{' checked' if i == 0 else ''}> {html.escape(o.name or o.organisation_id)}</label></p>"
        for i, o in enumerate(pick.organisations)
    )
    body = (
        f"<p>Which Xero organisation should tenant <b>{html.escape(pick.tenant_id)}</b> post to?</p>"
        "<form method='post' action='/connect/xero/callback'>"
        f"<input type='hidden' name='state' value='{html.escape(token)}'>{options}"
        "<button type='submit'>Connect</button></form>"
    )
    return _page("Choose a Xero organisation", body)


@app.page("/connect/xero")
class ConnectXero(View):
    async def get(self, request: web.Request) -> web.Response:
        """Start the authorisation-code flow for `?tenant=ID` (API token required)."""
        require_api_token(request)
        tenant = _tenant_param(request)
        url, state, verifier = oauth().start(tenant)
        pending_auth.put(state, PendingAuth(tenant, verifier))
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response({"authorize_url": url, "expires_in": int(PENDING_SECONDS)})
        raise web.HTTPFound(url)


@app.page("/connect/xero/callback")
class ConnectXeroCallback(View):
    async def get(self, request: web.Request) -> web.Response:
        """Xero's redirect: check the state, exchange the code, store or offer a choice."""
        query = request.query
        pending = pending_auth.pop(query.get("state", ""))
        if pending is None:
            return _problem("This link has expired or was already used (or reached another worker).")
        if "error" in query:
            return _problem(f"Xero answered: {query.get('error_description') or query['error']}")
        code = query.get("code")
        if not code:
            return _problem("Xero sent no authorisation code.")
        try:
            tokens = await oauth().finish(code, pending.verifier)
            organisations = await oauth().list_connections(tokens.access_token)
        except LedgerError as exc:
            log.warning("xero connect of tenant %s failed: %s", pending.tenant_id, exc.message)
            return _problem(f"Xero refused the connection: {exc.message}", 502)
        organisations = [o for o in organisations if o.type == "ORGANISATION"] or organisations
        if not organisations:
            return _problem("The Xero user did not authorise any organisation.")
        if len(organisations) == 1:
            return await _store(pending.tenant_id, organisations[0], tokens)
        token = secrets.token_urlsafe(32)
        pick = PendingPick(pending.tenant_id, tokens, tuple(organisations))
        pending_pick.put(token, pick)
        return _picker(token, pick)

    async def post(self, request: web.Request) -> web.Response:
        """The picker's form: `state` (single-use pick token) and `organisation_id`."""
        form = await request.post()
        pick = pending_pick.pop(str(form.get("state", "")))
        if pick is None:
            return _problem("This choice has expired or was already made.")
        wanted = str(form.get("organisation_id", ""))
        chosen = next((o for o in pick.organisations if o.organisation_id == wanted), None)
        if chosen is None:
            return _problem("That organisation was not part of this authorisation.")
        return await _store(pick.tenant_id, chosen, pick.tokens)


@app.page("/connect/xero/disconnect")
class DisconnectXero(View):
    async def post(self, request: web.Request) -> web.Response:
        """Revoke the tenant's refresh token at Xero and delete the connection (API token)."""
        require_api_token(request)
        tenant = _tenant_param(request)
        try:
            existed = await oauth().disconnect(tenant)
        except LedgerError as exc:
            return web.json_response({"tenant_id": tenant, "error": exc.message}, status=502)
        if not existed:
            return web.json_response({"tenant_id": tenant, "disconnected": False}, status=404)
        return web.json_response({"tenant_id": tenant, "disconnected": True})


def _quota_of() -> Any:
    """This worker's last-seen quota per tenant (only tenants it posts for have numbers)."""
    try:
        from agents.post import poster  # the posting agent owns the connector and its client
    except ImportError:  # pragma: no cover - views loaded without agents
        return lambda _tenant: Quota()
    connector = poster("xero").connector
    return connector.quota


@app.page("/health/connections")
class ConnectionsHealth(View):
    async def get(self, request: web.Request) -> web.Response:
        """Every Xero connection: organisation, status, last success, tokens' expiry, quota, errors."""
        require_api_token(request)
        rows = await asyncio.to_thread(health.list_connections, sessions(), _quota_of())
        problems = [r["tenant_id"] for r in rows if r["status"] != "active" or r["day_parked_until"]]
        return web.json_response({"connections": rows, "blocked": problems})
