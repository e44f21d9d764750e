"""`ledgerstream xero …`: Xero connection diagnostics from the command line.

    ledgerstream xero connections [--format json]   every tenant's Xero connection (no network)
    ledgerstream xero check TENANT [--format json]  token (refreshed if due) → GET /Organisation

`check` exits 0 when the connection answers, 1 when it found problems (no connection,
needs_reconnect, day limit parked, Xero errors). It reads `DATABASE_URL`,
`LEDGERSTREAM_SECRET_KEYS` and the `XERO_*` settings, like the worker.
"""

from __future__ import annotations

import asyncio
import json
import sys

import click

from streams.commands.tenants import _database_option

STATUS_WIDTH = 16


@click.group("xero")
def xero_group() -> None:
    """Xero connections: list them, check one against Xero."""


@xero_group.command("connections")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_database_option
def connections_command(fmt: str, database_url: str) -> None:
    """List every tenant's Xero connection as stored (status, organisation, expiry, last error)."""
    from connectors.xero import health
    from store.db import open_database

    rows = health.list_connections(open_database(database_url))
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no Xero connections")
        return
    for row in rows:
        parked = f"  parked until {row['day_parked_until']}" if row["day_parked_until"] else ""
        error = f"  error: {row['last_error']}" if row["last_error"] else ""
        click.echo(
            f"{row['tenant_id']:<20} {row['status']:<{STATUS_WIDTH}} "
            f"{row['organisation_name'] or '?'} ({row['organisation_id']})  "
            f"last success {row['last_success_at'] or 'never'}{parked}{error}"
        )


@xero_group.command("check")
@click.argument("tenant")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_database_option
def check_command(tenant: str, fmt: str, database_url: str) -> None:
    """Check TENANT's connection: refresh the token if due, call GET /Organisation; exit 1 on problems."""
    from connectors.xero import health
    from connectors.xero.client import XeroClient
    from connectors.xero.oauth import XeroOAuth
    from connectors.xero.settings import XeroSettings
    from connectors.xero.tokens import TokenManager
    from store.connections import TokenCipher
    from store.db import open_database

    sessions = open_database(database_url)
    settings = XeroSettings()
    cipher = TokenCipher.from_settings()

    async def run() -> health.CheckResult:
        client = XeroClient(settings)
        try:
            tokens = TokenManager(sessions, cipher, XeroOAuth(settings, sessions, cipher))
            return await health.check(tenant, sessions, tokens, client)
        finally:
            await client.aclose()

    result = asyncio.run(run())
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "tenant_id": tenant,
                    "ok": result.ok,
                    "problems": result.problems,
                    "organisation": result.organisation,
                    "connection": result.connection,
                },
                indent=2,
            )
        )
    else:
        conn = result.connection or {}
        org = result.organisation or {}
        click.echo(f"tenant:        {tenant}")
        click.echo(f"status:        {conn.get('status', 'not connected')}")
        if org:
            click.echo(f"organisation:  {org.get('name')} ({org.get('id')}), {org.get('base_currency')}")
        if conn:
            click.echo(f"access token:  expires {conn['access_token_expires_at']}")
            click.echo(f"refresh token: expires {conn['refresh_token_expires_at']} unless used")
            click.echo(f"last success:  {conn['last_success_at'] or 'never'}")
            click.echo(
                f"calls left:    {conn['minute_calls_remaining']} this minute, "
                f"{conn['day_calls_remaining']} today"
            )
        for problem in result.problems:
            click.echo(f"PROBLEM: {problem}", err=True)
        click.echo("OK" if result.ok else "FAILED")
    sys.exit(0 if result.ok else 1)
