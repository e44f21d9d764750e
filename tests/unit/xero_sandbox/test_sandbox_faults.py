"""Fault switches and the admin API."""

from __future__ import annotations

import time

from tests.unit.xero_sandbox.sandbox_driver import UK, invoice


async def test_status_fault_fires_count_times(sandbox):
    await sandbox.admin("POST", "faults", {"status": 503, "count": 2})
    assert [(await sandbox.api("GET", "Accounts"))[0] for _ in range(3)] == [503, 503, 200]


async def test_rate_limit_storm(sandbox):
    await sandbox.admin("POST", "faults", {"rate_limit": "minute", "count": 2, "retry_after": 7})
    status, _, headers = await sandbox.api("GET", "Accounts")
    assert status == 429 and headers["X-Rate-Limit-Problem"] == "minute"
    assert headers["Retry-After"] == "7" and "X-MinLimit-Remaining" in headers


async def test_delay_fault(sandbox):
    await sandbox.admin("POST", "faults", {"delay_seconds": 0.2, "count": 1})
    started = time.monotonic()
    assert (await sandbox.api("GET", "Accounts"))[0] == 200
    assert time.monotonic() - started >= 0.2


async def test_apply_then_fail_stores_the_document_but_loses_the_answer(sandbox):
    await sandbox.admin("POST", "faults", {"apply_then_fail": {"status": 500, "count": 1}})
    key = {"Idempotency-Key": "order-42"}
    status, _, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}, headers=key)
    assert status == 500
    assert len(sandbox.state.orgs[UK].invoices) == 1
    status, body, _ = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}, headers=key)
    assert status == 200 and len(sandbox.state.orgs[UK].invoices) == 1
    assert body["Invoices"][0]["InvoiceID"] in sandbox.state.orgs[UK].invoices
    # without a key, a blind retry duplicates the invoice
    await sandbox.admin("POST", "faults", {"apply_then_fail": {"status": 504, "count": 1}})
    assert (await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}))[0] == 504
    assert (await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}))[0] == 200
    assert len(sandbox.state.orgs[UK].invoices) == 3


async def test_fault_filters_and_clear(sandbox):
    await sandbox.admin(
        "POST", "faults", {"status": 502, "count": 5, "method": "PUT", "path_contains": "/Invoices"}
    )
    assert (await sandbox.api("GET", "Invoices"))[0] == 200
    assert (await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}))[0] == 502
    assert (await sandbox.admin("GET", "faults"))["armed"][0]["count"] == 4
    await sandbox.admin("DELETE", "faults")
    assert (await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}))[0] == 200


async def test_token_endpoint_apply_then_fail_uses_the_grace_period(sandbox):
    tokens = await sandbox.connect()
    await sandbox.admin("POST", "faults", {"target": "token", "apply_then_fail": {"status": 500, "count": 1}})
    status, _ = await sandbox.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert status == 500
    status, _ = await sandbox.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert status == 200


async def test_state_dump_log_and_reset(sandbox):
    await sandbox.api(
        "PUT",
        "Invoices",
        json={"Invoices": [invoice(Reference="r-1")]},
        headers={"Idempotency-Key": "dump-1"},
    )
    dump = await sandbox.admin("GET", "state")
    assert dump["api_calls"][UK] == 1
    assert dump["orgs"][UK]["invoices"][0]["Reference"] == "r-1"
    entry = dump["requests"][-1]
    assert entry["method"] == "PUT" and entry["path"] == "/api.xro/2.0/Invoices"
    assert entry["body"]["Invoices"][0]["Reference"] == "r-1" and entry["status"] == 200
    assert "Authorization" not in entry["headers"]
    assert entry["headers"]["Idempotency-Key"] == "dump-1"
    await sandbox.admin("POST", "reset")
    dump = await sandbox.admin("GET", "state?log=false")
    assert dump["orgs"][UK]["invoices"] == [] and "requests" not in dump
    assert (await sandbox.api("GET", "Invoices"))[0] == 401


async def test_unknown_api_path_answers_json(sandbox):
    status, body, _ = await sandbox.api("GET", "Nothing")
    assert status == 404 and body["Status"] == 404
    resp = await sandbox.http.put(
        "/api.xro/2.0/Invoices",
        data=b"{not json",
        headers={"Authorization": f"Bearer {sandbox.bearer}", "xero-tenant-id": UK},
    )
    assert resp.status == 400 and (await resp.json())["Type"] == "PostDataInvalidException"
