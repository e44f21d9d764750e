"""The dead-letter store agent at shutdown: a record it could not store yet is handed back to
the dead-letter topic (its original bytes) before the cancellation goes on, never dropped."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inbox"))
from inbox_helpers import invoice, rejected

from agents.dead_letter_store import persist

RAW = b'{"the": "original bytes"}'


def letter():
    return rejected(invoice("1001"))


def down(letter, position):  # the database is unavailable
    raise OperationalError("INSERT", {}, Exception("connection refused"))


class FakeSend:
    def __init__(self, delay: float = 0.0) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.delay = delay

    async def __call__(self, topic: str, key: bytes | None, value: bytes) -> None:
        await asyncio.sleep(self.delay)
        self.sent.append((topic, key, value))


async def test_cancelled_while_waiting_out_an_outage_republishes_the_original() -> None:
    waiting = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waiting.set()
        await asyncio.sleep(3600)

    send = FakeSend(delay=0.05)  # the broker's round trip: the cancellation must not cut it short
    task = asyncio.create_task(
        persist(
            letter(), "dlq:0:7", sleep=sleep, store=down, original=RAW, key=b"acme-uk", send=send, topic="dlq"
        )
    )
    await asyncio.wait_for(waiting.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert send.sent == [("dlq", b"acme-uk", RAW)]


async def test_cancelled_during_a_write_that_fails_republishes() -> None:
    started, release = threading.Event(), threading.Event()

    def slow_down(letter, position):
        started.set()
        release.wait(5)
        down(letter, position)

    send = FakeSend()
    task = asyncio.create_task(
        persist(letter(), "dlq:0:7", store=slow_down, original=RAW, key=b"k", send=send, topic="dlq")
    )
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert send.sent == [("dlq", b"k", RAW)]


async def test_cancelled_during_a_write_that_commits_sends_nothing() -> None:
    started, release = threading.Event(), threading.Event()
    stored = []

    def slow_ok(letter, position):
        started.set()
        release.wait(5)
        stored.append(position)

    send = FakeSend()
    task = asyncio.create_task(
        persist(letter(), "dlq:0:7", store=slow_ok, original=RAW, key=b"k", send=send, topic="dlq")
    )
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stored == ["dlq:0:7"] and send.sent == []  # stored: a copy would count a second failure


async def test_a_normal_outage_still_just_waits_and_stores() -> None:
    calls = []

    def flaky(letter, position):
        calls.append(position)
        if len(calls) < 3:
            down(letter, position)

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    send = FakeSend()
    await persist(letter(), "dlq:0:1", sleep=sleep, store=flaky, original=RAW, send=send, topic="dlq")
    assert calls == ["dlq:0:1"] * 3 and send.sent == []
