"""Retrying one item twice at the same time publishes its command once."""

from __future__ import annotations

import asyncio

import pytest
from inbox_helpers import invoice, rejected

from inbox.service import Inbox
from store import dead_letters as dl
from store import tenant_config
from streams.topics import TopicNames


@pytest.fixture
def item_id(sessions, acme) -> int:
    with sessions.begin() as s:
        tenant_config.apply(s, acme, "test")
        item, _ = dl.upsert(s, rejected(invoice("1001")))
        return item.id


def slow_publisher(published: list[bytes]):
    async def publish(topic: str, key: bytes, value: bytes) -> None:
        await asyncio.sleep(0.05)  # the broker's round trip: the other retry runs meanwhile
        published.append(value)

    return publish


async def test_two_concurrent_retries_publish_once(sessions, item_id) -> None:
    published: list[bytes] = []
    inbox = Inbox(sessions, slow_publisher(published), TopicNames("t."))
    first, second = await asyncio.gather(
        inbox.retry(item_id, "alice", None), inbox.retry(item_id, "bob", None)
    )
    assert len(published) == 1
    assert sorted([first.action, second.action]) == ["published", "refused"]
    refused = first if first.action == "refused" else second
    assert "already being retried" in refused.note
    with sessions() as s:
        item = dl.get(s, item_id)
        assert item.status == "retrying" and item.retries == 1
        assert [e.action for e in dl.history(s, item_id=item_id)].count("retry") == 1


async def test_many_concurrent_retries_and_retry_all_publish_once(sessions, item_id) -> None:
    published: list[bytes] = []
    inbox = Inbox(sessions, slow_publisher(published), TopicNames("t."))
    outcomes = await asyncio.gather(
        *(inbox.retry(item_id, f"user{i}", None) for i in range(5)),
        inbox.retry_matching(dl.Filters(status="retrying"), "carol"),
    )
    assert len(published) == 1
    singles = outcomes[:5]
    assert [o.action for o in singles].count("published") == 1


async def test_retrying_an_item_already_retrying_is_refused(sessions, item_id) -> None:
    published: list[bytes] = []
    inbox = Inbox(sessions, slow_publisher(published), TopicNames("t."))
    assert (await inbox.retry(item_id, "alice", None)).action == "published"
    again = await inbox.retry(item_id, "alice", None)
    assert again.action == "refused"
    assert again.note.startswith("already being retried since ")
    bulk = await inbox.retry_matching(dl.Filters(status="retrying"), "alice")
    assert [o.action for o in bulk] == ["refused"]
    assert len(published) == 1


async def test_a_new_failure_reopens_the_item_for_another_retry(sessions, item_id) -> None:
    published: list[bytes] = []
    inbox = Inbox(sessions, slow_publisher(published), TopicNames("t."))
    await inbox.retry(item_id, "alice", None)
    with sessions.begin() as s:
        dl.upsert(s, rejected(invoice("1001")), position="t.ledger.dead-letter:0:7")
    assert (await inbox.retry(item_id, "alice", None)).action == "published"
    assert len(published) == 2


async def test_a_failed_publish_releases_the_item(sessions, item_id) -> None:
    async def down(topic: str, key: bytes, value: bytes) -> None:
        raise ConnectionError("broker down")

    inbox = Inbox(sessions, down, TopicNames("t."))
    assert (await inbox.retry(item_id, "alice", None)).action == "failed"
    with sessions() as s:
        assert dl.get(s, item_id).status == "open"
    published: list[bytes] = []
    inbox = Inbox(sessions, slow_publisher(published), TopicNames("t."))
    assert (await inbox.retry(item_id, "alice", None)).action == "published"
