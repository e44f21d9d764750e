"""Idempotency-Key: replay within 6 minutes, key reuse rejected, expiry."""

from __future__ import annotations

from tests.unit.xero_sandbox.sandbox_driver import UK, invoice


async def test_same_key_and_body_replays_without_creating_again(sandbox):
    key = {"Idempotency-Key": "tenant-1:order-1:rev-1"}
    first = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}, headers=key)
    second = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}, headers=key)
    assert first[0] == second[0] == 200
    assert first[1] == second[1]
    assert second[2]["Idempotent-Replayed"] == "true"
    assert len(sandbox.state.orgs[UK].invoices) == 1


async def test_key_reused_for_a_different_request_is_400(sandbox):
    key = {"Idempotency-Key": "k-1"}
    await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}, headers=key)
    status, body, _ = await sandbox.api(
        "PUT", "Invoices", json={"Invoices": [invoice(Reference="other")]}, headers=key
    )
    assert status == 400 and body["Type"] == "ValidationException"
    status, _, _ = await sandbox.api("POST", "Invoices", json={"Invoices": [invoice()]}, headers=key)
    assert status == 400
    assert len(sandbox.state.orgs[UK].invoices) == 1


async def test_error_responses_are_cached_too(sandbox):
    key = {"Idempotency-Key": "k-err"}
    bad = {"Invoices": [invoice(CurrencyCode="JPY")]}
    assert (await sandbox.api("PUT", "Invoices", json=bad, headers=key))[0] == 400
    await sandbox.admin("POST", f"orgs/{UK}/taxrates", {"TaxType": "OUTPUT2", "Rate": 20})
    status, _, headers = await sandbox.api("PUT", "Invoices", json=bad, headers=key)
    assert status == 400 and headers["Idempotent-Replayed"] == "true"


async def test_key_expires_after_six_minutes(sandbox):
    key = {"Idempotency-Key": "k-2"}
    await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}, headers=key)
    await sandbox.admin("POST", "clock", {"advance_seconds": 361})
    await sandbox.connect()
    status, _, headers = await sandbox.api("PUT", "Invoices", json={"Invoices": [invoice()]}, headers=key)
    assert status == 200 and "Idempotent-Replayed" not in headers
    assert len(sandbox.state.orgs[UK].invoices) == 2


async def test_key_longer_than_128_is_rejected(sandbox):
    status, body, _ = await sandbox.api(
        "PUT", "Invoices", json={"Invoices": [invoice()]}, headers={"Idempotency-Key": "k" * 129}
    )
    assert status == 400 and "128" in body["Message"]
    assert not sandbox.state.orgs[UK].invoices
