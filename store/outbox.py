"""Transactional outbox: write Kafka messages in the same database transaction as the state.

A writer calls `enqueue()` inside its transaction; `publish_pending()` (the CLI right
after an apply, and the worker on a timer) sends unpublished rows in id order and
marks them published. A crash between send and mark re-sends the row: delivery is
at-least-once, and consumers are idempotent by key and version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from store.base import Base, UTCDateTime, utcnow

Send = Callable[[str, bytes, bytes], Awaitable[None]]
"""`await send(topic, key, value)`: returns once the broker has the message, raises otherwise."""


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_published_at_id", "published_at", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    topic: Mapped[str] = mapped_column(String(255))
    key: Mapped[bytes] = mapped_column(LargeBinary)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def enqueue(session: Session, topic: str, key: bytes, value: bytes) -> OutboxMessage:
    """Add a message to the outbox; it is sent only if the caller's transaction commits."""
    message = OutboxMessage(topic=topic, key=key, value=value)
    session.add(message)
    return message


def pending_count(session: Session) -> int:
    query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None))
    return session.scalar(query) or 0


async def publish_pending(sessions: sessionmaker[Session], send: Send, *, batch_size: int = 100) -> int:
    """Send every unpublished row in id order, marking each published; returns how many were sent.

    Each batch is one transaction whose rows are locked (`FOR UPDATE` on PostgreSQL), so two
    relays never interleave and per-key order is kept. If `send` raises, the rows sent before
    it stay marked, the error propagates, and the next call resumes at the failed row.
    The database calls are synchronous (short, indexed); only `send` is awaited.
    """
    sent = 0
    while True:
        with sessions() as session:
            rows = session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.published_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(batch_size)
                .with_for_update()
            ).all()
            try:
                for row in rows:
                    await send(row.topic, row.key, row.value)
                    row.published_at = utcnow()
                    sent += 1
            finally:
                session.commit()  # keep the marks of rows already sent, even when send raised
        if len(rows) < batch_size:
            return sent
