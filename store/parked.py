"""Parked posting commands: waiting for a reconnect, a quota reset, the invoice they need,
or simply a retry (`RETRY`: a batch interrupted by a shutdown, a dead letter that could not
be sent; re-published when `not_before` has passed, at once when it is None).

A parked command is re-published to its command topic when what it waits for is there;
replays are safe because connectors check the binding before any create.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from store.base import Base, UTCDateTime, utcnow

RECONNECT = "reconnect"
DAY_LIMIT = "day_limit"
BINDING = "binding"
RETRY = "retry"


class ParkedCommand(Base):
    __tablename__ = "parked_commands"

    idempotency_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), index=True)
    ledger: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    waiting_for: Mapped[str] = mapped_column(String(32), doc="reconnect | day_limit | binding | retry")
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


@dataclass(frozen=True)
class Claimed:
    """A parked row taken out of the table by `claim()`: what `restore()` needs to put it back."""

    idempotency_key: str
    tenant_id: str
    ledger: str
    kind: str
    waiting_for: str
    depends_on: str | None
    not_before: datetime | None
    reason: str
    command: bytes
    times_parked: int
    parked_at: datetime


def claim(session: Session, rows: Sequence[ParkedCommand]) -> list[Claimed]:
    """Delete `rows` (loaded in this session) and return their content; the caller commits.

    Used by the redrive: the rows leave the table in the same transaction that chose them, so
    a command parked again after it was re-published is a new row that nothing deletes.
    """
    out = [
        Claimed(
            idempotency_key=r.idempotency_key,
            tenant_id=r.tenant_id,
            ledger=r.ledger,
            kind=r.kind,
            waiting_for=r.waiting_for,
            depends_on=r.depends_on,
            not_before=r.not_before,
            reason=r.reason,
            command=bytes(r.command),
            times_parked=r.times_parked,
            parked_at=r.parked_at,
        )
        for r in rows
    ]
    if out:
        session.execute(
            delete(ParkedCommand)
            .where(ParkedCommand.idempotency_key.in_([c.idempotency_key for c in out]))
            .execution_options(synchronize_session=False)
        )
        for r in rows:
            session.expunge(r)
    return out


def restore(session: Session, rows: Iterable[Claimed]) -> None:
    """Put claimed rows back (a re-publish failed); a row parked again meanwhile is kept as is."""
    for c in rows:
        if session.get(ParkedCommand, c.idempotency_key) is not None:
            continue
        session.add(
            ParkedCommand(
                idempotency_key=c.idempotency_key,
                tenant_id=c.tenant_id,
                ledger=c.ledger,
                kind=c.kind,
                waiting_for=c.waiting_for,
                depends_on=c.depends_on,
                not_before=c.not_before,
                reason=c.reason,
                command=c.command,
                times_parked=c.times_parked,
                parked_at=c.parked_at,
            )
        )


def counts(session: Session) -> dict[tuple[str, str], int]:
    stmt = select(ParkedCommand.ledger, ParkedCommand.waiting_for, func.count()).group_by(
        ParkedCommand.ledger, ParkedCommand.waiting_for
    )
    return {(ledger, why): n for ledger, why, n in session.execute(stmt)}
