"""A small client-side driver for the Xero sandbox tests, plus payload builders."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient

from connectors.xero.sandbox.state import SandboxState

REDIRECT = "http://127.0.0.1:6066/connect/xero/callback"
SCOPE = "openid profile email offline_access accounting.transactions accounting.contacts accounting.settings"
UK = "6f1c1b8e-2d7a-4c53-9a55-0b1d2f3e4a51"
US = "9b2e4c7d-5a61-4f08-8c3e-7d6a1b2c3d42"


def basic(client_id: str = "ledgerstream-dev", secret: str = "dev-secret") -> dict[str, str]:
    """HTTP Basic client authentication header."""
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def pkce() -> tuple[str, str]:
    """A (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Driver:
    """Talks to the sandbox the way a client would."""

    def __init__(self, http: TestClient, state: SandboxState) -> None:
        self.http, self.state = http, state
        self.bearer: str = ""

    async def authorize(self, org: str | None = UK, scope: str = SCOPE, **extra: str) -> tuple[str, str]:
        """Run /authorize; return (code, verifier)."""
        verifier, challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": "ledgerstream-dev",
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": "xyz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        } | extra
        if org:
            params["org"] = org
        resp = await self.http.get("/identity/connect/authorize", params=params, allow_redirects=False)
        assert resp.status == 302, await resp.text()
        query = parse_qs(urlsplit(resp.headers["Location"]).query)
        assert query["state"] == ["xyz"]
        return query["code"][0], verifier

    async def token(self, form: dict[str, str], **auth: str) -> tuple[int, dict[str, Any]]:
        """POST /connect/token."""
        resp = await self.http.post("/connect/token", data=form, headers=basic(**auth))
        return resp.status, await resp.json()

    async def connect(self, org: str | None = UK, scope: str = SCOPE) -> dict[str, Any]:
        """Authorize and exchange the code; remember the access token."""
        code, verifier = await self.authorize(org, scope)
        status, body = await self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            }
        )
        assert status == 200, body
        self.bearer = body["access_token"]
        return body

    async def api(
        self,
        method: str,
        path: str,
        *,
        tenant: str = UK,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        """Call the Accounting API; return (status, JSON body, headers)."""
        hdrs = {
            "Authorization": f"Bearer {self.bearer}",
            "xero-tenant-id": tenant,
            "Accept": "application/json",
        } | (headers or {})
        resp = await self.http.request(method, f"/api.xro/2.0/{path}", json=json, params=params, headers=hdrs)
        return resp.status, await resp.json(), resp.headers

    async def admin(self, method: str, path: str, json: Any = None) -> Any:
        """Call the sandbox admin API."""
        resp = await self.http.request(method, f"/__sandbox/{path}", json=json)
        assert resp.status < 400, await resp.text()
        return await resp.json()


def invoice(**over: Any) -> dict[str, Any]:
    """A valid ACCREC invoice payload."""
    base = {
        "Type": "ACCREC",
        "Contact": {"Name": "Ada Lovelace"},
        "Date": "2026-03-01",
        "DueDate": "2026-03-31",
        "LineAmountTypes": "Exclusive",
        "Status": "AUTHORISED",
        "CurrencyCode": "GBP",
        "LineItems": [
            {
                "Description": "Widget",
                "Quantity": 2,
                "UnitAmount": 10,
                "AccountCode": "200",
                "TaxType": "OUTPUT2",
            }
        ],
    }
    return base | over
