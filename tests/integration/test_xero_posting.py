"""Posting to the Xero sandbox through the real broker, worker and PostgreSQL: volume, partial
rejection, day limit, revoked token, a crash mid-batch, and the request contract.

The sandbox keeps Xero's real limits (60 calls/minute, 5,000/day per tenant) throughout.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import yaml
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from schemas.tenant import TenantConfig
from store import tenant_config
from store.bindings import Binding
from streams.devstack import REPO, Stack, wait_until

UK, US = "acme-uk", "acme-us"
UK_ORG, US_ORG = "Demo UK Ltd", "Demo US Inc"

US_CONFIG = """
tenant_id: acme-us
name: Acme Inc
base_currency: USD
finance_email: finance@acme-us.example
policy: {trigger: fulfilled, status: authorised, document: invoice, mode: per_order,
         discount_mode: allocate, reference_template: "US Order {order_number}", due_days: 0,
         timezone: America/New_York}
ledgers:
  xero:
    tax:
      home_country: US
      rules: [{country: US, tax: {code: OUTPUT, rate: 8.875}}]
      fallback: {code: NONE, rate: 0}
      no_tax: {code: NONE, rate: 0}
    accounts:
      revenue: "200"
      shipping: "425"
      discounts: "429"
      gift_card_liability: "801"
      payments: [{gateway: stripe, account: "090"}]
      default_payment: "877"
      fees: "404"
      rounding: "497"
"""


# ---------------------------------------------------------------- helpers


def uk_config(**accounts: Any) -> TenantConfig:
    data = yaml.safe_load((REPO / "examples/tenants/acme-uk.yaml").read_text())
    data["ledgers"]["xero"]["accounts"].update(accounts)
    return tenant_config.load_yaml(yaml.safe_dump(data))


def order(
    tenant: str, n: int, *, sku: str = "MUG-01", customer: int | None = None, currency: str = "GBP"
) -> tuple[str, bytes]:
    """A fulfilled order of 2 × 10.00 + 5.00 shipping, tax-free destination: total 25.00.

    UK tenant → a US address (EXEMPTOUTPUT); US tenant → a Canadian one (fallback NONE).
    `customer` picks one of a few repeat (B2B) buyers; default: a buyer per order.
    """
    who = customer if customer is not None else n
    order_id = f"{tenant}-o{n}"
    event = {
        "type": "order.fulfilled",
        "event_id": f"evt-{order_id}",
        "tenant_id": tenant,
        "order_id": order_id,
        "occurred_at": "2026-11-20T10:00:00+00:00",
        "fulfillment_id": "f1",
        "lines": [{"line_id": "l1", "quantity": "2"}],
        "order": {
            "order_number": str(n),
            "currency": currency,
            "prices_include_tax": False,
            "lines": [{"line_id": "l1", "sku": sku, "name": "Mug", "quantity": "2", "unit_price": "10.00"}],
            "shipping_lines": [{"line_id": "s1", "title": "Courier", "price": "5.00"}],
            "customer": {"email": f"buyer{who}@example.com", "name": f"Buyer {who}"},
            "shipping_address": {"country": "US" if tenant == UK else "CA", "postcode": "10001"},
            "total": "25.00",
        },
    }
    return order_id, json.dumps(event).encode()


def publish_fast(stack: Stack, events: list[tuple[str, bytes]]) -> None:
    """Pipelined producer (one flush), so a thousand orders arrive in well under a second."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=20)
        await producer.start()
        try:
            for key, value in events:
                await producer.send(stack.names.orders, key=key.encode(), value=value)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())


def invoices(stack: Stack, org: str = UK_ORG) -> list[dict[str, Any]]:
    return stack.org(org)["invoices"]


def bound(stack: Stack, tenant: str) -> int:
    with stack.sessions() as session:
        return session.scalar(
            select(func.count())
            .select_from(Binding)
            .where(Binding.tenant_id == tenant, Binding.external_id.is_not(None))
        )


def api_calls(stack: Stack, method: str, resource: str, tenant_org: str | None = None) -> list[dict]:
    return [
        r
        for r in stack.sandbox_requests()
        if r["method"] == method
        and r["path"].endswith(f"/{resource}")
        and (tenant_org is None or r["tenant_id"] == tenant_org)
    ]


def build(
    make_stack: Callable[[], Stack],
    configs: dict[str, tuple[TenantConfig, str]],
    env: dict[str, str] | None = None,
) -> Stack:
    """Sandbox, configs applied, each tenant connected to its organisation, worker running."""
    stack = make_stack()
    stack.extra_env.update(env or {})
    stack.start_sandbox()
    versions = {}
    for tenant, (config, org) in configs.items():
        versions[tenant] = stack.apply_config(config)
        stack.connect(tenant, org)
    stack.start_worker()
    for tenant, version in versions.items():
        stack.sync_config(tenant, version)
    return stack


def org_id(stack: Stack, name: str) -> str:
    return next(tid for tid, o in stack.sandbox_state()["orgs"].items() if o["name"] == name)


# ---------------------------------------------------------------- tests


