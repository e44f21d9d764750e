"""Ledger connections: one row per (tenant, ledger) with its OAuth tokens, encrypted at rest.

Encryption
----------
Tokens are stored as Fernet tokens (`cryptography.fernet.MultiFernet`). The keys come from
the environment variable `LEDGERSTREAM_SECRET_KEYS`: a comma-separated list of Fernet keys
(`Fernet.generate_key()`). The first key encrypts; every key decrypts.

Key rotation:
1. generate a new key and *prepend* it: `LEDGERSTREAM_SECRET_KEYS=<new>,<old>`; deploy.
   New writes use the new key, old rows still decrypt with the old one.
2. run `rotate(session, cipher)` once (re-encrypts every row with the first key), commit.
3. drop the old key from the list; deploy.

Tokens never appear in `repr()` or logs: the model's `__repr__` leaves them out and
`TokenCipher` does not print its keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import (
    CheckConstraint,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from store.base import Base, UTCDateTime, utcnow

ConnectionStatus = Literal["active", "needs_reconnect", "disconnected"]
STATUSES: tuple[str, ...] = ("active", "needs_reconnect", "disconnected")


class SecretSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGERSTREAM_", extra="ignore")

    secret_keys: SecretStr = SecretStr("")


class TokenCipher:
    """Encrypts with the first key, decrypts with any (MultiFernet)."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        cleaned = [k.strip() if isinstance(k, str) else k for k in keys]
        cleaned = [k for k in cleaned if k]
        if not cleaned:
            raise ValueError("no secret keys configured (LEDGERSTREAM_SECRET_KEYS)")
        self._fernet = MultiFernet([Fernet(k) for k in cleaned])

    @classmethod
    def from_settings(cls, settings: SecretSettings | None = None) -> TokenCipher:
        settings = settings or SecretSettings()
        return cls(settings.secret_keys.get_secret_value().split(","))

    def __repr__(self) -> str:
        return "TokenCipher(keys=***)"

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(ciphertext)).decode()
        except InvalidToken as exc:
            raise ValueError("token cannot be decrypted with the configured keys") from exc

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt with the first (newest) key."""
        return self._fernet.rotate(bytes(ciphertext))


class LedgerConnection(Base):
    __tablename__ = "ledger_connections"
    __table_args__ = (
        UniqueConstraint("tenant_id", "ledger"),
        CheckConstraint("status IN ('active', 'needs_reconnect', 'disconnected')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    ledger: Mapped[str] = mapped_column(String(32))
    organisation_id: Mapped[str] = mapped_column(String(64), doc="Xero tenantId / QBO realmId")
    organisation_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    connection_id: Mapped[str | None] = mapped_column(
        String(64), nullable=True, doc="the ledger's id of this connection (Xero: DELETE /connections/{id})"
    )
    status: Mapped[str] = mapped_column(String(32), default="active")
    access_token_enc: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token_enc: Mapped[bytes] = mapped_column(LargeBinary)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    day_parked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:  # tokens deliberately left out
        return (
            f"LedgerConnection(tenant_id={self.tenant_id!r}, ledger={self.ledger!r}, "
            f"organisation_id={self.organisation_id!r}, status={self.status!r})"
        )

    def access_token(self, cipher: TokenCipher) -> str:
        return cipher.decrypt(self.access_token_enc)

    def refresh_token(self, cipher: TokenCipher) -> str:
        return cipher.decrypt(self.refresh_token_enc)

    def set_tokens(
        self, cipher: TokenCipher, *, access_token: str, refresh_token: str, access_expires_at: datetime
    ) -> None:
        self.access_token_enc = cipher.encrypt(access_token)
        self.refresh_token_enc = cipher.encrypt(refresh_token)
        self.access_expires_at = access_expires_at
        self.refreshed_at = utcnow()
        self.status = "active"
        self.last_error = None


def get(session: Session, tenant_id: str, ledger: str) -> LedgerConnection | None:
    return session.scalar(
        select(LedgerConnection).where(
            LedgerConnection.tenant_id == tenant_id, LedgerConnection.ledger == ledger
        )
    )


def lock(session: Session, tenant_id: str, ledger: str) -> LedgerConnection | None:
    """Read the row under a writer lock held until the session commits or rolls back.

    PostgreSQL: `SELECT ... FOR UPDATE` (row lock). SQLite has no row locks: `BEGIN IMMEDIATE`
    takes the database write lock, which serialises writers across processes (the engine's
    busy timeout makes the others wait). Call it first thing in a fresh session.
    """
    stmt = select(LedgerConnection).where(
        LedgerConnection.tenant_id == tenant_id, LedgerConnection.ledger == ledger
    )
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        row = session.scalar(stmt)
    else:
        row = session.scalar(stmt.with_for_update())
    if row is not None:
        session.refresh(row)  # the lock may have waited for another writer: re-read
    return row


def upsert(
    session: Session,
    cipher: TokenCipher,
    *,
    tenant_id: str,
    ledger: str,
    organisation_id: str,
    organisation_name: str | None,
    access_token: str,
    refresh_token: str,
    access_expires_at: datetime,
    connection_id: str | None = None,
) -> LedgerConnection:
    """Create or replace the connection of (tenant, ledger); the caller commits."""
    row = get(session, tenant_id, ledger)
    if row is None:
        row = LedgerConnection(tenant_id=tenant_id, ledger=ledger, organisation_id=organisation_id)
        session.add(row)
    row.organisation_id = organisation_id
    row.organisation_name = organisation_name
    row.connection_id = connection_id
    row.day_parked_until = None
    row.set_tokens(
        cipher, access_token=access_token, refresh_token=refresh_token, access_expires_at=access_expires_at
    )
    session.flush()
    return row


def mark(session: Session, row: LedgerConnection, status: ConnectionStatus, error: str | None = None) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    row.status = status
    row.last_error = error
    session.flush()


def idle(session: Session, ledger: str, older_than: datetime) -> list[LedgerConnection]:
    """Active connections whose refresh token was last rotated before `older_than`."""
    return list(
        session.scalars(
            select(LedgerConnection).where(
                LedgerConnection.ledger == ledger,
                LedgerConnection.status == "active",
                LedgerConnection.refreshed_at < older_than,
            )
        )
    )


def rotate(session: Session, cipher: TokenCipher) -> int:
    """Re-encrypt every stored token with the first key; returns the number of rows. Caller commits."""
    count = 0
    for row in session.scalars(select(LedgerConnection)):
        row.access_token_enc = cipher.rotate(row.access_token_enc)
        row.refresh_token_enc = cipher.rotate(row.refresh_token_enc)
        count += 1
    session.flush()
    return count


__all__ = [
    "STATUSES",
    "ConnectionStatus",
    "LedgerConnection",
    "SecretSettings",
    "TokenCipher",
    "get",
    "idle",
    "lock",
    "mark",
    "rotate",
    "upsert",
]
