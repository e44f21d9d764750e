"""Identity endpoints: authorize (auto-approved), token, revocation, connections."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from connectors.xero.sandbox.config import ClientConfig
from connectors.xero.sandbox.state import AccessToken, AuthCode, Grant, RefreshToken, SandboxState
from connectors.xero.sandbox.wire import iso_utc, problem, respond

STATE_KEY: web.AppKey[SandboxState] = web.AppKey("xero_sandbox_state", SandboxState)


def _redirect(uri: str, params: dict[str, str]) -> web.HTTPFound:
    sep = "&" if "?" in uri else "?"
    return web.HTTPFound(f"{uri}{sep}{urlencode(params)}")


def _oauth_error(error: str, description: str = "", status: int = 400) -> web.Response:
    body = {"error": error} | ({"error_description": description} if description else {})
    return respond(body, status)


async def authorize(request: web.Request) -> web.StreamResponse:
    """GET /identity/connect/authorize: approve as the sandbox user, redirect with a code."""
    state = request.app[STATE_KEY]
    q = request.query
    client = state.clients.get(q.get("client_id", ""))
    if client is None:
        return _oauth_error("invalid_client", "Unknown client_id")
    redirect_uri = q.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:
        return _oauth_error("invalid_request", "redirect_uri is not registered for this client")
    echo = {"state": q["state"]} if "state" in q else {}
    if q.get("response_type") != "code":
        raise _redirect(redirect_uri, {"error": "unsupported_response_type"} | echo)
    challenge = q.get("code_challenge")
    if challenge and q.get("code_challenge_method", "plain") != "S256":
        raise _redirect(
            redirect_uri,
            {"error": "invalid_request", "error_description": "code_challenge_method must be S256"} | echo,
        )
    wanted = [t for v in q.getall("org", []) for t in v.split(",") if t]
    unknown = [t for t in wanted if t not in state.orgs]
    if unknown:
        return _oauth_error("invalid_request", f"Unknown organisation(s): {', '.join(unknown)}")
    code = AuthCode(
        code=secrets.token_urlsafe(24),
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=q.get("scope", ""),
        tenant_ids=wanted or list(state.orgs),
        auth_event_id=str(uuid.uuid4()),
        expires_at=state.now() + timedelta(seconds=state.config.auth_code_seconds),
        challenge=challenge,
    )
    state.codes[code.code] = code
    raise _redirect(redirect_uri, {"code": code.code, "scope": code.scope} | echo)


def _basic_client(state: SandboxState, request: web.Request) -> ClientConfig | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client = state.clients.get(client_id)
    ok = client is not None and secrets.compare_digest(client.client_secret, secret)
    return client if ok else None


def _issue(state: SandboxState, grant: Grant) -> dict[str, Any]:
    now = state.now()
    access = AccessToken(
        secrets.token_urlsafe(32),
        grant.grant_id,
        grant.client_id,
        grant.scope,
        now + timedelta(seconds=state.config.access_token_seconds),
    )
    state.access_tokens[access.token] = access
    body: dict[str, Any] = {
        "access_token": access.token,
        "expires_in": state.config.access_token_seconds,
        "token_type": "Bearer",
        "scope": grant.scope,
    }
    if "offline_access" in grant.scope.split():
        refresh = RefreshToken(secrets.token_urlsafe(32), grant.grant_id, now)
        state.refresh_tokens[refresh.token] = refresh
        body["refresh_token"] = refresh.token
    return body


def _pkce_ok(challenge: str, verifier: str) -> bool:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge


def _exchange_code(state: SandboxState, client: ClientConfig, form: Any) -> web.Response:
    code = state.codes.pop(form.get("code", ""), None)
    if code is None or code.client_id != client.client_id or code.expires_at <= state.now():
        return _oauth_error("invalid_grant")
    if form.get("redirect_uri") != code.redirect_uri:
        return _oauth_error("invalid_grant", "redirect_uri does not match")
    if code.challenge and not _pkce_ok(code.challenge, form.get("code_verifier", "")):
        return _oauth_error("invalid_grant", "code_verifier does not match code_challenge")
    grant = Grant(str(uuid.uuid4()), client.client_id, code.scope, code.tenant_ids)
    state.grants[grant.grant_id] = grant
    for tenant in code.tenant_ids:
        state.connect(client.client_id, tenant, code.auth_event_id)
    return respond(_issue(state, grant))


def _refresh(state: SandboxState, client: ClientConfig, form: Any) -> web.Response:
    now = state.now()
    token = state.refresh_tokens.get(form.get("refresh_token", ""))
    grant = state.grants.get(token.grant_id) if token else None
    if token is None or grant is None or grant.revoked or grant.client_id != client.client_id:
        return _oauth_error("invalid_grant")
    if now - token.issued_at > timedelta(days=state.config.refresh_token_days):
        return _oauth_error("invalid_grant")
    grace = timedelta(seconds=state.config.refresh_grace_seconds)
    if token.superseded_at is not None and now - token.superseded_at > grace:
        return _oauth_error("invalid_grant")
    token.superseded_at = token.superseded_at or now
    return respond(_issue(state, grant))


def _client_credentials(state: SandboxState, client: ClientConfig, form: Any) -> web.Response:
    org = client.custom_connection_org
    if org is None:
        return _oauth_error("unauthorized_client", "client is not a custom connection")
    scope = form.get("scope") or "accounting.transactions accounting.contacts accounting.settings"
    grant = Grant(str(uuid.uuid4()), client.client_id, scope.replace("offline_access", "").strip(), [org])
    state.grants[grant.grant_id] = grant
    state.connect(client.client_id, org, grant.grant_id)
    return respond(_issue(state, grant))


async def token(request: web.Request) -> web.Response:
    """POST /connect/token (Basic client auth, form body)."""
    state = request.app[STATE_KEY]
    fault = state.faults.take("token", request.method, request.path)
    if fault and fault.delay_seconds:
        await asyncio.sleep(fault.delay_seconds)
    if fault and fault.status and not fault.apply_then_fail:
        return _oauth_error("temporarily_unavailable", "sandbox fault", fault.status)
    client = _basic_client(state, request)
    if client is None:
        return _oauth_error("invalid_client")
    form = await request.post()
    handlers = {
        "authorization_code": _exchange_code,
        "refresh_token": _refresh,
        "client_credentials": _client_credentials,
    }
    handler = handlers.get(str(form.get("grant_type", "")))
    if handler is None:
        return _oauth_error("unsupported_grant_type")
    response = handler(state, client, form)
    if fault and fault.apply_then_fail:
        return _oauth_error("server_error", "sandbox fault after apply", fault.status or 500)
    return response


async def revocation(request: web.Request) -> web.Response:
    """POST /connect/revocation: revoke a refresh token and its grant's connections."""
    state = request.app[STATE_KEY]
    client = _basic_client(state, request)
    if client is None:
        return _oauth_error("invalid_client")
    form = await request.post()
    refresh = state.refresh_tokens.get(str(form.get("token", "")))
    grant = state.grants.get(refresh.grant_id) if refresh else None
    if grant is not None and grant.client_id == client.client_id:
        state.revoke_grant(grant)
    return web.Response(status=200)


