"""Alert timer: batched mails / webhooks about new inbox items and connections (see inbox.alerts)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from inbox import alerts
from inbox.settings import inbox_settings
from streams.app import app
from streams.database import sessions

log = logging.getLogger(__name__)
notifier = alerts.Notifier(inbox_settings())


@app.timer(inbox_settings().alert_interval, on_leader=True)
async def send_alerts() -> None:
    try:
        sent = await alerts.run(sessions(), notifier, inbox_settings(), datetime.now(UTC))
    except SQLAlchemyError as exc:
        log.warning("alerts skipped: database unavailable: %s", exc)
        return
    if sent:
        log.info("sent %d alert(s)", sent)
