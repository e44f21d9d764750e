"""Encrypted connections (at rest, rotation, repr) and bindings (record keeps the existing)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from store import bindings, connections
from store.base import utcnow

ACCESS = "access-token-SECRET-123"
REFRESH = "refresh-token-SECRET-456"


def store_one(sessions: Any, cipher: connections.TokenCipher) -> None:
    with sessions() as s:
        connections.upsert(
            s,
            cipher,
            tenant_id="t1",
            ledger="xero",
            organisation_id="org-1",
            organisation_name="Org",
            access_token=ACCESS,
            refresh_token=REFRESH,
            access_expires_at=utcnow() + timedelta(minutes=30),
        )
        s.commit()


def raw_columns(sessions: Any) -> bytes:
    with sessions() as s:
        row = s.execute(text("SELECT access_token_enc, refresh_token_enc FROM ledger_connections")).one()
    return bytes(row[0]) + bytes(row[1])


def test_tokens_encrypted_at_rest(sessions: Any, cipher: connections.TokenCipher) -> None:
    store_one(sessions, cipher)
    raw = raw_columns(sessions)
    assert ACCESS.encode() not in raw and REFRESH.encode() not in raw
    with sessions() as s:
        row = connections.get(s, "t1", "xero")
        assert row is not None
        assert (row.access_token(cipher), row.refresh_token(cipher)) == (ACCESS, REFRESH)
        assert ACCESS not in repr(row) and REFRESH not in repr(row)
        assert "org-1" in repr(row)


def test_key_rotation(sessions: Any) -> None:
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    old = connections.TokenCipher([old_key])
    store_one(sessions, old)
    before = raw_columns(sessions)
    both = connections.TokenCipher([new_key, old_key])  # step 1: prepend the new key
    with sessions() as s:
        assert connections.get(s, "t1", "xero").access_token(both) == ACCESS  # type: ignore[union-attr]
        assert connections.rotate(s, both) == 1  # step 2: re-encrypt
        s.commit()
    assert raw_columns(sessions) != before
    only_new = connections.TokenCipher([new_key])  # step 3: drop the old key
    with sessions() as s:
        row = connections.get(s, "t1", "xero")
        assert row is not None
        assert (row.access_token(only_new), row.refresh_token(only_new)) == (ACCESS, REFRESH)
        with pytest.raises(ValueError, match="cannot be decrypted"):
            row.access_token(old)


def test_cipher_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("LEDGERSTREAM_SECRET_KEYS", f"{k1}, {k2}")
    cipher = connections.TokenCipher.from_settings()
    assert connections.TokenCipher([k2]).decrypt(connections.TokenCipher([k2]).encrypt("x")) == "x"
    assert cipher.decrypt(connections.TokenCipher([k2]).encrypt("y")) == "y"  # any key decrypts
    assert connections.TokenCipher([k1]).decrypt(cipher.encrypt("z")) == "z"  # the first encrypts
    assert k1 not in repr(cipher)
    assert k1 not in repr(connections.SecretSettings())
    monkeypatch.setenv("LEDGERSTREAM_SECRET_KEYS", "")
    with pytest.raises(ValueError):
        connections.TokenCipher.from_settings()


def test_secrets_not_in_repr_or_logs(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    from connectors.xero.client import Auth
    from connectors.xero.oauth import TokenSet

    caplog.set_level(logging.DEBUG)
    assert "dev-secret" not in repr(settings) and "dev-secret" not in str(settings.model_dump())
    tokens = TokenSet(access_token=ACCESS, refresh_token=REFRESH, expires_at=utcnow(), id_token="idt")
    assert ACCESS not in repr(tokens) and REFRESH not in repr(tokens) and "idt" not in repr(tokens)
    assert ACCESS not in repr(Auth(ACCESS, "org"))


def test_bindings_record_keeps_existing(sessions: Any) -> None:
    with sessions() as s:
        assert bindings.get(s, "t1", "xero", "order:1") is None
        first = bindings.record(
            s,
            tenant_id="t1",
            ledger="xero",
            source_id="order:1",
            external_id="A",
            kind="invoice.create",
            idempotency_key="k1",
        )
        second = bindings.record(
            s,
            tenant_id="t1",
            ledger="xero",
            source_id="order:1",
            external_id="B",
            kind="invoice.create",
            idempotency_key="k2",
        )
        s.commit()
        assert first.external_id == second.external_id == "A"
        assert bindings.get(s, "t1", "xero", "order:1").idempotency_key == "k1"  # type: ignore[union-attr]


def test_bindings_intent_then_record_and_forget(sessions: Any) -> None:
    with sessions() as s:
        for sid in ("order:1", "order:2"):
            bindings.record_intent(
                s, tenant_id="t1", ledger="xero", source_id=sid, kind="invoice.create", idempotency_key=sid
            )
        s.commit()
        many = bindings.get_many(s, "t1", "xero", ["order:1", "order:2", "order:3"])
        assert set(many) == {"order:1", "order:2"} and not any(b.bound for b in many.values())
        bindings.record(
            s,
            tenant_id="t1",
            ledger="xero",
            source_id="order:1",
            external_id="X",
            kind="invoice.create",
            idempotency_key="order:1",
        )
        bindings.forget_intents(s, "t1", "xero", ["order:1", "order:2"])
        s.commit()
        many = bindings.get_many(s, "t1", "xero", ["order:1", "order:2"])
        assert list(many) == ["order:1"] and many["order:1"].external_id == "X"
        assert bindings.get_many(s, "t2", "xero", ["order:1"]) == {}
