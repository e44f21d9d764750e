"""The inbox web pages and API: login, sessions, CSRF, tenant scoping, retry and discard."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer
from inbox_helpers import invoice, rejected
from pydantic import SecretStr

from inbox.auth import COOKIE, Sessions
from inbox.service import Inbox
from inbox.web import Context, make_app
from store import dead_letters as dl
from store import tenant_config, users
from streams.topics import TopicNames

PASSWORD = "correct horse battery"


@pytest.fixture
def published() -> list[tuple[str, bytes, bytes]]:
    return []


@pytest.fixture
def seeded(sessions, acme):
    other = acme.model_copy(update={"tenant_id": "globex", "name": "Globex"})
    with sessions.begin() as s:
        tenant_config.apply(s, acme, "test")
        tenant_config.apply(s, other, "test")
        users.add(s, "alice", PASSWORD, "finance", ["acme-uk"])
        users.add(s, "root", PASSWORD, "admin", [])
        mine, _ = dl.upsert(s, rejected(invoice("1001")))
        theirs, _ = dl.upsert(s, rejected(invoice("2001", tenant="globex")))
    return {"mine": mine.id, "theirs": theirs.id}


@pytest.fixture
async def client(sessions, seeded, published):
    async def publish(topic: str, key: bytes, value: bytes) -> None:
        published.append((topic, key, value))

    inbox = Inbox(sessions, publish, TopicNames("t."))
    ctx = Context(lambda: inbox, Sessions(SecretStr("s3cret"), 3600), api_token=SecretStr("api-token"))
    async with TestClient(TestServer(make_app(ctx), host="127.0.0.1")) as c:
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def login(client: TestClient, name: str = "alice", password: str = PASSWORD) -> str:
    page = await client.get("/inbox/login")
    answer = await client.post(
        "/inbox/login",
        data={"name": name, "password": password, "csrf": csrf_of(await page.text())},
        allow_redirects=False,
    )
    assert answer.status == 303, await answer.text()
    listing = await client.get("/inbox")
    return csrf_of(await listing.text())


async def test_anonymous_pages_redirect_to_login_and_api_is_401(client, seeded) -> None:
    for path in (
        "/inbox",
        f"/inbox/items/{seeded['mine']}",
        "/inbox/history",
        "/inbox/tenants/acme-uk/config",
    ):
        answer = await client.get(path, allow_redirects=False)
        assert answer.status == 303 and answer.headers["Location"].startswith("/inbox/login"), path
    for method, path in (
        ("GET", "/api/dlq/items"),
        ("GET", f"/api/dlq/items/{seeded['mine']}"),
        ("POST", f"/api/dlq/items/{seeded['mine']}/retry"),
        ("POST", "/api/dlq/retry"),
    ):
        answer = await client.request(method, path)
        assert answer.status == 401, path
    answer = await client.post(f"/inbox/items/{seeded['mine']}/retry", data={}, allow_redirects=False)
    assert answer.status == 303 and "/inbox/login" in answer.headers["Location"]


async def test_wrong_password_and_forged_cookie_are_refused(client) -> None:
    page = await client.get("/inbox/login")
    answer = await client.post(
        "/inbox/login", data={"name": "alice", "password": "nope-nope", "csrf": csrf_of(await page.text())}
    )
    assert answer.status == 401
    forged = Sessions(SecretStr("another secret"), 3600).dump(Sessions.new("root"))
    client.session.cookie_jar.update_cookies({COOKIE: forged})
    answer = await client.get("/api/dlq/items")
    assert answer.status == 401


async def test_finance_user_sees_only_their_tenant(client, seeded) -> None:
    await login(client)
    html = await (await client.get("/inbox")).text()
    assert "1001" in html and "2001" not in html
    assert (await client.get(f"/inbox/items/{seeded['theirs']}")).status == 404
    assert (await client.get("/inbox/tenants/globex/config")).status == 404
    data = await (await client.get("/api/dlq/items?status=all")).json()
    assert [i["order_id"] for i in data["items"]] == ["1001"]
    assert (await client.get("/api/dlq/items?tenant=globex")).status == 200
    assert (await (await client.get("/api/dlq/items?tenant=globex")).json())["items"] == []
    assert (await client.get(f"/api/dlq/items/{seeded['theirs']}")).status == 404


async def test_cross_tenant_retry_and_discard_are_refused(client, seeded, published, sessions) -> None:
    csrf = await login(client)
    answer = await client.post(f"/inbox/items/{seeded['theirs']}/retry", data={"csrf": csrf})
    assert answer.status == 404
    answer = await client.post(f"/inbox/items/{seeded['theirs']}/discard", data={"csrf": csrf, "reason": "x"})
    assert answer.status == 404
    answer = await client.post(f"/api/dlq/items/{seeded['theirs']}/retry", headers={"X-CSRF-Token": csrf})
    assert answer.status == 404
    answer = await client.post("/inbox/retry", data={"csrf": csrf, "tenant": "globex"})
    assert answer.status == 404
    answer = await client.post("/api/dlq/retry", json={"tenant": "globex"}, headers={"X-CSRF-Token": csrf})
    assert (await answer.json())["counts"] == {}
    assert published == []
    with sessions() as s:
        assert dl.get(s, seeded["theirs"]).status == "open"


async def test_posts_without_the_csrf_token_are_refused(client, seeded, published) -> None:
    await login(client)
    answer = await client.post(f"/inbox/items/{seeded['mine']}/retry", data={})
    assert answer.status == 403
    answer = await client.post(f"/inbox/items/{seeded['mine']}/retry", data={"csrf": "guess"})
    assert answer.status == 403
    answer = await client.post(f"/api/dlq/items/{seeded['mine']}/retry")
    assert answer.status == 403
    assert published == []


async def test_retry_publishes_and_marks_retrying_with_history(client, seeded, published, sessions) -> None:
    csrf = await login(client)
    answer = await client.post(f"/inbox/items/{seeded['mine']}/retry", data={"csrf": csrf})
    assert answer.status == 200
    assert "published" in await answer.text()
    [(topic, key, value)] = published
    assert topic == "t.ledger.xero.commands" and key == b"acme-uk"
    with sessions() as s:
        item = dl.get(s, seeded["mine"])
        assert item.status == "retrying"
        assert value == item.letter().original()  # mapping unchanged: the original bytes
        latest = dl.history(s, item_id=item.id)[0]
        assert (latest.actor, latest.action) == ("alice", "retry")


async def test_discard_needs_a_reason_and_is_audited(client, seeded, sessions) -> None:
    csrf = await login(client)
    answer = await client.post(f"/inbox/items/{seeded['mine']}/discard", data={"csrf": csrf, "reason": ""})
    assert "needs a reason" in await answer.text()
    await client.post(f"/inbox/items/{seeded['mine']}/discard", data={"csrf": csrf, "reason": "cancelled"})
    with sessions() as s:
        item = dl.get(s, seeded["mine"])
        assert (item.status, item.status_note) == ("discarded", "cancelled")
    history = await (await client.get("/inbox/history")).text()
    assert "cancelled" in history and "alice" in history


async def test_detail_page_explains_in_plain_words(client, seeded) -> None:
    await login(client)
    html = await (await client.get(f"/inbox/items/{seeded['mine']}")).text()
    assert "Tax code OUTPUT2 is not active in this Xero organisation." in html
    assert "Tax type &#39;OUTPUT2&#39; is not active" in html  # the original message too
    assert "ledgers.xero.tax.rules[GB].tax.code" in html  # the field to change
    assert "<td>Mug</td>" in html and "30.00 GBP" in html


async def test_config_editor_shows_errors_with_lines_and_saves(client, sessions) -> None:
    csrf = await login(client)
    page = await (await client.get("/inbox/tenants/acme-uk/config")).text()
    assert "OUTPUT2" in page
    with sessions() as s:
        text = tenant_config.to_yaml(tenant_config.current(s, "acme-uk"))
    bad = text.replace("base_currency: GBP", "base_currency: POUNDS")
    answer = await client.post("/inbox/tenants/acme-uk/config", data={"csrf": csrf, "config": bad})
    assert answer.status == 400
    assert re.search(r"config:\d+: base_currency", await answer.text())
    good = text.replace("code: OUTPUT2", "code: TAX001", 1)
    answer = await client.post("/inbox/tenants/acme-uk/config", data={"csrf": csrf, "config": good})
    assert answer.status == 200, await answer.text()
    with sessions() as s:
        assert tenant_config.current(s, "acme-uk").version == 2


async def test_bearer_token_is_an_admin_for_scripts(client, seeded) -> None:
    headers = {"Authorization": "Bearer api-token"}
    data = await (await client.get("/api/dlq/items", headers=headers)).json()
    assert {i["order_id"] for i in data["items"]} == {"1001", "2001"}
    shown = await (await client.get(f"/api/dlq/items/{seeded['theirs']}", headers=headers)).json()
    assert shown["explanation"]["plain"] == ["Tax code OUTPUT2 is not active in this Xero organisation."]
    bad = await client.get("/api/dlq/items", headers={"Authorization": "Bearer wrong"})
    assert bad.status == 401
