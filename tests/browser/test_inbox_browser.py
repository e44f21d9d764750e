"""Finance's story in a real browser: log in, filter, read why an invoice failed, fix the tax
mapping, retry all matching, see them resolved. Screenshots go to test-artifacts/browser/.

The inbox runs as in the worker (the same aiohttp routes) on 127.0.0.1 with SQLite. Kafka and
Xero are replaced by the posting step's observable result, judged like Xero would: a published
command whose tax and account codes all exist in the organisation is "posted" by binding its
source id (as the connector does; the inbox job then resolves the item); any other command
comes back as a new dead letter for the same item (attempts + 1, status open), as the posting
agent would send it. Order 5004 books its mug to account 999, which the tax fix does not
touch: it must stay open with the new error. The real pipeline is covered by
tests/integration/test_inbox_replay.py.
"""

from __future__ import annotations

import asyncio
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
from schemas.commands import CreateInvoice
from store import bindings, tenant_config, users
from store import dead_letters as dl
from store.db import make_engine, make_sessions, migrate
from streams.topics import TopicNames

PASSWORD = "finance-pass-123"
XERO_TAX_CODES = {"TAX001", "NONE", "EXEMPTOUTPUT", "ZERORATEDOUTPUT"}  # OUTPUT2 archived in the org
XERO_ACCOUNTS = {"200", "425", "090", "091"}  # no account 999


def with_account(command: CreateInvoice, code: str) -> CreateInvoice:
    lines = (command.document.lines[0].model_copy(update={"account_code": code}), *command.document.lines[1:])
    return command.model_copy(update={"document": command.document.model_copy(update={"lines": lines})})


def xero_would_refuse(command: dict) -> str | None:
    for line in command["document"]["lines"]:
        if line["account_code"] not in XERO_ACCOUNTS:
            return f"Account code '{line['account_code']}' is not a valid code for this document."
        if line["tax_code"] not in XERO_TAX_CODES:
            return f"Tax type '{line['tax_code']}' is not active."
    return None


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
        dl.upsert(  # rejected for its tax code first; its account 999 is wrong too
            s, rejected(with_account(invoice("5004"), "999"))
        )
        dl.upsert(s, rejected(invoice("9001", tenant="globex")))
    published: list[dict] = []

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        command = json.loads(value)
        published.append(command)
        problem = xero_would_refuse(command)
        if problem is not None:  # the posting agent dead-letters it again: same item, back to open
            failed = rejected(CreateInvoice.model_validate(command), message=problem)
            with sessions.begin() as s:
                dl.upsert(s, failed, position=f"dead-letter:0:{len(published)}")
            return
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
    base, inbox, published, sessions = inbox_site
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

    assert await asyncio.to_thread(inbox.resolve_bound) == 3  # the worker's inbox job
    with sessions() as s:
        status = {
            i.order_id: (i.status, i.failures, i.attempts)
            for i in dl.search(s, dl.Filters(status=None), limit=None)
        }
    assert status == {
        "5001": ("resolved", 1, 1),
        "5002": ("resolved", 1, 1),
        "5003": ("resolved", 1, 1),
        "5004": ("open", 2, 2),  # failed again, now for its account
        "9001": ("open", 1, 1),  # another tenant's: untouched
    }
    await page.goto(f"{base}/inbox?status=resolved")
    await page.screenshot(path=str(shots / "5-resolved.png"), full_page=True)
    rows = await page.locator("tbody tr").all_inner_texts()
    assert sorted(o for o in ("5001", "5002", "5003", "5004") if any(o in r for r in rows)) == [
        "5001",
        "5002",
        "5003",
    ]

    await page.goto(f"{base}/inbox")  # open items: 5004 is back with the ledger's new answer
    rows = await page.locator("tbody tr").all_inner_texts()
    assert len(rows) == 1 and "5004" in rows[0]
    await page.click('tr:has-text("5004") >> text=invoice → xero')
    await page.wait_for_url("**/inbox/items/*")
    assert "Account code '999' is not a valid code" in await page.inner_text("body")
    await page.screenshot(path=str(shots / "5b-still-open.png"), full_page=True)

    await page.goto(f"{base}/inbox/history")
    history = await page.inner_text("body")
    assert "alice" in history and "retry_all" in history and "config_saved" in history
    await page.screenshot(path=str(shots / "6-history.png"), full_page=True)
