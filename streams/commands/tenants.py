"""`ledgerstream tenants …`: apply, show, list and trace tenant configurations.

    ledgerstream tenants apply examples/tenants/acme-uk.yaml --by alice
    ledgerstream tenants apply examples/tenants/acme-uk.yaml --check-ledger
    ledgerstream tenants show acme-uk --format json --version 2
    ledgerstream tenants list
    ledgerstream tenants history acme-uk
    ledgerstream tenants publish

Every command migrates the database first. `apply` validates, prints the diff and
stores a new version together with its outbox message; then (unless `--no-publish`)
relays pending outbox messages to Kafka. Kafka being down is not an error: the
messages stay in the outbox and the worker publishes them.

Checking against the ledger: before anything is written, `apply` can read the tax rates
and chart of accounts of each ledger the config maps (through `connectors.registry`)
and reject a code the ledger does not have, has archived, or carries at another rate
(`store.tenant_config.ledger_problems`). Three modes, the same for the HTTP API's
`?check_ledger=`:

- default (auto): check every ledger of the config the tenant has an *active*
  connection to; ledgers not connected yet are skipped (a new tenant is configured
  before it connects). A connected ledger that cannot be read is an error.
- `--check-ledger`: every ledger of the config must be connected and readable.
- `--no-check-ledger`: no check (e.g. while a ledger is down).
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session, sessionmaker

from connectors.protocol import LedgerConnector
from schemas.tenant import TenantConfig
from store import connections, tenant_config
from store.db import open_database
from store.outbox import pending_count, publish_pending
from store.tenant_config import ConfigError, LedgerCatalogue, ledger_problems

DEFAULT_DATABASE_URL = "sqlite:///var/ledgerstream.db"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def _database_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--database-url",
        envvar="DATABASE_URL",
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        help="SQLAlchemy URL (env DATABASE_URL).",
    )(command)


def _kafka_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--bootstrap-servers",
        envvar="KAFKA_BOOTSTRAP_SERVERS",
        default=DEFAULT_BOOTSTRAP,
        show_default=True,
        help="Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS).",
    )(command)
    return click.option(
        "--kafka-timeout", default=10.0, show_default=True, help="Seconds to wait for Kafka."
    )(command)


def _config_topic() -> str:
    """The tenant-config topic, with the deployment's topic prefix (LEDGERSTREAM_TOPIC_PREFIX)."""
    from streams.settings import settings
    from streams.topics import TopicNames

    return TopicNames(settings().topic_prefix).tenant_config


def _default_user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except OSError:  # no user name in the environment or the password database
        return "unknown"


async def relay(sessions: sessionmaker[Session], bootstrap: str, timeout: float) -> int:
    """Send pending outbox messages to Kafka (acks=all, idempotent producer); returns how many."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        await asyncio.wait_for(producer.start(), timeout)

        async def send(topic: str, key: bytes, value: bytes) -> None:
            await asyncio.wait_for(producer.send_and_wait(topic, value=value, key=key), timeout)

        return await publish_pending(sessions, send)
    finally:
        await producer.stop()


def _publish(sessions: sessionmaker[Session], bootstrap: str, timeout: float) -> None:
    from aiokafka.errors import KafkaError

    kafka_log = logging.getLogger("aiokafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # our warning below says it once, clearly
    try:
        sent = asyncio.run(relay(sessions, bootstrap, timeout))
    except (KafkaError, OSError, TimeoutError) as exc:
        with sessions() as session:
            waiting = pending_count(session)
        reason = str(exc) or type(exc).__name__
        click.echo(
            f"warning: Kafka at {bootstrap} is unreachable ({reason}); {waiting} message(s) stay in "
            "the outbox and the worker will publish them (or run `ledgerstream tenants publish`).",
            err=True,
        )
        return
    finally:
        kafka_log.setLevel(level)
    click.echo(f"published {sent} outbox message(s) to Kafka at {bootstrap}")


ConnectorFor = Callable[[str], LedgerConnector]


@dataclass
class LedgerCheck:
    """What checking a config against its ledgers found: catalogues read, problems, ledgers skipped."""

    catalogues: dict[str, LedgerCatalogue] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Ledgers of the config not checked (auto mode, no active connection), with the reason."""

    def check(self, config: TenantConfig) -> list[str]:
        """For `tenant_config.apply(check=...)`: problems reading the ledgers, then with the codes."""
        return [*self.problems, *ledger_problems(config, self.catalogues)]


