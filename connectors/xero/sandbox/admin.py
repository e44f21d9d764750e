"""Sandbox-only admin API under `/__sandbox/` (not part of Xero): faults, clock,
state dump, reset and seed edits used by tests and demos."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from connectors.xero.sandbox.config import AccountSeed, TaxRateSeed
from connectors.xero.sandbox.faults import parse_fault
from connectors.xero.sandbox.oauth import STATE_KEY
from connectors.xero.sandbox.state import SandboxState
from connectors.xero.sandbox.wire import iso_utc, loads, respond

PREFIX = "/__sandbox"


async def _json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return loads(raw) if raw else {}
    except ValueError as exc:
        raise web.HTTPBadRequest(text='{"error":"invalid JSON"}', content_type="application/json") from exc


def _bad(message: str, status: int = 400) -> web.Response:
    return respond({"error": message}, status)


async def set_fault(request: web.Request) -> web.Response:
    """POST /__sandbox/faults: arm a fault or revoke tokens now."""
    state = request.app[STATE_KEY]
    body = await _json(request)
    if not isinstance(body, dict):
        return _bad("expected a JSON object")
    if "revoke_tenant_tokens" in body or "revoke_client_tokens" in body:
        tenant, client = body.get("revoke_tenant_tokens"), body.get("revoke_client_tokens")
        revoked = 0
        for grant in list(state.grants.values()):
            if grant.revoked:
                continue
            if tenant and tenant in grant.tenant_ids:
                state.revoke_grant(grant, [tenant])
                revoked += 1
            elif client and grant.client_id == client:
                state.revoke_grant(grant)
                revoked += 1
        return respond({"revoked_grants": revoked})
    try:
        state.faults.arm(parse_fault(body))
    except (ValueError, TypeError, AttributeError) as exc:
        return _bad(str(exc))
    return respond({"armed": [f.describe() for f in state.faults.armed if f.count > 0]})


async def list_faults(request: web.Request) -> web.Response:
    """GET /__sandbox/faults."""
    armed = request.app[STATE_KEY].faults.armed
    return respond({"armed": [f.describe() for f in armed if f.count > 0]})


async def clear_faults(request: web.Request) -> web.Response:
    """DELETE /__sandbox/faults."""
    request.app[STATE_KEY].faults.clear()
    return respond({"armed": []})


def dump(state: SandboxState, with_log: bool = True) -> dict[str, Any]:
    """Everything a test or demo may want to inspect."""
    body: dict[str, Any] = {
        "now": iso_utc(state.now()),
        "orgs": {
            tid: {
                "name": org.config.name,
                "invoices": list(org.invoices.values()),
                "credit_notes": list(org.credit_notes.values()),
                "payments": list(org.payments.values()),
                "bank_transactions": list(org.bank_transactions.values()),
                "contacts": list(org.contacts.values()),
                "allocations": org.allocations,
                "tax_rates": list(org.tax_rates.values()),
            }
            for tid, org in state.orgs.items()
        },
        "api_calls": dict(state.api_calls),
        "refused_calls": dict(state.refused_calls),
        "connections": [
            {"id": c.id, "client_id": c.client_id, "tenantId": c.tenant_id}
            for c in state.connections.values()
        ],
        "faults": [f.describe() for f in state.faults.armed if f.count > 0],
    }
    if with_log:
        body["requests"] = list(state.request_log)
    return body


async def get_state(request: web.Request) -> web.Response:
    """GET /__sandbox/state (`?log=false` leaves out the request log)."""
    with_log = request.query.get("log", "true").lower() != "false"
    return respond(dump(request.app[STATE_KEY], with_log))


async def reset(request: web.Request) -> web.Response:
    """POST /__sandbox/reset."""
    request.app[STATE_KEY].reset()
    return respond({"reset": True})


async def advance_clock(request: web.Request) -> web.Response:
    """POST /__sandbox/clock {"advance_seconds": N}."""
    state = request.app[STATE_KEY]
    body = await _json(request)
    try:
        state.clock.advance(float(body.get("advance_seconds", 0)))
    except (TypeError, ValueError, AttributeError):
        return _bad("advance_seconds must be a number")
    return respond({"now": iso_utc(state.now())})


async def put_tax_rate(request: web.Request) -> web.Response:
    """POST /__sandbox/orgs/{tenantId}/taxrates: add a rate or change its status."""
    state = request.app[STATE_KEY]
    org = state.orgs.get(request.match_info["tenant_id"])
    body = await _json(request)
    if org is None:
        return _bad("unknown tenant", 404)
    current = org.tax_rates.get(str(body.get("TaxType")))
    try:
        seed = TaxRateSeed(
            tax_type=body["TaxType"],
            name=body.get("Name") or (current or {}).get("Name") or body["TaxType"],
            rate=Decimal(str(body.get("Rate", (current or {}).get("EffectiveRate", 0)))),
            status=body.get("Status", "ACTIVE"),
            report_tax_type=body.get("ReportTaxType", (current or {}).get("ReportTaxType", "OUTPUT")),
        )
    except (KeyError, ValueError, ArithmeticError) as exc:
        return _bad(f"bad tax rate: {exc}")
    return respond({"TaxRates": [org.put_tax_rate(seed)]})


async def put_account(request: web.Request) -> web.Response:
    """POST /__sandbox/orgs/{tenantId}/accounts: add an account or change its status."""
    state = request.app[STATE_KEY]
    org = state.orgs.get(request.match_info["tenant_id"])
    body = await _json(request)
    if org is None:
        return _bad("unknown tenant", 404)
    try:
        seed = AccountSeed(
            code=body["Code"],
            name=body.get("Name", body["Code"]),
            type=body.get("Type", "REVENUE"),
            tax_type=body.get("TaxType", "NONE"),
            status=body.get("Status", "ACTIVE"),
            enable_payments=bool(body.get("EnablePaymentsToAccount", False)),
        )
    except (KeyError, ValueError) as exc:
        return _bad(f"bad account: {exc}")
    return respond({"Accounts": [org.put_account(seed, state.now())]})


def add_routes(app: web.Application) -> None:
    """Register the admin routes."""
    r = app.router
    r.add_post(f"{PREFIX}/faults", set_fault)
    r.add_get(f"{PREFIX}/faults", list_faults)
    r.add_delete(f"{PREFIX}/faults", clear_faults)
    r.add_get(f"{PREFIX}/state", get_state)
    r.add_post(f"{PREFIX}/reset", reset)
    r.add_post(f"{PREFIX}/clock", advance_clock)
    r.add_post(PREFIX + "/orgs/{tenant_id}/taxrates", put_tax_rate)
    r.add_post(PREFIX + "/orgs/{tenant_id}/accounts", put_account)
