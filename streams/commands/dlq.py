"""`ledgerstream dlq …`: the dead-letter inbox for SREs and scripts (the web page is for finance).

    ledgerstream dlq list --tenant acme-uk --reason ledger_rejected --status open
    ledgerstream dlq show 42
    ledgerstream dlq retry 42 43
    ledgerstream dlq retry --all --tenant acme-uk --reason ledger_rejected
    ledgerstream dlq discard 42 --reason "order cancelled in the shop"
    ledgerstream dlq user add alice --tenant acme-uk --role finance

Retries publish to Kafka (see `inbox.replay` for what is sent); every action is audited
under `--by` (default: $USER).
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from tqdm import tqdm

from inbox import explain
from inbox.service import Inbox, NotAllowed, summarize
from store import dead_letters as dl
from store import tenant_config, users
from store.db import open_database
from streams.commands.tenants import _database_option, _default_user, _kafka_options


def _topics():  # type: ignore[no-untyped-def]
    from streams.settings import settings
    from streams.topics import TopicNames

    return TopicNames(settings().topic_prefix)


def _filter_options(command: Any) -> Any:
    for name, help_ in reversed(
        (
            ("--tenant", "Only this tenant."),
            ("--ledger", "Only this ledger."),
            ("--reason", "Only this reason code."),
            ("--status", "open | retrying | resolved | discarded | all (default: open)."),
            ("--since", "Failed on or after this day (YYYY-MM-DD)."),
            ("--until", "Failed on or before this day (YYYY-MM-DD)."),
        )
    ):
        command = click.option(name, default=None, help=help_)(command)
    return command


def _day(value: str | None, end: bool = False) -> datetime | None:
    if not value:
        return None
    day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    return day + timedelta(days=1) if end else day


def _filters(tenant, ledger, reason, status, since, until) -> dl.Filters:  # type: ignore[no-untyped-def]
    status = status or "open"
    if status not in (*dl.STATUSES, "all"):
        raise click.BadParameter(f"unknown status {status!r}", param_hint="--status")
    return dl.Filters(
        tenant=tenant,
        ledger=ledger,
        reason=reason,
        status=None if status == "all" else status,
        since=_day(since),
        until=_day(until, end=True),
    )


async def _with_producer(bootstrap: str, timeout: float, work):  # type: ignore[no-untyped-def]
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=int(timeout * 1000),
    )
    await asyncio.wait_for(producer.start(), timeout)
    try:

        async def publish(topic: str, key: bytes, value: bytes) -> None:
            await asyncio.wait_for(producer.send_and_wait(topic, value=value, key=key), timeout)

        return await work(publish)
    finally:
        await producer.stop()


@click.group()
def dlq() -> None:
    """The dead-letter inbox: list, show, retry and discard failed postings; inbox users."""


@dlq.command("list")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@click.option("--limit", default=200, show_default=True)
@_database_option
def list_(tenant, ledger, reason, status, since, until, as_json, limit, database_url) -> None:  # type: ignore[no-untyped-def]
    """Items matching the filters, newest first, with counts per reason."""
    filters = _filters(tenant, ledger, reason, status, since, until)
    with open_database(database_url)() as s:
        items = dl.search(s, filters, limit=limit)
        counts = dl.counts_by_reason(s, filters)
    if as_json:
        for item in items:
            click.echo(json.dumps(dl.to_json(item)))
        return
    for item in items:
        message = (item.ledger_messages[0] if item.ledger_messages else item.reason)[:70]
        click.echo(
            f"{item.id:>6}  {item.last_failed_at:%Y-%m-%d %H:%M}  {item.tenant_id or '-':<12} "
            f"{item.reason_code:<18} {item.status:<9} {item.order_id or '-':<10} {message}"
        )
    click.echo("counts: " + (", ".join(f"{k}={v}" for k, v in counts.items()) or "none"))


@dlq.command()
@click.argument("item_id", type=int)
@_database_option
def show(item_id: int, database_url: str) -> None:
    """One item: the ledger's message in plain words, the suggested fix, the record, the history."""
    with open_database(database_url)() as s:
        item = dl.get(s, item_id)
        if item is None:
            raise click.ClickException(f"no item {item_id}")
        config = tenant_config.current(s, item.tenant_id) if item.tenant_id else None
        history = dl.history(s, item_id=item_id)
    explanation = explain.explain(item.letter(), config)
    click.echo(json.dumps(dl.to_json(item), indent=2))
    click.echo(f"\n{explanation.headline}")
    for finding in explanation.findings:
        click.echo(f"  {finding.plain}")
    for fix in explanation.fixes:
        click.echo(f"  fix: {fix}")
    click.echo("\nhistory:")
    for entry in history:
        click.echo(
            f"  {entry.at:%Y-%m-%d %H:%M:%S}  {entry.actor:<12} {entry.action:<14} {entry.detail or ''}"
        )


