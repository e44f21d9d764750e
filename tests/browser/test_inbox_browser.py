"""Finance's story in a real browser: log in, filter, read why an invoice failed, fix the tax
mapping, retry all matching, see them resolved. Screenshots go to test-artifacts/browser/.

The inbox runs as in the worker (the same aiohttp routes) on 127.0.0.1 with SQLite. Kafka and
Xero are replaced by the posting step's observable result: a published command is "posted"
by binding its source id, as the connector does; the inbox job then resolves the item. The
real pipeline is covered by tests/integration/test_inbox_replay.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "inbox"))
from inbox_helpers import REPO, invoice, rejected

from inbox.auth import Sessions
from inbox.service import Inbox
from inbox.web import Context, make_app
from store import bindings, tenant_config, users
from store import dead_letters as dl
from store.db import make_engine, make_sessions, migrate
from streams.topics import TopicNames

PASSWORD = "finance-pass-123"


@pytest.fixture
async def inbox_site(tmp_path):
    url = f"sqlite:///{tmp_path / 'inbox.db'}"
    migrate(url)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    acme = tenant_config.load_yaml((REPO / "examples/tenants/acme-uk.yaml").read_text())
    with sessions.begin() as s:
        tenant_config.apply(s, acme, "setup")
        tenant_config.apply(s, acme.model_copy(update={"tenant_id": "globex", "name": "Globex"}), "setup")
        users.add(s, "alice", PASSWORD, "finance", ["acme-uk"])
        for order in ("5001", "5002", "5003"):
            dl.upsert(s, rejected(invoice(order)))
        dl.upsert(
            s, rejected(invoice("5004"), message="Account code '999' is not a valid code for this document.")
        )
        dl.upsert(s, rejected(invoice("9001", tenant="globex")))
    published: list[dict] = []

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        command = json.loads(value)
        published.append(command)
        with sessions.begin() as s:  # the posting agent's visible effect: the document is bound
            bindings.record(
                s,
                tenant_id=command["tenant_id"],
                ledger=command["ledger"],
                source_id=command["source_id"],
                external_id=f"INV-{command['order_id']}",
                kind=command["kind"],
                idempotency_key=command["idempotency_key"],
            )

    inbox = Inbox(sessions, publish, TopicNames())
    ctx = Context(lambda: inbox, Sessions(SecretStr("browser-secret"), 3600))
    runner = web.AppRunner(make_app(ctx))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", inbox, published, sessions
    await runner.cleanup()
    engine.dispose()


async def test_finance_fixes_the_tax_mapping_and_retries_all(browser, inbox_site, shots) -> None:
    base, inbox, published, _ = inbox_site
    page = await browser.new_page(viewport={"width": 1280, "height": 900})

    await page.goto(f"{base}/inbox")
    assert "/inbox/login" in page.url  # no anonymous access
    await page.fill("input[name=name]", "alice")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/inbox")
    await page.screenshot(path=str(shots / "1-list.png"), full_page=True)
    body = await page.inner_text("body")
    assert "5001" in body and "9001" not in body  # only her tenant

    await page.select_option("select[name=reason]", "ledger_rejected")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_load_state()
    assert "reason=ledger_rejected" in page.url
    await page.screenshot(path=str(shots / "2-filtered.png"), full_page=True)

    await page.click('tr:has-text("5001") >> text=invoice → xero')
    await page.wait_for_url("**/inbox/items/*")
    text = await page.inner_text("body")
    assert "Tax code OUTPUT2 is not active in this Xero organisation." in text
    assert "Original message: “Tax type 'OUTPUT2' is not active." in text
    assert "ledgers.xero.tax.rules[GB].tax.code" in text
    assert "Mug" in text and "30.00 GBP" in text
    await page.screenshot(path=str(shots / "3-detail.png"), full_page=True)

    await page.click("text=Edit the mapping of acme-uk")
    await page.wait_for_url("**/inbox/tenants/acme-uk/config*")
    yaml_text = await page.input_value("textarea[name=config]")
    await page.fill("textarea[name=config]", yaml_text.replace("OUTPUT2", "TAX001"))
    await page.fill("input[name=comment]", "OUTPUT2 archived in Xero")
    await page.click("text=Save mapping")
    await page.wait_for_selector("text=Saved as version 2")
    await page.screenshot(path=str(shots / "4-mapping-saved.png"), full_page=True)

    await page.click("text=retry the failed postings")
    await page.select_option("select[name=reason]", "ledger_rejected")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_load_state()
    await page.click("text=Retry all matching (4)")
    await page.wait_for_selector("text=Retry all: 4 published")
    assert len(published) == 4
    codes = {line["tax_code"] for c in published for line in c["document"]["lines"]}
    assert codes == {"TAX001"}  # re-posted with the fixed mapping

    assert await __import__("asyncio").to_thread(inbox.resolve_bound) == 4  # the worker's inbox job
    await page.goto(f"{base}/inbox?status=resolved")
    body = await page.inner_text("tbody")
    assert body.count("resolved") == 4
    await page.screenshot(path=str(shots / "5-resolved.png"), full_page=True)

    await page.goto(f"{base}/inbox/history")
    history = await page.inner_text("body")
    assert "alice" in history and "retry_all" in history and "config_saved" in history
    await page.screenshot(path=str(shots / "6-history.png"), full_page=True)