def test_thousand_orders_post_in_batches_without_duplicates(running_stack: Stack) -> None:
    """1,000 orders of one tenant, each from a NEW customer → 1,000 invoices in ≤ 25
    `PUT /Invoices` calls, none twice, and 1,000 contacts, each created once.

    Constraint checked: batching (≤ 50 invoices per call) and exactly-once, within Xero's real
    60 calls/minute (the sandbox's limits are not raised). Contacts are resolved per batch, not
    per customer: `GET /Contacts?where=EmailAddress=="…" OR …` (25 emails a call) and one
    `PUT /Contacts` creating the batch's new customers, so about 3 contact calls per batch
    instead of 3 per customer. That is ~4 calls a batch, ~80 in all: more than one minute's
    quota, so the poster meets a minute-limit 429 and waits out its Retry-After (real time, up
    to ~60 s). A refused (429) call is not processed, so a refusal can make at most one batch
    repeat its (≤ 2) contact lookups; the bound on lookups allows for that.
    """
    stack = running_stack
    publish_fast(stack, [order(UK, n) for n in range(1000)])  # buyer n for order n

    wait_until(lambda: len(invoices(stack)) >= 1000, timeout=150, interval=1.0)
    wait_until(lambda: bound(stack, UK) == 1000, timeout=60)

    docs = invoices(stack)
    refs = Counter(d["Reference"] for d in docs)
    assert len(docs) == 1000
    assert set(refs.values()) == {1}
    assert sum(Decimal(str(d["Total"])) for d in docs) == Decimal("25000.00")
    puts = api_calls(stack, "PUT", "Invoices")
    assert len(puts) <= 25, len(puts)
    assert all(len(p["body"]["Invoices"]) <= 50 for p in puts)

    # every order's invoice is for its own buyer, and each buyer exists once in Xero
    state = stack.sandbox_state()
    uk = org_id(stack, UK_ORG)
    contacts = state["orgs"][uk]["contacts"]
    assert len(contacts) == 1000
    assert sorted(c["EmailAddress"] for c in contacts) == sorted(f"buyer{n}@example.com" for n in range(1000))
    contact_email = {c["ContactID"]: c["EmailAddress"] for c in contacts}
    for d in docs:
        n = d["Reference"].removeprefix("Order ")
        assert contact_email[d["Contact"]["ContactID"]] == f"buyer{n}@example.com", d["Reference"]

    contact_puts = api_calls(stack, "PUT", "Contacts")
    lookups = api_calls(stack, "GET", "Contacts")
    refused = state["refused_calls"].get(uk, 0)
    assert sum(len(p["body"]["Contacts"]) for p in contact_puts) == 1000  # no contact sent twice
    assert len(contact_puts) <= len(puts)  # one create per batch at most
    assert all(r["query"]["where"].count("EmailAddress==") <= 25 for r in lookups)
    assert len(lookups) <= 2 * len(puts) + 2 * refused
    calls = state["api_calls"][uk]
    print(  # shown with -s
        f"1000 orders, 1000 new customers: {len(puts)} PUT /Invoices, {len(lookups)} GET /Contacts, "
        f"{len(contact_puts)} PUT /Contacts, {calls} API calls in all, {refused} refused (429)"
    )
    assert stack.dead_letters(wait=1.0) == []


def test_three_invalid_invoices_in_a_batch_are_dead_lettered_and_the_rest_post(
    make_stack: Callable[[], Stack],
) -> None:
    """A SKU-prefix mapping to an account the organisation does not have ("999"): Xero rejects
    exactly those invoices (summarizeErrors=false); they are dead-lettered with Xero's message,
    the other 47 of the batch post."""
    stack = build(make_stack, {UK: (uk_config(revenue_by_sku_prefix={"BAD-": "999"}), UK_ORG)})
    bad = {7, 23, 41}
    publish_fast(stack, [order(UK, n, sku="BAD-9" if n in bad else "MUG-01", customer=1) for n in range(50)])

    wait_until(lambda: len(stack.dead_letters(wait=1.0)) >= 3, timeout=60)
    wait_until(lambda: bound(stack, UK) == 47, timeout=60)
    letters = stack.dead_letters(wait=1.0)
    assert sorted(letter["order_id"] for letter in letters) == sorted(f"{UK}-o{n}" for n in bad)
    for letter in letters:
        assert letter["reason_code"] == "ledger_rejected"
        assert "Account code '999' is not a valid code" in letter["reason"]
        assert any("999" in m for m in letter["ledger_response"]["messages"])
    refs = sorted(d["Reference"] for d in invoices(stack))
    assert refs == sorted(f"Order {n}" for n in range(50) if n not in bad)
    assert stack.parked() == []


