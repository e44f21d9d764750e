"""Inbox web hardening: login redirect target, throttling, logout revocation, cookie flags,
no blocking work on the event loop, and the API's `limit` validation."""

from __future__ import annotations

import re
import threading

import pytest
from aiohttp.test_utils import TestClient, TestServer
from inbox_helpers import invoice, rejected
from pydantic import SecretStr

from inbox import web as inbox_web
from inbox.auth import COOKIE, LoginThrottle, Sessions
from inbox.service import Inbox
from inbox.web import Context, make_app, safe_next
from store import dead_letters as dl
from store import tenant_config, users
from streams.topics import TopicNames

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def seeded(sessions, acme) -> int:
    with sessions.begin() as s:
        tenant_config.apply(s, acme, "test")
        users.add(s, "alice", PASSWORD, "finance", ["acme-uk"])
        item, _ = dl.upsert(s, rejected(invoice("1001")))
        return item.id


@pytest.fixture
async def client(sessions, seeded, clock):
    async def publish(topic: str, key: bytes, value: bytes) -> None:
        pass

    inbox = Inbox(sessions, publish, TopicNames("t."))
    ctx = Context(
        lambda: inbox,
        Sessions(SecretStr("s3cret"), 3600, clock=clock),
        api_token=SecretStr("api-token"),
        throttle=LoginThrottle(clock=clock),
    )
    async with TestClient(TestServer(make_app(ctx), host="127.0.0.1")) as c:
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def post_login(client: TestClient, password: str = PASSWORD, name: str = "alice", **extra: str):
    page = await client.get("/inbox/login")
    data = {"name": name, "password": password, "csrf": csrf_of(await page.text()), **extra}
    return await client.post("/inbox/login", data=data, allow_redirects=False)


# --------------------------------------------------------------------------- open redirect

BAD_TARGETS = [
    "//evil.com",
    "/\t/evil.com",
    "/%09/evil.com",  # as typed in the query string: decoded to a tab before it reaches us
    "/\\evil.com",
    "\\\\evil.com",
    "/\\/evil.com",
    "/\n/evil.com",
    "https://evil.com",
    "http:evil.com",
    "javascript:alert(1)",
    "evil.com",
    "/inbox/../../evil",
    "/elsewhere",
    "",
]


@pytest.mark.parametrize("target", BAD_TARGETS)
def test_safe_next_refuses_other_sites(target: str) -> None:
    assert safe_next(target) == "/inbox"


