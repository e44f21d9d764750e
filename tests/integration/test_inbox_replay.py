"""The inbox story through the real broker, PostgreSQL, a worker and the Xero sandbox.

20 invoices fail: 5 reached Xero but their answers were lost (retries exhausted), then the
organisation archived OUTPUT2 and 15 more were refused for it. 20 inbox items. Finance fixes
the tenant's tax mapping (OUTPUT2 → TAX001, the same 20 %) and retries all matching through
the API: 20 invoices in the sandbox, one per order, none twice; every item resolved.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from test_pipeline import fulfilled

from schemas.tenant import TenantConfig
from store import dead_letters as dl
from store import tenant_config
from streams.devstack import Stack, wait_until

TENANT = "acme-uk"
API_TOKEN = "inbox-it-token"


@pytest.fixture
def inbox_stack(make_stack: Callable[[], Stack], acme_config: TenantConfig) -> Stack:
    stack = make_stack()
    base_env = stack.env
    stack.env = lambda: {  # type: ignore[method-assign]
        **base_env(),
        "LEDGERSTREAM_MAX_ATTEMPTS": "2",
        "LEDGERSTREAM_INBOX_INTERVAL": "1",
        "LEDGERSTREAM_API_TOKEN": API_TOKEN,
        "LEDGERSTREAM_SESSION_SECRET": "it-secret",
    }
    stack.start_sandbox()
    version = stack.apply_config(acme_config)
    stack.connect(TENANT, "Demo UK Ltd")
    stack.start_worker()
    stack.sync_config(TENANT, version)
    return stack


def items(stack: Stack, **kw: str) -> list[dl.DeadLetterItem]:
    with stack.sessions() as s:
        return dl.search(s, dl.Filters(tenant=TENANT, **kw), limit=None)


def invoices(stack: Stack) -> list[dict]:
    return stack.org("Demo UK Ltd")["invoices"]


def org_id(stack: Stack) -> str:
    return next(k for k, o in stack.sandbox_state()["orgs"].items() if o["name"] == "Demo UK Ltd")


def orders(first: int, count: int) -> list[tuple[str, bytes]]:
    out = []
    for n in range(first, first + count):
        event = fulfilled(f"o-{n}", str(n), "GB", "30.00")
        out.append((event["order_id"], json.dumps(event).encode()))
    return out


def test_fix_the_mapping_then_retry_all_posts_each_invoice_once(inbox_stack: Stack) -> None:
    stack = inbox_stack
    # 1. Five invoices reach Xero but every answer is lost: created, then 500; the recovery
    #    search fails too, so after 2 attempts they are dead-lettered (retries_exhausted).
    stack.fault(
        {"apply_then_fail": {"count": 5, "status": 500}, "method": "PUT", "path_contains": "Invoices"}
    )
    stack.fault({"status": 500, "count": 50, "method": "GET", "path_contains": "Invoices"})
    stack.publish(orders(3000, 5))
    wait_until(lambda: len(items(stack, reason="retries_exhausted")) == 5, timeout=90)
    httpx.delete(f"{stack.sandbox_url}/__sandbox/faults", timeout=10).raise_for_status()
    assert len(invoices(stack)) == 5  # they did reach the ledger

    # 2. The organisation archives OUTPUT2 (adds TAX001 at 20 %); 15 more are refused for it.
    rates = f"{stack.sandbox_url}/__sandbox/orgs/{org_id(stack)}/taxrates"
    httpx.post(rates, json={"TaxType": "OUTPUT2", "Status": "DELETED"}, timeout=10).raise_for_status()
    httpx.post(
        rates,
        json={"TaxType": "TAX001", "Name": "20% VAT (2026)", "Rate": 20, "Status": "ACTIVE"},
        timeout=10,
    ).raise_for_status()
    stack.publish(orders(3100, 15))
    wait_until(lambda: len(items(stack, reason="ledger_rejected")) == 15, timeout=90)
    open_items = items(stack, status="open")
    assert len(open_items) == 20
    rejected = [i for i in open_items if i.reason_code == "ledger_rejected"]
    assert all("OUTPUT2" in i.ledger_messages[0] and "not active" in i.ledger_messages[0] for i in rejected)
    assert len(invoices(stack)) == 5

    # 3. Finance fixes the mapping (what the inbox's editor does), the worker loads it.
    with stack.sessions() as s:
        text = tenant_config.to_yaml(tenant_config.current(s, TENANT))
    fixed = tenant_config.load_yaml(text.replace("code: OUTPUT2", "code: TAX001"))
    version = stack.apply_config(fixed)
    stack.sync_config(TENANT, version)

    # 4. Retry all matching, through the worker's API.
    answer = httpx.post(
        f"http://127.0.0.1:{stack.web_port}/api/dlq/retry",
        json={"tenant": TENANT},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"] == {"published": 20}

    # 5. Every item resolved; 20 invoices, one per order; the 15 carry the new code.
    wait_until(lambda: len(items(stack, status="resolved")) == 20, timeout=120)
    posted = invoices(stack)
    references = Counter(inv["Reference"] for inv in posted)
    assert len(posted) == 20, references
    assert all(n == 1 for n in references.values()), references
    assert set(references) == {f"Order {n}" for n in [*range(3000, 3005), *range(3100, 3115)]}
    taxes = {inv["Reference"]: {li["TaxType"] for li in inv["LineItems"]} for inv in posted}
    assert all(taxes[f"Order {n}"] == {"TAX001"} for n in range(3100, 3115))
    assert all(taxes[f"Order {n}"] == {"OUTPUT2"} for n in range(3000, 3005))  # created before, bound now
    assert items(stack, status="open") == []


def test_retrying_without_a_fix_returns_the_item_with_the_new_error(inbox_stack: Stack) -> None:
    stack = inbox_stack
    rates = f"{stack.sandbox_url}/__sandbox/orgs/{org_id(stack)}/taxrates"
    httpx.post(rates, json={"TaxType": "OUTPUT2", "Status": "DELETED"}, timeout=10).raise_for_status()
    stack.publish(orders(4000, 1))
    [item] = wait_until(lambda: items(stack, reason="ledger_rejected"), timeout=90)
    answer = httpx.post(
        f"http://127.0.0.1:{stack.web_port}/api/dlq/items/{item.id}/retry",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=60,
    )
    assert answer.json()["action"] == "published"
    [again] = wait_until(lambda: [i for i in items(stack) if i.failures == 2], timeout=90)
    assert (again.id, again.status) == (item.id, "open")
    assert again.attempts == item.attempts + 1
    assert len(items(stack)) == 1
    assert invoices(stack) == []
