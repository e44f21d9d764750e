"""Replay planning (re-mapping codes, refusing amount changes), alerts by SMTP and webhook,
and the store agent holding on to a record while the database is down."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from inbox_helpers import invoice, rejected
from sqlalchemy.exc import OperationalError

from inbox import alerts, replay
from inbox.settings import InboxSettings
from schemas.tenant import TaxCode
from store import connections, tenant_config
from store import dead_letters as dl
from store.connections import TokenCipher


def with_gb(config, code: str, rate: str = "20", fallback: str | None = None):
    xero = config.ledgers["xero"]
    rules = tuple(
        r.model_copy(update={"tax": TaxCode(code=code, rate=rate)}) if r.country == "GB" else r
        for r in xero.tax.rules
    )
    tax = xero.tax.model_copy(update={"rules": rules})
    if fallback:
        tax = tax.model_copy(update={"fallback": TaxCode(code=fallback, rate=rate)})
    return config.model_copy(update={"ledgers": {"xero": xero.model_copy(update={"tax": tax})}, "version": 2})


def test_codes_move_with_their_slot_and_the_key_changes_with_the_body(acme) -> None:
    letter = rejected(invoice("1"))
    plan = replay.plan(letter, bound_external_id=None, old_config=acme, new_config=with_gb(acme, "TAX001"))
    assert plan.action == "publish_command"
    sent = json.loads(plan.value)
    assert {line["tax_code"] for line in sent["document"]["lines"]} == {"TAX001"}  # GB rule, not fallback
    assert sent["document"]["total"] == "30.00"
    assert plan.replay_key == sent["idempotency_key"] != letter.id
    again = replay.plan(letter, bound_external_id=None, old_config=acme, new_config=with_gb(acme, "TAX001"))
    assert again.replay_key == plan.replay_key  # deterministic


def test_unchanged_mapping_resends_the_original_bytes(acme) -> None:
    letter = rejected(invoice("1"))
    plan = replay.plan(letter, bound_external_id=None, old_config=acme, new_config=acme)
    assert (plan.value, plan.replay_key) == (letter.original(), None)


def test_a_rate_change_is_refused_and_a_bound_document_is_resolved(acme) -> None:
    letter = rejected(invoice("1"))
    changed = with_gb(acme, "OUTPUT5", rate="5", fallback="OUTPUT5")
    plan = replay.plan(letter, bound_external_id=None, old_config=acme, new_config=changed)
    assert plan.action == "refuse" and "rate" in plan.note
    plan = replay.plan(letter, bound_external_id="INV-9", old_config=acme, new_config=changed)
    assert plan.action == "resolved"


def test_an_ambiguous_code_without_a_matching_rule_is_refused(acme) -> None:
    letter = rejected(invoice("1", country="FR"))  # FR: from the fallback, not the GB rule
    plan = replay.plan(letter, bound_external_id=None, old_config=acme, new_config=with_gb(acme, "TAX001"))
    assert plan.action == "publish_command" and plan.replay_key is None  # fallback unchanged


class Inbox:
    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():
    handler = Inbox()
    from streams.devstack import free_port

    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, handler
    controller.stop()


async def test_new_items_are_mailed_once_per_tenant_in_one_batch(sessions, acme, smtp) -> None:
    port, handler = smtp
    with sessions.begin() as s:
        tenant_config.apply(s, acme, "t")
        for order in ("1", "2", "3"):
            dl.upsert(s, rejected(invoice(order)))
    settings = InboxSettings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="ls@127.0.0.1")
    now = datetime.now(UTC)
    sent = await alerts.run(sessions, alerts.Notifier(settings), settings, now)
    assert sent == 1
    [mail] = handler.messages
    assert mail.rcpt_tos == ["finance@acme.example"]
    body = mail.content.decode()
    assert "3 new failed posting(s) for acme-uk" in body and all(f"order {n}" in body for n in "123")
    assert await alerts.run(sessions, alerts.Notifier(settings), settings, now) == 0  # not again
    assert len(handler.messages) == 1


async def test_webhook_gets_reconnect_and_inactivity_alerts(sessions, acme) -> None:
    received = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        cipher = TokenCipher([__import__("cryptography.fernet").fernet.Fernet.generate_key()])
        now = datetime.now(UTC)
        with sessions.begin() as s:
            tenant_config.apply(s, acme, "t")
            for tenant, status in (("acme-uk", "needs_reconnect"), ("idle-shop", "active")):
                row = connections.LedgerConnection(
                    tenant_id=tenant, ledger="xero", organisation_id="o", status=status
                )
                row.set_tokens(cipher, access_token="a", refresh_token="r", access_expires_at=now)
                row.status = status
                s.add(row)
                s.flush()
                row.refreshed_at = now - timedelta(days=55)
        settings = InboxSettings(alert_webhook_url=f"http://127.0.0.1:{port}/hook")
        assert await alerts.run(sessions, alerts.Notifier(settings), settings, now) == 2
        kinds = {(a["kind"], a["tenant_id"]) for a in received}
        assert kinds == {("needs_reconnect", "acme-uk"), ("inactive", "idle-shop")}
        assert await alerts.run(sessions, alerts.Notifier(settings), settings, now + timedelta(hours=1)) == 0
    finally:
        await runner.cleanup()


async def test_the_store_agent_waits_out_a_database_outage(make_letter) -> None:
    from agents.dead_letter_store import persist

    calls, sleeps = [], []

    def flaky(letter, position):
        calls.append(position)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, Exception("connection refused"))

    async def sleep(seconds):
        sleeps.append(seconds)
        await asyncio.sleep(0)

    await persist(make_letter("1"), "dlq:0:1", sleep=sleep, store=flaky)
    assert calls == ["dlq:0:1"] * 3 and sleeps == [0.5, 1.0]