@pytest.mark.parametrize("target", ["/inbox", "/inbox/items/1", "/inbox?status=all&reason=ledger_rejected"])
def test_safe_next_keeps_inbox_paths(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize("target", ["//evil.com", "/\t/evil.com", "/\\evil.com", "https://evil.com"])
async def test_login_never_redirects_off_site(client, target: str) -> None:
    answer = await post_login(client, next=target)
    assert answer.status == 303
    assert answer.headers["Location"] == "/inbox"


async def test_login_redirects_back_to_the_inbox_page_asked_for(client, seeded) -> None:
    answer = await post_login(client, next=f"/inbox/items/{seeded}")
    assert answer.status == 303
    assert answer.headers["Location"] == f"/inbox/items/{seeded}"


async def test_the_query_string_form_of_the_tab_payload_is_refused(client) -> None:
    form = await client.get("/inbox/login", params={"next": "/\t/evil.com"})
    html = await form.text()
    token = csrf_of(html)
    shown = re.search(r'name="next" value="([^"]*)"', html).group(1)
    answer = await client.post(
        "/inbox/login",
        data={"name": "alice", "password": PASSWORD, "csrf": token, "next": shown},
        allow_redirects=False,
    )
    assert answer.headers["Location"] == "/inbox"


# --------------------------------------------------------------------------- cookies, logout


async def test_session_cookie_is_httponly_and_samesite(client) -> None:
    answer = await post_login(client)
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert re.search(r"SameSite=(Strict|Lax)", cookie)


async def test_logout_revokes_the_session_on_the_server(client) -> None:
    answer = await post_login(client)
    assert answer.status == 303
    stolen = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    listing = await client.get("/inbox")
    assert (await client.get("/api/dlq/items")).status == 200
    out = await client.post(
        "/inbox/logout", data={"csrf": csrf_of(await listing.text())}, allow_redirects=False
    )
    assert out.status == 303
    client.session.cookie_jar.update_cookies({COOKIE: stolen})  # a copy kept by someone else
    assert (await client.get("/api/dlq/items")).status == 401
    answer = await client.get("/inbox", allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"].startswith("/inbox/login")


def test_revocations_are_forgotten_once_the_cookie_would_have_expired(clock) -> None:
    sessions = Sessions(SecretStr("x"), 60, clock=clock)
    first, second = Sessions.new("alice"), Sessions.new("alice")
    sessions.revoke(first)
    assert sessions.load(sessions.dump(first)) is None
    assert sessions.load(sessions.dump(second)) == second
    clock.now += 61
    sessions.revoke(second)
    assert list(sessions._revoked) == [second.id]  # the first one's entry is gone (bounded memory)


# --------------------------------------------------------------------------- throttling


async def test_login_is_throttled_after_five_failures_with_a_growing_delay(client, clock) -> None:
    for _ in range(5):
        assert (await post_login(client, password="wrong-wrong")).status == 401
    refused = await post_login(client)  # even the right password: no guessing while locked
    assert refused.status == 429
    assert "Too many failed attempts" in await refused.text()
    assert int(refused.headers["Retry-After"]) >= 1
    other = await post_login(client, name="root", password="whatever-it-is")
    assert other.status == 401  # another name is judged on its own

    clock.now += 2.5
    assert (await post_login(client, password="wrong-wrong")).status == 401  # 6th failure
    clock.now += 2.5
    assert (await post_login(client)).status == 429  # now 4 s
    clock.now += 2
    ok = await post_login(client)
    assert ok.status == 303
    assert (await post_login(client, password="wrong-wrong")).status == 401  # success cleared it


def test_throttle_forgets_old_failures(clock) -> None:
    throttle = LoginThrottle(free=2, base_delay=10, forget_after=60, clock=clock)
    key = throttle.key("Alice ", "10.0.0.1")
    assert key == ("alice", "10.0.0.1")
    throttle.failed(key)
    throttle.failed(key)
    assert throttle.wait(key) == 10
    clock.now += 60
    assert throttle.wait(key) == 0


# --------------------------------------------------------------------------- the event loop


async def test_password_hashing_and_user_lookups_run_off_the_event_loop(client, monkeypatch) -> None:
    loop_thread = threading.get_ident()
    seen: dict[str, set[int]] = {"authenticate": set(), "get": set()}
    authenticate, get = users.authenticate, users.get

    def spy_authenticate(*args, **kw):
        seen["authenticate"].add(threading.get_ident())
        return authenticate(*args, **kw)

    def spy_get(*args, **kw):
        seen["get"].add(threading.get_ident())
        return get(*args, **kw)

    monkeypatch.setattr(inbox_web.users, "authenticate", spy_authenticate)
    monkeypatch.setattr(inbox_web.users, "get", spy_get)
    assert (await post_login(client)).status == 303
    assert (await client.get("/inbox")).status == 200
    assert seen["authenticate"] and loop_thread not in seen["authenticate"]
    assert seen["get"] and loop_thread not in seen["get"]


# --------------------------------------------------------------------------- API limit


@pytest.mark.parametrize("limit", ["abc", "-1", "0", "501", "1.5", " 5", "²", "9" * 5000])
async def test_api_limit_is_validated(client, limit: str) -> None:
    answer = await client.get(
        "/api/dlq/items", params={"limit": limit}, headers={"Authorization": "Bearer api-token"}
    )
    assert answer.status == 400
    assert "limit must be a whole number from 1 to 500" in (await answer.json())["error"]


async def test_api_limit_accepts_a_valid_number(client) -> None:
    answer = await client.get(
        "/api/dlq/items", params={"limit": "1"}, headers={"Authorization": "Bearer api-token"}
    )
    assert answer.status == 200
    assert len((await answer.json())["items"]) == 1
