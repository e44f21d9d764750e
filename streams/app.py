"""The Faust app: topics, tables and the web server every agent shares."""

from __future__ import annotations

import faust
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.settings import settings
from streams.topics import TopicNames

conf = settings()
names = TopicNames(conf.topic_prefix)

app = faust.App(
    conf.app_id,
    broker=f"kafka://{conf.kafka_bootstrap_servers.replace(',', ';kafka://')}",
    store="memory://",
    datadir=conf.data_dir,
    topic_partitions=conf.partitions,
    topic_replication_factor=1,
    web_host=conf.web_host,
    web_port=conf.web_port,
    web_bind=conf.web_host,
    autodiscover=False,
    consumer_auto_offset_reset="earliest",
)

registry = CollectorRegistry()
metrics = Metrics(registry)


def _raw_topic(name: str, *, partitions: int | None = None, compacting: bool = False) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions or conf.partitions,
        compacting=compacting or None,
        internal=True,  # declared (created if missing) when the worker starts
    )


orders_topic = _raw_topic(names.orders)
dead_letter_topic = _raw_topic(names.dead_letter)
tenant_config_topic = _raw_topic(names.tenant_config, partitions=1, compacting=True)
summaries_topic = _raw_topic(names.summaries)
command_topics = {ledger: _raw_topic(names.commands(ledger)) for ledger in ("xero", "quickbooks", "moloni")}

# Order state (accounting.state.OrderState as JSON), co-partitioned with orders_topic.
order_state = app.Table("order-state", default=None, partitions=conf.partitions, key_type=str, value_type=str)

# Tenant config (schemas.tenant.TenantConfig as JSON) on every worker; fed from tenant_config_topic.
tenant_configs = app.GlobalTable(
    "tenant-config", default=None, partitions=1, recovery_buffer_size=1, key_type=str, value_type=str
)