def _bearer(request: web.Request) -> AccessToken | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return request.app[STATE_KEY].bearer(header[7:].strip())


def unauthorized() -> web.Response:
    """Xero's 401 body."""
    return respond(
        problem(401, "Unauthorized", "AuthenticationUnsuccessful"),
        401,
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def list_connections(request: web.Request) -> web.Response:
    """GET /connections."""
    access = _bearer(request)
    if access is None:
        return unauthorized()
    state = request.app[STATE_KEY]
    event = request.query.get("authEventId")
    return respond(
        [
            {
                "id": c.id,
                "authEventId": c.auth_event_id,
                "tenantId": c.tenant_id,
                "tenantType": "ORGANISATION",
                "tenantName": state.orgs[c.tenant_id].config.name,
                "createdDateUtc": iso_utc(c.created),
                "updatedDateUtc": iso_utc(c.updated),
            }
            for c in state.tenants_for(access)
            if event is None or c.auth_event_id == event
        ]
    )


async def delete_connection(request: web.Request) -> web.Response:
    """DELETE /connections/{id}."""
    access = _bearer(request)
    if access is None:
        return unauthorized()
    state = request.app[STATE_KEY]
    conn = state.connections.get(request.match_info["id"])
    if conn is None or conn.client_id != access.client_id:
        return respond(problem(404, "NotFound", "Connection not found"), 404)
    del state.connections[conn.id]
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    """Register identity routes."""
    r = app.router
    r.add_get("/identity/connect/authorize", authorize)
    r.add_post("/connect/token", token)
    r.add_post("/connect/revocation", revocation)
    for base in ("/connections", "/Connections"):
        r.add_get(base, list_connections)
        r.add_delete(base + "/{id}", delete_connection)
