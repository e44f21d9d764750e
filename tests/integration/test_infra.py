"""The shared fixtures reach a real Kafka broker and a real PostgreSQL server."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.integration


async def test_kafka_roundtrip_on_a_fresh_topic(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}infra"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=30_000)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"hello", key=b"order-1")  # auto-creates
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        received = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()

    assert (received.topic, received.key, received.value) == (topic, b"order-1", b"hello")


def test_topic_prefix_is_fresh_per_test(topic_prefix: str) -> None:
    assert topic_prefix.startswith("t-") and topic_prefix.endswith(".")
    assert len(topic_prefix) == len("t-12345678.")


def _current_database(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
            return conn.execute(text("select current_database()")).scalar_one()
    finally:
        engine.dispose()


def test_fresh_database_url_connects(fresh_database_url: str) -> None:
    assert fresh_database_url.startswith("postgresql+psycopg://")
    assert _current_database(fresh_database_url).startswith("t_")


def test_each_fresh_database_is_a_different_one(make_fresh_database) -> None:
    first, second = make_fresh_database(), make_fresh_database()
    assert first != second
    assert _current_database(first) != _current_database(second)