def test_day_limit_parks_one_tenant_while_the_other_keeps_posting(make_stack: Callable[[], Stack]) -> None:
    """A day-limit 429 for Demo UK Ltd only (sandbox fault filtered by organisation): acme-uk's
    commands are parked until the window resets, with one refused call and no more; acme-us,
    on Demo US Inc, posts everything meanwhile. Nothing is dead-lettered."""
    us_config = tenant_config.load_yaml(US_CONFIG)
    stack = build(make_stack, {UK: (uk_config(), UK_ORG), US: (us_config, US_ORG)})
    uk_org = org_id(stack, UK_ORG)
    stack.fault({"rate_limit": "day", "retry_after": 40000, "count": 1, "tenant": uk_org})

    events = []
    for n in range(20):  # interleaved, so both tenants' commands are in flight together
        events += [order(UK, n, customer=1), order(US, n, customer=1, currency="USD")]
    publish_fast(stack, events)

    wait_until(lambda: len(invoices(stack, US_ORG)) == 20, timeout=60)
    wait_until(lambda: len(stack.parked(UK)) == 20, timeout=60)
    assert {p["waiting_for"] for p in stack.parked(UK)} == {"day_limit"}
    assert invoices(stack, UK_ORG) == []
    connection = stack.connection(UK)
    assert connection is not None and connection["day_parked_until"] is not None
    assert len([r for r in stack.sandbox_requests() if r["tenant_id"] == uk_org]) == 1  # the refused one
    assert stack.connection(US)["day_parked_until"] is None  # type: ignore[index]
    assert stack.dead_letters(wait=1.0) == []


def test_revoked_connection_parks_then_reconnect_drains(running_stack: Stack) -> None:
    """The merchant's authorisation is revoked at Xero: posting gets 401, the refresh gets
    invalid_grant → the connection is marked needs_reconnect and the commands are parked (not
    dead-lettered). Reconnecting re-drives them; each posts once."""
    stack = running_stack
    publish_fast(stack, [order(UK, n, customer=1) for n in range(3)])
    wait_until(lambda: bound(stack, UK) == 3, timeout=60)

    stack.fault({"revoke_tenant_tokens": org_id(stack, UK_ORG)})
    publish_fast(stack, [order(UK, n, customer=1) for n in range(3, 8)])
    wait_until(lambda: len(stack.parked(UK)) == 5, timeout=60)
    assert {p["waiting_for"] for p in stack.parked(UK)} == {"reconnect"}
    assert stack.connection(UK)["status"] == "needs_reconnect"  # type: ignore[index]
    assert len(invoices(stack)) == 3

    stack.connect(UK, UK_ORG)
    wait_until(lambda: bound(stack, UK) == 8, timeout=60)
    wait_until(lambda: stack.parked(UK) == [], timeout=30)
    refs = Counter(d["Reference"] for d in invoices(stack))
    assert refs == Counter(f"Order {n}" for n in range(8))
    assert stack.connection(UK)["status"] == "active"  # type: ignore[index]
    assert stack.dead_letters(wait=1.0) == []


def test_worker_killed_mid_batch_restarts_without_duplicates(make_stack: Callable[[], Stack]) -> None:
    """The worker dies while Xero is creating a batch (the sandbox holds PUT /Invoices for 4 s,
    the worker is killed during it, the sandbox still creates the invoices). On restart the
    commands are read again; their pending intents make the connector find the invoices by
    Reference and bind them instead of creating them again.

    A short Kafka session timeout lets the restarted worker take over the dead one's partitions
    in seconds rather than after Faust's default 60 s."""
    fast_failover = {"BROKER_SESSION_TIMEOUT": "8", "BROKER_HEARTBEAT_INTERVAL": "1"}
    stack = build(make_stack, {UK: (uk_config(), UK_ORG)}, env=fast_failover)
    stack.fault({"delay_seconds": 4, "method": "PUT", "path_contains": "Invoices", "count": 1})
    publish_fast(stack, [order(UK, n, customer=1) for n in range(10)])

    [held] = wait_until(lambda: api_calls(stack, "PUT", "Invoices"), timeout=60, interval=0.1)
    assert stack.worker is not None
    stack.worker.kill()
    in_flight = len(held["body"]["Invoices"])
    wait_until(lambda: len(invoices(stack)) == in_flight, timeout=30)  # created in Xero ...
    assert bound(stack, UK) == 0  # ... but never bound: the answer was lost with the worker

    stack.start_worker()
    wait_until(lambda: bound(stack, UK) == 10, timeout=90)
    refs = Counter(d["Reference"] for d in invoices(stack))
    assert refs == Counter(f"Order {n}" for n in range(10))
    held_refs = {i["Reference"] for i in held["body"]["Invoices"]}
    later_puts = api_calls(stack, "PUT", "Invoices")[1:]
    assert not held_refs & {i["Reference"] for p in later_puts for i in p["body"]["Invoices"]}
    searches = [r for r in api_calls(stack, "GET", "Invoices") if "Reference" in r["query"].get("where", "")]
    assert searches, "the restarted worker should have searched Xero for its pending intents"
    bound_ids = _bound_ids(stack, UK)
    assert bound_ids == {d["InvoiceID"] for d in invoices(stack)}
    assert stack.dead_letters(wait=1.0) == []


def _bound_ids(stack: Stack, tenant: str) -> set[str]:
    with stack.sessions() as session:
        return set(
            session.scalars(
                select(Binding.external_id).where(
                    Binding.tenant_id == tenant, Binding.external_id.is_not(None)
                )
            )
        )
