"""The Xero connect flow through the worker's web views, on the real broker, PostgreSQL and sandbox.

GET /connect/xero (API token) → one-time start link on the worker → the merchant's browser opens
it (gets the binding cookie) → 302 to the sandbox's authorize → 302 to the worker's callback
→ cookie matches the state → code exchanged with PKCE → organisation picked → connection stored
(encrypted) → health shows it → `ledgerstream xero check` talks to Xero with it → disconnect
revokes and deletes it. A browser without the cookie (someone else holding the authorize URL)
is refused. Each `httpx.Client` is one browser: it keeps its cookies.
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
BROWSER_COOKIE = "ledgerstream_xero_connect"


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


def start_link(stack: Stack) -> str:
    """What the operator's tool gets (API token): the one-time start link for the merchant."""
    start = httpx.get(
        f"{stack.web_url}/connect/xero",
        params={"tenant": TENANT},
        headers={**auth(), "Accept": "application/json"},
        timeout=10,
    )
    assert start.status_code == 200, start.text
    link = start.json()["start_url"]
    assert link.startswith(f"{stack.web_url}/connect/xero/start?ticket=")
    return link


def open_start_link(stack: Stack, http: httpx.Client, link: str) -> str:
    """The merchant's browser opens the start link: binding cookie set, redirected to Xero."""
    bound = http.get(link)
    assert bound.status_code == 302, bound.text
    cookie = bound.headers["set-cookie"]
    assert cookie.startswith(f"{BROWSER_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/connect/xero" in cookie
    authorize_url = bound.headers["location"]
    assert authorize_url.startswith(f"{stack.sandbox_url}/identity/connect/authorize")
    query = parse_qs(urlparse(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [stack.worker_callback]
    return authorize_url


def consent(stack: Stack, http: httpx.Client, authorize_url: str) -> httpx.Response:
    """Consent at the sandbox, follow its redirect back to the worker's callback."""
    answer = http.get(authorize_url)
    assert answer.status_code == 302, answer.text
    callback = answer.headers["location"]
    assert callback.startswith(stack.worker_callback)
    return http.get(callback)


def authorize_and_return(stack: Stack, http: httpx.Client) -> httpx.Response:
    """Start on the worker, open the link in `http` (the browser), consent, back to the callback."""
    return consent(stack, http, open_start_link(stack, http, start_link(stack)))


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

        with httpx.Client(follow_redirects=False, timeout=30) as other_browser:
            stolen = other_browser.post(
                web_stack.worker_callback, data={"state": token[1], "organisation_id": us_id}
            )
            assert stolen.status_code == 403  # the pick token alone is not enough
        assert web_stack.connection(TENANT) is None

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
    # Removed at Xero too: this tenant's organisation only (DELETE /connections/{id}); the other
    # organisation the same consent covered was never picked and is left alone.
    remaining = {c["tenantId"] for c in web_stack.sandbox_state()["connections"]}
    assert us_id not in remaining

    failed = _cli(web_stack, "xero", "check", TENANT)
    assert failed.returncode == 1
    assert "no Xero connection" in failed.stderr


def test_the_start_link_is_single_use_and_a_plain_redirect_without_json(web_stack: Stack) -> None:
    start = httpx.get(
        f"{web_stack.web_url}/connect/xero", params={"tenant": TENANT}, headers=auth(), timeout=10
    )
    assert start.status_code == 302
    link = start.headers["location"]
    assert link.startswith(f"{web_stack.web_url}/connect/xero/start?ticket=")
    assert (
        "identity/connect/authorize" not in link
    )  # nothing of the OAuth flow leaves before a browser opens it
    with httpx.Client(follow_redirects=False, timeout=30) as merchant:
        open_start_link(web_stack, merchant, link)
    with httpx.Client(follow_redirects=False, timeout=30) as second:
        again = second.get(link)
        assert again.status_code == 400 and "already used" in again.text
        assert BROWSER_COOKIE not in second.cookies


def test_a_callback_in_another_browser_is_refused(web_stack: Stack) -> None:
    """Whoever gets hold of the authorize URL cannot consent with their own organisation."""
    with httpx.Client(follow_redirects=False, timeout=30) as merchant:
        authorize_url = open_start_link(web_stack, merchant, start_link(web_stack))
        with httpx.Client(follow_redirects=False, timeout=30) as someone_else:
            refused = consent(web_stack, someone_else, authorize_url)
            assert refused.status_code == 403, refused.text
            assert "started in another browser" in refused.text
        assert web_stack.connection(TENANT) is None
        # A forged cookie does not help either.
        with httpx.Client(follow_redirects=False, timeout=30) as forger:
            forger.cookies.set(BROWSER_COOKIE, "eyJzdGF0ZSI6IngifQ.forged.sig", domain="127.0.0.1")
            assert consent(web_stack, forger, authorize_url).status_code == 403
        # The merchant's own browser still completes the flow (the refusal did not use it up).
        page = consent(web_stack, merchant, authorize_url)
        assert page.status_code == 200, page.text
        assert "Demo UK Ltd" in page.text and "Demo US Inc" in page.text  # the picker


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
        assert BROWSER_COOKIE not in http.cookies  # the flow is over: its cookie is cleared
        again = http.get(stack.worker_callback, params={"code": "whatever", "state": "unknown"})
        assert again.status_code == 403
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
