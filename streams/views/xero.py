"""Xero connect flow and connection health on the worker's web server.

    GET  /connect/xero?tenant=ID            API token → a one-time start link on this server
    GET  /connect/xero/start?ticket=T       the merchant's browser: binding cookie, 302 to Xero
    GET  /connect/xero/callback?code&state  Xero sends the browser back here
    POST /connect/xero/callback             the organisation picker's form (several orgs)
    POST /connect/xero/disconnect?tenant=ID API token → revoke at Xero, delete the connection
    GET  /health/connections                API token → every Xero connection's health (JSON)

Authentication: starting and removing a connection needs the operations API bearer token
(`LEDGERSTREAM_API_TOKEN`, `streams.views.auth.require_api_token`). A browser cannot send a
bearer header, so an operator's tool calls `GET /connect/xero?tenant=ID` with the token and
`Accept: application/json`, receives `{"start_url": ".../connect/xero/start?ticket=…"}` and
hands that link to the merchant (without that header the answer is a 302 to the link). The
ticket is random, single use and valid 10 minutes.

The flow is tied to the browser that opened the start link: `/connect/xero/start` begins the
OAuth flow (state + PKCE verifier kept here) and sets a cookie holding the state, signed with
a key of this process (`HttpOnly`, `SameSite=Lax` so it comes back on Xero's top-level redirect,
`Path=/connect/xero`, `Secure` when the redirect URI is https), then redirects to Xero. The
callback and the organisation picker require that cookie to carry the same state: an
authorize URL (or a code) that reaches another browser — copied, leaked, forwarded — cannot
connect someone else's Xero organisation to the tenant. The start link itself is the bearer
credential until it is first opened, so hand it over a trusted channel (a second opener finds
it used; the merchant then asks for a new one). One flow per browser at a time: starting
another replaces the cookie and the first callback is refused. PKCE (S256) still binds the
code to this worker's verifier.

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
import hmac
import html
import logging
import secrets
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeVar

from aiohttp import web
from faust.web import View
from itsdangerous import BadSignature, URLSafeTimedSerializer
from yarl import URL

from connectors.errors import LedgerError
from connectors.protocol import Quota
from connectors.xero import health
from connectors.xero.oauth import OrganisationChanged, TokenSet, XeroOAuth, XeroOrganisation
from connectors.xero.settings import XeroSettings
from store.connections import TokenCipher
from streams.app import app
from streams.database import sessions
from streams.views.auth import require_api_token

log = logging.getLogger(__name__)

PENDING_SECONDS = 600.0
BROWSER_COOKIE = "ledgerstream_xero_connect"
COOKIE_PATH = "/connect/xero"
V = TypeVar("V")


@dataclass(frozen=True)
class PendingAuth:
    tenant_id: str
    verifier: str = field(repr=False)


@dataclass(frozen=True)
class PendingPick:
    state: str = field(repr=False)  # the flow's state: the picker needs the same browser cookie
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

    def peek(self, key: str) -> V | None:
        self._purge()
        entry = self._items.get(key)
        return entry[1] if entry is not None else None

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


pending_start: Expiring[str] = Expiring()  # start ticket -> tenant id
pending_auth: Expiring[PendingAuth] = Expiring()
pending_pick: Expiring[PendingPick] = Expiring()
# Signs the browser-binding cookie. A key per process is enough: the pending flows it protects
# live in this process's memory too.
_browser_signer = URLSafeTimedSerializer(secrets.token_urlsafe(32), salt="ledgerstream-xero-connect")


def _bind_browser(response: web.StreamResponse, state: str, secure: bool) -> None:
    response.set_cookie(
        BROWSER_COOKIE,
        _browser_signer.dumps({"state": state}),
        max_age=int(PENDING_SECONDS),
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=secure,
    )


def _same_browser(request: web.Request, state: str) -> bool:
    """True when this browser's cookie was set by the start link of the flow with `state`."""
    cookie = request.cookies.get(BROWSER_COOKIE)
    if not cookie or not state:
        return False
    try:
        data = _browser_signer.loads(cookie, max_age=PENDING_SECONDS)
    except BadSignature:  # includes SignatureExpired
        return False
    bound = data.get("state") if isinstance(data, dict) else None
    return isinstance(bound, str) and hmac.compare_digest(bound.encode(), state.encode())


def _start_url(ticket: str) -> str:
    """The start link on this server: the redirect URI's origin, so the cookie it sets is the
    one the callback (same host) receives."""
    origin = URL(oauth().settings.redirect_uri).origin()
    return str(origin.with_path("/connect/xero/start").with_query(ticket=ticket))


def _other_browser() -> web.Response:
    return _problem(
        "This Xero authorisation was started in another browser (or its cookie expired). "
        "Open the connection link you were given in this browser and try again.",
        403,
    )


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
    response = await _store_connection(tenant_id, organisation, tokens)
    response.del_cookie(BROWSER_COOKIE, path=COOKIE_PATH)  # the flow is over
    return response


async def _store_connection(tenant_id: str, organisation: XeroOrganisation, tokens: TokenSet) -> web.Response:
    flow = oauth()

    def work() -> None:
        with flow.sessions.begin() as session:  # type: ignore[union-attr]
            flow.store_connection(session, tenant_id, organisation, tokens)

    try:
        await asyncio.to_thread(work)
    except OrganisationChanged as exc:
        log.warning("xero: refused connecting tenant %s: %s", tenant_id, exc)
        return _page("Not connected", f"<p>{html.escape(str(exc))}</p>", status=409)
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
        """A one-time start link for `?tenant=ID` (API token required), for the merchant's browser."""
        require_api_token(request)
        tenant = _tenant_param(request)
        ticket = secrets.token_urlsafe(32)
        pending_start.put(ticket, tenant)
        url = _start_url(ticket)
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response({"start_url": url, "expires_in": int(PENDING_SECONDS)})
        raise web.HTTPFound(url)


@app.page("/connect/xero/start")
class ConnectXeroStart(View):
    async def get(self, request: web.Request) -> web.Response:
        """The merchant's browser: begin the OAuth flow, bind it to this browser, go to Xero."""
        tenant = pending_start.pop(request.query.get("ticket", ""))
        if tenant is None:
            return _problem("This connection link has expired or was already used; ask for a new one.")
        url, state, verifier = oauth().start(tenant)
        pending_auth.put(state, PendingAuth(tenant, verifier))
        response = web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
        _bind_browser(response, state, secure=URL(oauth().settings.redirect_uri).scheme == "https")
        return response


@app.page("/connect/xero/callback")
class ConnectXeroCallback(View):
    async def get(self, request: web.Request) -> web.Response:
        """Xero's redirect: check the state, exchange the code, store or offer a choice."""
        query = request.query
        state = query.get("state", "")
        if not _same_browser(request, state):  # checked first: another browser cannot use up the flow
            log.warning("xero connect: callback from a browser that did not start the flow, refused")
            return _other_browser()
        pending = pending_auth.pop(state)
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
        pick = PendingPick(state, pending.tenant_id, tokens, tuple(organisations))
        pending_pick.put(token, pick)
        return _picker(token, pick)

    async def post(self, request: web.Request) -> web.Response:
        """The picker's form: `state` (single-use pick token) and `organisation_id`."""
        form = await request.post()
        token = str(form.get("state", ""))
        pick = pending_pick.peek(token)
        if pick is None:
            return _problem("This choice has expired or was already made.")
        if not _same_browser(request, pick.state):  # the right browser may still choose
            return _other_browser()
        if pending_pick.pop(token) is None:  # single use (a concurrent POST took it)
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