async def check_ledgers(
    sessions: sessionmaker[Session],
    config: TenantConfig,
    mode: bool | None,
    connector_for: ConnectorFor | None = None,
) -> LedgerCheck:
    """Read the tax rates and accounts of the config's ledgers (see the module docstring for `mode`).

    `connector_for(ledger)` defaults to `connectors.registry.build(ledger, sessions)`.
    """
    from connectors import registry
    from connectors.errors import LedgerError

    result = LedgerCheck()
    if mode is False:
        return result
    built: dict[str, LedgerConnector] = {}
    tenant = config.tenant_id
    try:
        for ledger in sorted(config.ledgers):
            with sessions() as session:
                row = connections.get(session, tenant, ledger)
                status = row.status if row is not None else None
            if status != "active":
                why = "no connection" if status is None else f"its connection is {status}"
                if mode is None:
                    result.skipped.append(f"{ledger} ({why})")
                    continue
                result.problems.append(
                    f"ledgers.{ledger}: cannot check against {ledger}: tenant {tenant!r} has {why}; "
                    "connect it first, or apply without the ledger check"
                )
                continue
            try:
                if ledger not in built:
                    built[ledger] = (connector_for or (lambda name: registry.build(name, sessions)))(ledger)
                connector = built[ledger]
                rates = await connector.tax_rates(tenant)
                accounts = await connector.accounts(tenant)
            except (LedgerError, LookupError, ValueError, OSError) as exc:
                result.problems.append(
                    f"ledgers.{ledger}: could not read tax rates and accounts from {ledger}: "
                    f"{getattr(exc, 'message', None) or str(exc) or type(exc).__name__}"
                )
                continue
            result.catalogues[ledger] = LedgerCatalogue(rates, accounts)
    finally:
        if connector_for is None:  # ours to close
            for connector in built.values():
                client = getattr(connector, "client", None)
                if client is not None and hasattr(client, "aclose"):
                    await client.aclose()
    return result


@click.group()
def tenants() -> None:
    """Tenant configuration: tax codes, accounts and posting policy per ledger, versioned."""