@dlq.command()
@click.argument("item_ids", type=int, nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every open item matching the filters.")
@_filter_options
@click.option("--by", "actor", default=_default_user, help="Who retries (default: $USER).")
@_database_option
@_kafka_options
def retry(
    item_ids,
    all_,
    tenant,
    ledger,
    reason,
    status,
    since,
    until,
    actor,
    database_url,  # type: ignore[no-untyped-def]
    bootstrap_servers,
    kafka_timeout,
) -> None:
    """Re-post ITEM_IDS (or --all matching the filters). Never posts a document twice."""
    if bool(item_ids) == all_:
        raise click.UsageError("give item ids or --all (with filters), not both")
    sessions = open_database(database_url)
    names = _topics()

    async def work(publish):  # type: ignore[no-untyped-def]
        inbox = Inbox(sessions, publish, names)
        ids = list(item_ids) or inbox.matching_ids(_filters(tenant, ledger, reason, status, since, until))
        outcomes = []
        with tqdm(total=len(ids), unit="item", desc="retry", disable=len(ids) < 2) as bar:
            for item_id in ids:
                try:
                    outcomes.append(await inbox.retry(item_id, actor, None))
                except NotAllowed:
                    click.echo(f"no item {item_id}", err=True)
                bar.update(1)
        return outcomes

    outcomes = asyncio.run(_with_producer(bootstrap_servers, kafka_timeout, work))
    for outcome in outcomes:
        click.echo(f"{outcome.item_id:>6}  {outcome.action:<9} {outcome.note}")
    click.echo("retried: " + (", ".join(f"{k}={v}" for k, v in summarize(outcomes).items()) or "nothing"))
    if any(o.action == "failed" for o in outcomes):
        raise SystemExit(1)


@dlq.command()
@click.argument("item_ids", type=int, nargs=-1, required=True)
@click.option("--reason", required=True, help="Why it should not be posted (kept in the history).")
@click.option("--by", "actor", default=_default_user, help="Who discards (default: $USER).")
@_database_option
def discard(item_ids, reason, actor, database_url) -> None:  # type: ignore[no-untyped-def]
    """Close ITEM_IDS without posting them."""
    inbox = Inbox(open_database(database_url), _unused_publish, _topics())
    for item_id in item_ids:
        try:
            inbox.discard(item_id, actor, reason, None)
        except (NotAllowed, ValueError) as exc:
            raise click.ClickException(f"item {item_id}: {exc}") from exc
        click.echo(f"{item_id} discarded")


async def _unused_publish(topic: str, key: bytes, value: bytes) -> None:
    raise RuntimeError("discard publishes nothing")


@dlq.group()
def user() -> None:
    """Inbox users (finance: their tenants only; admin: all)."""


@user.command("add")
@click.argument("name")
@click.option("--tenant", "tenants", multiple=True, help="A tenant this user may see (repeat).")
@click.option("--role", type=click.Choice(users.ROLES), default="finance", show_default=True)
@click.option(
    "--password",
    envvar="LEDGERSTREAM_NEW_PASSWORD",
    default=None,
    help="Default: prompted (or env LEDGERSTREAM_NEW_PASSWORD).",
)
@_database_option
def user_add(name, tenants, role, password, database_url) -> None:  # type: ignore[no-untyped-def]
    """Create NAME (or set a new password, role and tenants)."""
    if password is None:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with open_database(database_url).begin() as s:
            users.add(s, name, password, role, tenants)
            dl.audit(
                s,
                os.environ.get("USER") or "cli",
                "user_added",
                detail=f"{name} ({role}: {','.join(tenants)})",
            )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {name} ({role}{': ' + ', '.join(tenants) if tenants else ''}) saved")
