"""Identity: authorize + PKCE, token exchange, refresh rotation and grace, revocation."""

from __future__ import annotations

from connectors.xero.sandbox import SandboxConfig, default_config
from tests.unit.xero_sandbox.sandbox_driver import REDIRECT, SCOPE, UK, US, basic


async def test_code_exchange_with_pkce_gives_bearer_and_refresh(fresh):
    code, verifier = await fresh.authorize()
    status, body = await fresh.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
    )
    assert status == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    assert body["refresh_token"] and body["access_token"] and body["scope"] == SCOPE
    # single use
    status, body = await fresh.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
    )
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_wrong_verifier_redirect_or_secret_is_rejected(fresh):
    code, _ = await fresh.authorize()
    status, body = await fresh.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": "nope"}
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    code, verifier = await fresh.authorize()
    status, body = await fresh.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://evil/cb",
            "code_verifier": verifier,
        }
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = await fresh.token({"grant_type": "authorization_code", "code": "x"}, secret="wrong")
    assert (status, body["error"]) == (400, "invalid_client")


async def test_authorize_rejects_unknown_client_and_unregistered_redirect(fresh):
    base = {
        "response_type": "code",
        "client_id": "ledgerstream-dev",
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "s",
    }
    for bad in ({"client_id": "nobody"}, {"redirect_uri": "http://127.0.0.1:9/cb"}):
        resp = await fresh.http.get("/identity/connect/authorize", params=base | bad, allow_redirects=False)
        assert resp.status == 400


async def test_connections_follow_the_granted_orgs(fresh):
    await fresh.connect(org=None)
    resp = await fresh.http.get("/connections", headers={"Authorization": f"Bearer {fresh.bearer}"})
    conns = await resp.json()
    assert {c["tenantId"] for c in conns} == {UK, US}
    assert {c["tenantName"] for c in conns} == {"Demo UK Ltd", "Demo US Inc"}
    assert all(c["tenantType"] == "ORGANISATION" and c["authEventId"] for c in conns)
    us = next(c for c in conns if c["tenantId"] == US)
    auth = {"Authorization": f"Bearer {fresh.bearer}"}
    assert (await fresh.http.delete(f"/connections/{us['id']}", headers=auth)).status == 204
    assert (await fresh.http.delete(f"/connections/{us['id']}", headers=auth)).status == 404
    status, body, _ = await fresh.api("GET", "Invoices", tenant=US)
    assert (status, body["Detail"]) == (403, "AuthorizationUnsuccessful")


async def test_narrowed_grant_reaches_only_that_org(sandbox):
    status, _, _ = await sandbox.api("GET", "Invoices", tenant=UK)
    assert status == 200
    status, body, _ = await sandbox.api("GET", "Invoices", tenant=US)
    assert (status, body["Title"]) == (403, "Forbidden")


async def test_refresh_rotates_and_old_token_has_a_grace_period(sandbox):
    first = await sandbox.connect()
    status, second = await sandbox.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert status == 200 and second["refresh_token"] != first["refresh_token"]
    await sandbox.admin("POST", "clock", {"advance_seconds": 20 * 60})
    status, again = await sandbox.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert status == 200 and again["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    await sandbox.admin("POST", "clock", {"advance_seconds": 11 * 60})
    status, body = await sandbox.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert (status, body) == (400, {"error": "invalid_grant"})
    status, _ = await sandbox.token({"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert status == 200


async def test_access_token_expires_and_refresh_token_expires_unused(sandbox):
    tokens = await sandbox.connect()
    await sandbox.admin("POST", "clock", {"advance_seconds": 1801})
    status, body, _ = await sandbox.api("GET", "Invoices")
    assert (status, body["Detail"]) == (401, "AuthenticationUnsuccessful")
    await sandbox.admin("POST", "clock", {"advance_seconds": 60 * 86400})
    status, body = await sandbox.token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_revocation_kills_refresh_token_and_connections(sandbox):
    tokens = await sandbox.connect()
    resp = await sandbox.http.post(
        "/connect/revocation", headers=basic(), data={"token": tokens["refresh_token"]}
    )
    assert resp.status == 200
    status, body = await sandbox.token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    status, _, _ = await sandbox.api("GET", "Invoices")
    assert status == 401


async def test_admin_revoke_tenant_tokens_gives_invalid_grant(sandbox):
    tokens = await sandbox.connect()
    assert (await sandbox.admin("POST", "faults", {"revoke_tenant_tokens": UK}))["revoked_grants"] >= 1
    status, body = await sandbox.token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_no_refresh_token_without_offline_access(fresh):
    body = await fresh.connect(scope="accounting.transactions")
    assert "refresh_token" not in body


async def test_client_credentials_for_custom_connection(make_sandbox):
    config = default_config().model_dump()
    config["clients"].append({"client_id": "custom", "client_secret": "s3", "custom_connection_org": US})
    driver = await make_sandbox(SandboxConfig.model_validate(config))
    status, body = await driver.token({"grant_type": "client_credentials"}, client_id="custom", secret="s3")
    assert status == 200 and "refresh_token" not in body
    driver.bearer = body["access_token"]
    assert (await driver.api("GET", "TaxRates", tenant=US))[0] == 200
    assert (await driver.api("GET", "TaxRates", tenant=UK))[0] == 403
    status, body = await driver.token({"grant_type": "client_credentials"})
    assert (status, body["error"]) == (400, "unauthorized_client")


async def test_api_requires_bearer(fresh):
    resp = await fresh.http.get("/api.xro/2.0/Invoices", headers={"xero-tenant-id": UK})
    body = await resp.json()
    assert resp.status == 401
    assert body["Title"] == "Unauthorized" and body["Status"] == 401
