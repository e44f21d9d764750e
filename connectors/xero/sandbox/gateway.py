"""The Accounting API front door, as aiohttp middleware, in Xero's order:
bearer token (401) → tenant header (403) → scope (401) → rate limits (429) →
injected faults → body size (413) → Idempotency-Key → handler → apply_then_fail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from connectors.xero.sandbox.accounting import API, CALL, ApiCall, post_data_error
from connectors.xero.sandbox.faults import Fault
from connectors.xero.sandbox.idempotency import MAX_KEY_LENGTH, fingerprint
from connectors.xero.sandbox.oauth import STATE_KEY, unauthorized
from connectors.xero.sandbox.state import SandboxState
from connectors.xero.sandbox.wire import iso_utc, loads, problem, respond

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SCOPES = {
    "Invoices": "accounting.transactions",
    "CreditNotes": "accounting.transactions",
    "Payments": "accounting.transactions",
    "BankTransactions": "accounting.transactions",
    "Contacts": "accounting.contacts",
    "TaxRates": "accounting.settings",
    "Accounts": "accounting.settings",
}


def _scope_ok(state: SandboxState, granted: str, method: str, path: str) -> bool:
    if not state.config.enforce_scopes:
        return True
    family = SCOPES.get(path[len(API) + 1 :].split("/")[0])
    scopes = set(granted.split())
    return family is None or family in scopes or (method == "GET" and f"{family}.read" in scopes)


def _fault_response(fault: Fault) -> web.Response:
    if fault.rate_limit:
        return respond(
            problem(429, "Too Many Requests", "Rate limit exceeded"),
            429,
            {"X-Rate-Limit-Problem": fault.rate_limit, "Retry-After": str(fault.retry_after)},
        )
    status = fault.status or 500
    return respond(problem(status, "Sandbox fault", "Injected by /__sandbox/faults"), status)


def _log(state: SandboxState, request: web.Request, tenant: str, raw: bytes) -> dict[str, Any]:
    try:
        body: Any = loads(raw) if raw else None
    except ValueError:
        body = raw.decode(errors="replace")
    entry = {
        "at": iso_utc(state.now()),
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "tenant_id": tenant,
        "body": body,
        "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
    }
    state.request_log.append(entry)
    return entry


async def _keyed(
    state: SandboxState,
    request: web.Request,
    raw: bytes,
    handler: Handler,
    scope: tuple[str, str, str] | None,
) -> web.StreamResponse:
    """Run the handler, replaying or caching by Idempotency-Key."""
    fp = fingerprint(request.method, request.path_qs, raw)
    if scope is not None:
        cached = state.idempotency.lookup(scope)
        if cached is not None and cached.fingerprint != fp:
            return respond(
                {
                    "ErrorNumber": 10,
                    "Type": "ValidationException",
                    "Message": "The Idempotency-Key has already been used with a "
                    "different request (method, URL or body).",
                },
                400,
            )
        if cached is not None:
            reply = web.Response(text=cached.body, status=cached.status, content_type="application/json")
            reply.headers["Idempotent-Replayed"] = "true"
            return reply
    try:
        CALL.get().body = loads(raw) if raw else None
        response = await handler(request)
    except (json.JSONDecodeError, UnicodeDecodeError):
        response = post_data_error("The request body is not valid JSON.")
    except web.HTTPException as exc:  # unknown route or method: still answer JSON
        response = respond(problem(exc.status, exc.reason, exc.reason), exc.status)
    if scope is not None and isinstance(response, web.Response) and response.text is not None:
        state.idempotency.store(scope, fp, response.status, response.text)
    return response


@web.middleware
async def api_gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply auth, tenancy, limits, faults and idempotency to `/api.xro/2.0/*`."""
    if not request.path.startswith(API + "/"):
        return await handler(request)
    state = request.app[STATE_KEY]
    access = (
        state.bearer(request.headers.get("Authorization", "")[7:].strip())
        if (request.headers.get("Authorization", "").lower().startswith("bearer "))
        else None
    )
    if access is None:
        return unauthorized()
    tenant = request.headers.get("xero-tenant-id", "").strip().lower()
    if tenant not in {c.tenant_id.lower() for c in state.tenants_for(access)}:
        return respond(problem(403, "Forbidden", "AuthorizationUnsuccessful"), 403)
    if not _scope_ok(state, access.scope, request.method, request.path):
        return respond(problem(401, "Unauthorized", "AuthorizationUnsuccessful"), 401)
    tenant = next(t for t in state.orgs if t.lower() == tenant)
    app_id = access.client_id
    refusal = state.limits.acquire(app_id, tenant)
    if refusal is not None:
        headers = state.limits.headers(app_id, tenant) | {"X-Rate-Limit-Problem": refusal.problem}
        if refusal.retry_after is not None:
            headers["Retry-After"] = str(refusal.retry_after)
        state.refused_calls[tenant] += 1
        return respond(problem(429, "Too Many Requests", "Rate limit exceeded"), 429, headers)
    state.api_calls[tenant] += 1
    CALL.set(ApiCall(state, state.orgs[tenant], access))
    try:
        response = await _admitted(state, request, handler, tenant, app_id)
    finally:
        state.limits.release(app_id, tenant)
    response.headers.update(state.limits.headers(app_id, tenant))
    return response


async def _admitted(
    state: SandboxState, request: web.Request, handler: Handler, tenant: str, app_id: str
) -> web.StreamResponse:
    raw = await request.read()
    entry = _log(state, request, tenant, raw)
    fault = state.faults.take("api", request.method, request.path, tenant)
    if fault and fault.delay_seconds:
        await asyncio.sleep(fault.delay_seconds)
    if fault and fault.status and not fault.apply_then_fail:
        response: web.StreamResponse = _fault_response(fault)
    elif len(raw) > state.config.max_body_bytes:
        response = respond(
            problem(413, "Request Entity Too Large", "The request body exceeds the size limit"), 413
        )
    else:
        key = request.headers.get("Idempotency-Key")
        if key is not None and len(key) > MAX_KEY_LENGTH:
            response = respond(
                {
                    "ErrorNumber": 10,
                    "Type": "ValidationException",
                    "Message": "Idempotency-Key must be 128 characters or fewer.",
                },
                400,
            )
        else:
            scope = (app_id, tenant, key) if key and request.method in ("PUT", "POST") else None
            response = await _keyed(state, request, raw, handler, scope)
        if fault and fault.apply_then_fail:
            response = _fault_response(fault)
    entry["status"] = response.status
    return response
