"""TokenManager (refresh under lock, persist-before-use, invalid_grant) and the OAuth flow."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.errors import AuthRevoked, Transient
from connectors.xero.tokens import TokenManager
from store import connections
from store.base import utcnow

ORG = "11111111-1111-1111-1111-111111111111"
OTHER_ORG = "22222222-2222-2222-2222-222222222222"
TENANT = "shop-1"


def stored(sessions: Any, cipher: Any) -> tuple[str, str, str]:
    with sessions() as s:
        row = connections.get(s, TENANT, "xero")
        assert row is not None
        return row.access_token(cipher), row.refresh_token(cipher), row.status


async def test_fresh_token_is_used_without_refresh(tokens: TokenManager, connect: Any, fake: Any) -> None:
    issued = connect(expires_in=1800)
    assert await tokens.access_token(TENANT) == (issued["access_token"], ORG)
    assert fake.token_calls == 0


async def test_refresh_rotates_and_persists_before_use(
    tokens: TokenManager, connect: Any, fake: Any, sessions: Any, cipher: Any, client: Any
) -> None:
    issued = connect(expires_in=200)  # < 5 minutes left
    token, org = await tokens.access_token(TENANT)
    assert fake.token_calls == 1 and token != issued["access_token"] and org == ORG
    access, refresh, status = stored(sessions, cipher)
    assert access == token and refresh != issued["refresh_token"] and status == "active"
    assert fake.refresh_tokens[refresh] is True and fake.refresh_tokens[issued["refresh_token"]] is False

    seen: list[str] = []  # at the moment the new token reaches the API, the DB already holds the rotation
    fake.on_api_call = lambda request: seen.append(stored(sessions, cipher)[1])
    from connectors.xero.client import Auth

    await client.tax_rates(Auth(token, org))
    assert seen == [refresh]
    assert await tokens.access_token(TENANT) == (token, ORG)  # no second refresh
    assert fake.token_calls == 1


async def test_concurrent_refresh_has_one_writer(
    sessions: Any, cipher: Any, oauth: Any, connect: Any, fake: Any
) -> None:
    connect(expires_in=10)
    managers = [TokenManager(sessions, cipher, oauth) for _ in range(4)]  # four "workers"
    results = await asyncio.gather(*(m.access_token(TENANT) for m in managers))
    assert fake.token_calls == 1
    assert len({token for token, _ in results}) == 1


async def test_invalid_grant_marks_needs_reconnect(
    tokens: TokenManager, connect: Any, fake: Any, sessions: Any, cipher: Any
) -> None:
    issued = connect(expires_in=0)
    fake.refresh_tokens[issued["refresh_token"]] = False  # revoked / idle for 60 days
    with pytest.raises(AuthRevoked):
        await tokens.access_token(TENANT)
    assert stored(sessions, cipher)[2] == "needs_reconnect"
    with pytest.raises(AuthRevoked):  # no more token calls once parked
        await tokens.access_token(TENANT)
    assert fake.token_calls == 1


async def test_token_endpoint_outage_is_transient_and_keeps_tokens(
    tokens: TokenManager, connect: Any, fake: Any, sessions: Any, cipher: Any, monkeypatch: Any
) -> None:
    issued = connect(expires_in=0)

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="down", headers={"Retry-After": "30"})

    monkeypatch.setattr(fake, "token", down)
    with pytest.raises(Transient) as info:
        await tokens.access_token(TENANT)
    assert info.value.retry_after == 30
    assert stored(sessions, cipher) == (issued["access_token"], issued["refresh_token"], "active")


async def test_forced_refresh_after_401_reuses_a_newer_token(
    tokens: TokenManager, connect: Any, fake: Any
) -> None:
    issued = connect(expires_in=1800)
    first, _ = await tokens.refresh(TENANT, stale_token=issued["access_token"])
    assert first != issued["access_token"] and fake.token_calls == 1
    again, _ = await tokens.refresh(TENANT, stale_token=issued["access_token"])  # a peer saw the same 401
    assert again == first and fake.token_calls == 1


async def test_refresh_idle(tokens: TokenManager, connect: Any, fake: Any, sessions: Any) -> None:
    connect(expires_in=1800)
    assert await tokens.refresh_idle() == {}
    with sessions() as s:
        row = connections.get(s, TENANT, "xero")
        row.refreshed_at = utcnow() - timedelta(days=55)  # type: ignore[union-attr]
        s.commit()
    assert await tokens.refresh_idle() == {TENANT: "refreshed"}
    assert fake.token_calls == 1


async def test_missing_connection_is_auth_revoked(tokens: TokenManager) -> None:
    with pytest.raises(AuthRevoked):
        await tokens.access_token("nobody")


async def test_oauth_flow_with_pkce(oauth: Any, fake: Any, sessions: Any, cipher: Any, settings: Any) -> None:
    url, state, verifier = oauth.start(TENANT)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(settings.login_url)
    assert query["state"] == state and query["client_id"] == "ledgerstream-dev"
    assert query["code_challenge_method"] == "S256" and "offline_access" in query["scope"]
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == expected

    fake.code_challenges["code-1"] = query["code_challenge"]
    tokens = await oauth.finish("code-1", verifier)
    orgs = await oauth.list_connections(tokens.access_token)
    assert [(o.organisation_id, o.name) for o in orgs] == [(ORG, "Demo Ltd"), (OTHER_ORG, "Other Ltd")]
    with sessions() as s:
        oauth.store_connection(s, TENANT, orgs[0], tokens)
        s.commit()
    assert stored(sessions, cipher) == (tokens.access_token, tokens.refresh_token, "active")

    fake.code_challenges["code-2"] = query["code_challenge"]
    with pytest.raises(AuthRevoked):  # wrong verifier → invalid_grant
        await oauth.finish("code-2", "not-the-verifier")

    assert await oauth.disconnect(TENANT) is True
    assert fake.revoked == []  # /connect/revocation would remove the user's other connections too
    assert [c["id"] for c in fake.connections] == ["c-2"]
    with sessions() as s:
        assert connections.get(s, TENANT, "xero") is None
    assert await oauth.disconnect(TENANT) is False
