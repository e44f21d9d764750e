"""The Xero connect flow through the worker's web views, on the real broker, PostgreSQL and sandbox.

GET /connect/xero (API token) → 302 to the sandbox's authorize → 302 to the worker's callback
→ code exchanged with PKCE → organisation picked → connection stored (encrypted) → health shows
it → `ledgerstream xero check` talks to Xero with it → disconnect revokes and deletes it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from connectors.xero.sandbox.config import default_config
from streams.devstack import Stack

TOKEN = "it-api-token"
TENANT = "acme-uk"


@pytest.fixture
def web_stack(make_stack: Callable[[], Stack]) -> Stack:
    """Sandbox accepting the worker's callback; worker with an API token; no connection yet."""
    stack = make_stack()
    stack.start_sandbox_with(default_config())
    stack.set_api_token(TOKEN)
    stack.start_worker()
    return stack


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def authorize_and_return(stack: Stack, http: httpx.Client) -> httpx.Response:
    """Start on the worker, follow the consent redirect to the sandbox, then back to the callback."""
    start = http.get(f"{stack.web_url}/connect/xero", params={"tenant": TENANT}, headers=auth())
    assert start.status_code == 302, start.text
    authorize_url = start.headers["location"]
    assert authorize_url.startswith(f"{stack.sandbox_url}/identity/connect/authorize")
    query = parse_qs(urlparse(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [stack.worker_callback]

    consent = http.get(authorize_url)
    assert consent.status_code == 302, consent.text
    callback = consent.headers["location"]
    assert callback.startswith(stack.worker_callback)
    return http.get(callback)


def test_connect_requires_the_api_token(web_stack: Stack) -> None:
    answer = httpx.get(f"{web_stack.web_url}/connect/xero", params={"tenant": TENANT}, follow_redirects=False)
    assert answer.status_code == 401
    answer = httpx.get(
        f"{web_stack.web_url}/health/connections", headers={"Authorization": "Bearer wrong"}, timeout=10
    )
    assert answer.status_code == 401


def test_connect_picks_one_of_two_organisations_then_health_check_and_disconnect(web_stack: Stack) -> None:
    us_id = _org_id(web_stack, "Demo US Inc")
    with httpx.Client(follow_redirects=False, timeout=30) as http:
        page = authorize_and_return(web_stack, http)
        # The sandbox user authorised both demo organisations: the worker asks which one.
        assert page.status_code == 200, page.text
        assert "Demo UK Ltd" in page.text and "Demo US Inc" in page.text
        assert web_stack.connection(TENANT) is None
        token = re.search(r"name='state' value='([^']+)'", page.text)
        assert token is not None

        forged = http.post(
            web_stack.worker_callback, data={"state": "not-the-token", "organisation_id": us_id}
        )
        assert forged.status_code == 400
        assert web_stack.connection(TENANT) is None

        done = http.post(web_stack.worker_callback, data={"state": token[1], "organisation_id": us_id})
        assert done.status_code == 200, done.text
        assert "Connected to Xero" in done.text

        replay = http.post(web_stack.worker_callback, data={"state": token[1], "organisation_id": "x"})
        assert replay.status_code == 400  # single use

    connection = web_stack.connection(TENANT)
    assert connection is not None
    assert connection["organisation_name"] == "Demo US Inc"
    assert connection["organisation_id"] == us_id
    assert connection["status"] == "active"

    health = httpx.get(f"{web_stack.web_url}/health/connections", headers=auth(), timeout=10)
    assert health.status_code == 200
    [row] = health.json()["connections"]
    assert row["tenant_id"] == TENANT and row["organisation_name"] == "Demo US Inc"
    assert row["status"] == "active" and row["access_token_expires_at"]
    assert not {"access_token", "refresh_token"} & row.keys()  # expiries only, never token values

    check = _cli(web_stack, "xero", "check", TENANT, "--format", "json")
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert report["ok"] is True
    assert report["organisation"]["name"] == "Demo US Inc"
    assert report["connection"]["minute_calls_remaining"] == 59  # GET /Organisation was the one call

    gone = httpx.post(
        f"{web_stack.web_url}/connect/xero/disconnect", params={"tenant": TENANT}, headers=auth()
    )
    assert gone.status_code == 200 and gone.json()["disconnected"] is True
    assert web_stack.connection(TENANT) is None
    assert web_stack.sandbox_state()["connections"] == []  # revoked at Xero too

    failed = _cli(web_stack, "xero", "check", TENANT)
    assert failed.returncode == 1
    assert "no Xero connection" in failed.stderr


def test_single_organisation_is_stored_directly_and_a_stale_state_is_refused(
    make_stack: Callable[[], Stack],
) -> None:
    config = default_config()
    config.orgs = config.orgs[:1]  # only Demo UK Ltd
    stack = make_stack()
    stack.start_sandbox_with(config)
    stack.set_api_token(TOKEN)
    stack.start_worker()
    with httpx.Client(follow_redirects=False, timeout=30) as http:
        page = authorize_and_return(stack, http)
        assert page.status_code == 200, page.text
        assert "Connected to Xero" in page.text and "Demo UK Ltd" in page.text
        again = http.get(stack.worker_callback, params={"code": "whatever", "state": "unknown"})
        assert again.status_code == 400
    connection = stack.connection(TENANT)
    assert connection is not None and connection["organisation_name"] == "Demo UK Ltd"
    listing = _cli(stack, "xero", "connections", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    assert [r["tenant_id"] for r in json.loads(listing.stdout)] == [TENANT]


def _org_id(stack: Stack, name: str) -> str:
    return next(tid for tid, org in stack.sandbox_state()["orgs"].items() if org["name"] == name)


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("ledgerstream")
    return subprocess.run(
        [str(exe), *args], env={**os.environ, **stack.env()}, capture_output=True, text=True, timeout=60
    )
