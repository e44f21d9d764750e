"""Leader timers that keep ledger connections alive.

Xero refresh tokens die after 60 days without use. A tenant that posts nothing for weeks (a
seasonal shop) would silently need a reconnect; so the leader refreshes every active
connection whose tokens were last rotated more than 50 days ago (`TokenManager.refresh_idle`,
under the same row lock as every refresh). The timer fires hourly — a daily timer would never
fire on a worker restarted more often than daily — but each run only touches idle connections,
so a connection is refreshed at most once per 50 days by this job. A dead refresh token marks
the connection `needs_reconnect` (shown by `/health/connections` and the blocked-tenants gauge).
"""

from __future__ import annotations

import logging

from agents.post import poster
from connectors.xero.connector import XeroConnector
from streams.app import app, conf

log = logging.getLogger(__name__)

IDLE_REFRESH_INTERVAL = 3600.0


async def refresh_idle_xero() -> dict[str, str]:
    """Refresh idle Xero connections; returns tenant → outcome (logged)."""
    if "xero" not in conf.ledgers:
        return {}
    connector = poster("xero").connector
    if not isinstance(connector, XeroConnector):
        return {}
    outcome = await connector.tokens.refresh_idle()
    for tenant, result in outcome.items():
        level = logging.INFO if result == "refreshed" else logging.WARNING
        log.log(level, "xero idle refresh of tenant %s: %s", tenant, result)
    return outcome


@app.timer(IDLE_REFRESH_INTERVAL, on_leader=True)
async def refresh_idle_connections() -> None:
    await refresh_idle_xero()