@tenants.command()
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--dry-run", is_flag=True, help="Validate and show the diff; write nothing.")
@click.option(
    "--check-ledger/--no-check-ledger",
    "check_ledger",
    default=None,
    help="Check tax codes and accounts against the ledger: always / never "
    "(default: against each connected ledger).",
)
@click.option("--by", "applied_by", default=_default_user, help="Who applies it (default: $USER).")
@click.option("--comment", "-m", default=None, help="Why: stored with the version.")
@click.option("--publish/--no-publish", default=True, show_default=True, help="Relay the outbox to Kafka.")
@click.option(
    "--topic", default=_config_topic, show_default=tenant_config.DEFAULT_TOPIC, help="Config topic."
)
@_database_option
@_kafka_options
def apply(
    file: Any,
    dry_run: bool,
    check_ledger: bool | None,
    applied_by: str,
    comment: str | None,
    publish: bool,
    topic: str,
    database_url: str,
    bootstrap_servers: str,
    kafka_timeout: float,
) -> None:
    """Validate FILE (YAML), print what changes, and store it as the tenant's next version."""
    source = Path(file.name).name if file.name != "<stdin>" else "<stdin>"
    try:
        config = tenant_config.load_yaml(file.read(), source=source)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    sessions = open_database(database_url)
    checked = asyncio.run(check_ledgers(sessions, config, check_ledger))
    try:
        with sessions.begin() as session:
            result = tenant_config.apply(
                session, config, applied_by, comment, dry_run, check=checked.check, topic=topic
            )
    except ConfigError as exc:
        raise click.ClickException(f"{source}: rejected:\n" + "\n".join(exc.problems)) from exc
    for ledger in checked.catalogues:
        click.echo(f"{config.tenant_id}: tax codes and accounts checked against {ledger}")
    for ledger in checked.skipped:
        click.echo(f"{config.tenant_id}: not checked against {ledger}")

    tenant = config.tenant_id
    if result.unchanged:
        click.echo(f"{tenant}: unchanged; version {result.version} stays in effect")
    else:
        heading = "new tenant" if result.version == 1 else f"changes from version {result.version - 1}"
        click.echo(f"{tenant}: {heading}:")
        for line in result.changes:
            click.echo(f"  {line}")
        if dry_run:
            click.echo(f"dry run: would write {tenant} version {result.version}; nothing written")
        else:
            click.echo(f"applied {tenant} version {result.version} (by {applied_by})")
    if publish and not dry_run:
        _publish(sessions, bootstrap_servers, kafka_timeout)


@tenants.command()
@click.argument("tenant")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--version", "version", type=int, default=None, help="A past version (default: current).")
@_database_option
def show(tenant: str, fmt: str, version: int | None, database_url: str) -> None:
    """Print the configuration of TENANT in effect (or a past --version)."""
    sessions = open_database(database_url)
    with sessions() as session:
        if version is None:
            config = tenant_config.current(session, tenant)
        else:
            config = tenant_config.get_version(session, tenant, version)
    if config is None:
        which = f" version {version}" if version is not None else ""
        raise click.ClickException(f"no configuration for tenant {tenant!r}{which}")
    if fmt == "json":
        click.echo(config.model_dump_json(indent=2))
    else:
        click.echo(tenant_config.to_yaml(config), nl=False)


@tenants.command("list")
@_database_option
def list_(database_url: str) -> None:
    """Every tenant with the version in effect."""
    sessions = open_database(database_url)
    with sessions() as session:
        configs = tenant_config.all_current(session)
        rows = []
        for config in configs:
            last = tenant_config.history(session, config.tenant_id)[-1]
            rows.append(
                (
                    config.tenant_id,
                    str(config.version),
                    config.name,
                    ",".join(sorted(config.ledgers)),
                    last.applied_at.strftime("%Y-%m-%d %H:%M"),
                    last.applied_by,
                )
            )
    if not rows:
        click.echo("no tenants")
        return
    _table(("TENANT", "VERSION", "NAME", "LEDGERS", "APPLIED (UTC)", "BY"), rows)


@tenants.command()
@click.argument("tenant")
@_database_option
def history(tenant: str, database_url: str) -> None:
    """Every version of TENANT's configuration: when, by whom, why."""
    sessions = open_database(database_url)
    with sessions() as session:
        versions = tenant_config.history(session, tenant)
    if not versions:
        raise click.ClickException(f"no configuration for tenant {tenant!r}")
    _table(
        ("VERSION", "APPLIED (UTC)", "BY", "SHA256", "COMMENT"),
        [
            (
                str(v.version),
                v.applied_at.strftime("%Y-%m-%d %H:%M:%S"),
                v.applied_by,
                v.sha256[:12],
                v.comment or "",
            )
            for v in versions
        ],
    )


@tenants.command()
@_database_option
@_kafka_options
def publish(database_url: str, bootstrap_servers: str, kafka_timeout: float) -> None:
    """Relay pending outbox messages to Kafka now (the worker also does it on a timer)."""
    _publish(open_database(database_url), bootstrap_servers, kafka_timeout)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
