"""publish_pending with a fake async send (the real Kafka path has its own integration test)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.outbox import OutboxMessage, enqueue, pending_count, publish_pending


class FakeSend:
    def __init__(self, fail_at: int | None = None) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail_at = fail_at

    async def __call__(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fail_at is not None and len(self.sent) == self.fail_at:
            raise ConnectionError("broker went away")
        self.sent.append((topic, key, value))


def _enqueue(sessions: sessionmaker[Session], n: int) -> None:
    with sessions.begin() as session:
        for i in range(n):
            enqueue(session, "tenant-config", f"t{i % 2}".encode(), f"v{i}".encode())


async def test_sends_in_id_order_marks_published_and_resends_nothing(sessions: sessionmaker[Session]) -> None:
    _enqueue(sessions, 5)
    send = FakeSend()
    assert await publish_pending(sessions, send, batch_size=2) == 5
    assert [value for _, _, value in send.sent] == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    assert send.sent[0] == ("tenant-config", b"t0", b"v0")
    with sessions() as session:
        assert pending_count(session) == 0
        assert all(row.published_at is not None for row in session.scalars(select(OutboxMessage)))
    assert await publish_pending(sessions, send) == 0
    assert len(send.sent) == 5


async def test_failure_keeps_earlier_marks_and_resumes_at_the_failed_row(
    sessions: sessionmaker[Session],
) -> None:
    _enqueue(sessions, 4)
    failing = FakeSend(fail_at=2)
    with pytest.raises(ConnectionError):
        await publish_pending(sessions, failing)
    with sessions() as session:
        assert pending_count(session) == 2
    retry = FakeSend()
    assert await publish_pending(sessions, retry) == 2
    assert [value for _, _, value in retry.sent] == [b"v2", b"v3"]


async def test_rolled_back_transaction_leaves_nothing_to_send(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        enqueue(session, "tenant-config", b"k", b"v")
        session.flush()
        session.rollback()
    send = FakeSend()
    assert await publish_pending(sessions, send) == 0
    assert send.sent == []
