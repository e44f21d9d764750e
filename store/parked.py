"""Parked posting commands: waiting for a reconnect, a quota reset, or the invoice they need.

A parked command is re-published to its command topic when what it waits for is there;
replays are safe because connectors check the binding before any create.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from store.base import Base, UTCDateTime, utcnow

RECONNECT = "reconnect"
DAY_LIMIT = "day_limit"
BINDING = "binding"


class ParkedCommand(Base):
    __tablename__ = "parked_commands"

    idempotency_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), index=True)
    ledger: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    waiting_for: Mapped[str] = mapped_column(String(32), doc="reconnect | day_limit | binding")
    depends_on: Mapped[str | None] = mapped_column(String(255), nullable=True, doc="source id it needs")
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(String(1000))
    command: Mapped[bytes] = mapped_column(LargeBinary)
    times_parked: Mapped[int] = mapped_column(Integer, default=1)
    parked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def park(
    session: Session,
    *,
    idempotency_key: str,
    tenant_id: str,
    ledger: str,
    kind: str,
    waiting_for: str,
    reason: str,
    command: bytes,
    depends_on: str | None = None,
    not_before: datetime | None = None,
) -> None:
    """Park (or re-park) one command; the same key is kept once."""
    row = session.get(ParkedCommand, idempotency_key)
    if row is None:
        session.add(
            ParkedCommand(
                idempotency_key=idempotency_key,
                tenant_id=tenant_id,
                ledger=ledger,
                kind=kind,
                waiting_for=waiting_for,
                depends_on=depends_on,
                not_before=not_before,
                reason=reason[:1000],
                command=command,
            )
        )
        return
    row.waiting_for, row.depends_on, row.not_before = waiting_for, depends_on, not_before
    row.reason = reason[:1000]
    row.times_parked += 1


def waiting(session: Session, ledger: str) -> list[ParkedCommand]:
    stmt = select(ParkedCommand).where(ParkedCommand.ledger == ledger).order_by(ParkedCommand.parked_at)
    return list(session.scalars(stmt))


def release(session: Session, keys: Iterable[str]) -> None:
    keys = list(keys)
    if keys:
        session.execute(delete(ParkedCommand).where(ParkedCommand.idempotency_key.in_(keys)))


def counts(session: Session) -> dict[tuple[str, str], int]:
    stmt = select(ParkedCommand.ledger, ParkedCommand.waiting_for, func.count()).group_by(
        ParkedCommand.ledger, ParkedCommand.waiting_for
    )
    return {(ledger, why): n for ledger, why, n in session.execute(stmt)}
