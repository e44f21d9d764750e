"""Alerts to a tenant's finance contact: new inbox items (batched), reconnects, idle connections.

One message per tenant per interval lists every new open item (never one per item). A
connection in `needs_reconnect` is reported once a day until it is active again; one whose
refresh token was not used for `inactivity_days` (Xero's expire after 60 days unused) once
a week. Delivery: email over SMTP (optional STARTTLS and login) to `TenantConfig.finance_email`,
and/or a JSON POST to `LEDGERSTREAM_ALERT_WEBHOOK_URL`. Items are marked alerted only after
a delivery succeeded; a failed delivery is tried again next interval.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from inbox.settings import InboxSettings
from store import connections, tenant_config
from store import dead_letters as dl

log = logging.getLogger(__name__)


@dataclass
class Alert:
    kind: str  # new_items | needs_reconnect | inactive
    tenant_id: str
    to: str | None
    subject: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    item_ids: list[int] = field(default_factory=list)
    mark_key: str | None = None


class Notifier:
    def __init__(self, settings: InboxSettings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return bool(self.settings.smtp_host or self.settings.alert_webhook_url)

    async def send(self, alert: Alert) -> bool:
        """Deliver by every configured channel; True when at least one took it and none failed."""
        ok = sent = False
        try:
            if self.settings.smtp_host and alert.to:
                await asyncio.to_thread(self._mail, alert)
                sent = True
            if self.settings.alert_webhook_url:
                await self._webhook(alert)
                sent = True
            ok = sent
        except (OSError, smtplib.SMTPException, httpx.HTTPError) as exc:
            log.warning("alert %s for %s not delivered: %s", alert.kind, alert.tenant_id, exc)
            ok = False
        return ok

    def _mail(self, alert: Alert) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.smtp_from
        message["To"] = alert.to
        message["Subject"] = alert.subject
        message.set_content(alert.text)
        with smtplib.SMTP(s.smtp_host or "", s.smtp_port, timeout=30) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user and s.smtp_password is not None:
                smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
            smtp.send_message(message)

    async def _webhook(self, alert: Alert) -> None:
        s = self.settings
        headers = {}
        if s.alert_webhook_token is not None:
            headers["Authorization"] = f"Bearer {s.alert_webhook_token.get_secret_value()}"
        payload = {
            "kind": alert.kind,
            "tenant_id": alert.tenant_id,
            "subject": alert.subject,
            "text": alert.text,
            **alert.data,
        }
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(s.alert_webhook_url or "", json=payload, headers=headers)
            answer.raise_for_status()


def collect(session: Session, settings: InboxSettings, now: datetime) -> list[Alert]:
    """Alerts due now (reads only, except remembering when keyed alerts go out: see `commit`)."""
    alerts: list[Alert] = []
    emails: dict[str, str | None] = {}

    def email(tenant: str) -> str | None:
        if tenant not in emails:
            config = tenant_config.current(session, tenant) if tenant else None
            emails[tenant] = str(config.finance_email) if config and config.finance_email else None
        return emails[tenant]

    base = settings.public_url.rstrip("/")
    for tenant, items in dl.unalerted(session).items():
        lines = [
            f"- {i.kind or 'event'} for order {i.order_id or '?'}"
            f"{f' ({i.amount} {i.currency})' if i.amount else ''}: "
            f"{(i.ledger_messages[0] if i.ledger_messages else i.reason)[:200]}  {base}/inbox/items/{i.id}"
            for i in items
        ]
        alerts.append(
            Alert(
                "new_items",
                tenant,
                email(tenant),
                f"[ledgerstream] {len(items)} posting(s) for {tenant or 'unknown shop'} need attention",
                f"{len(items)} new failed posting(s) for {tenant or 'an unknown shop'}:\n\n"
                + "\n".join(lines)
                + f"\n\nOpen the inbox to fix and retry: {base}/inbox?tenant={tenant}\n",
                {"items": [dl.to_json(i) for i in items]},
                item_ids=[i.id for i in items],
            )
        )
    rows = session.scalars(select(connections.LedgerConnection))
    for row in rows:
        who, ledger = row.tenant_id, row.ledger
        key = f"reconnect:{row.tenant_id}:{row.ledger}"
        if row.status == "needs_reconnect":
            if _due(session, key, timedelta(days=1), now):
                alerts.append(
                    Alert(
                        "needs_reconnect",
                        row.tenant_id,
                        email(row.tenant_id),
                        f"[ledgerstream] reconnect {row.ledger} for {row.tenant_id}",
                        f"The {ledger} connection of {who} needs reconnecting: postings are paused "
                        "(nothing is lost). Reconnect in ledgerstream. "
                        f"Last error: {row.last_error or 'none'}\n",
                        {"ledger": row.ledger},
                        mark_key=key,
                    )
                )
        elif row.status == "active":
            dl.forget_alert(session, key)
            if row.refreshed_at < now - timedelta(days=settings.inactivity_days):
                idle_key = f"inactive:{row.tenant_id}:{row.ledger}"
                if _due(session, idle_key, timedelta(days=7), now):
                    days = (now - row.refreshed_at).days
                    alerts.append(
                        Alert(
                            "inactive",
                            row.tenant_id,
                            email(row.tenant_id),
                            f"[ledgerstream] {ledger} connection of {who} unused for {days} days",
                            f"The {ledger} connection of {who} has not been used for {days} days. "
                            "Unused connections expire (Xero: after 60 days); then it must be reconnected.\n",
                            {"ledger": row.ledger, "days_unused": days},
                            mark_key=idle_key,
                        )
                    )
    return alerts


def _due(session: Session, key: str, every: timedelta, now: datetime) -> bool:
    mark = session.get(dl.AlertMark, key)
    return mark is None or now - mark.sent_at >= every


async def run(
    sessions: sessionmaker[Session], notifier: Notifier, settings: InboxSettings, now: datetime
) -> int:
    """Collect, deliver, and remember what went out; returns how many alerts were delivered."""
    if not notifier.enabled:
        return 0

    def gather() -> list[Alert]:
        with sessions.begin() as session:
            return collect(session, settings, now)

    alerts = await asyncio.to_thread(gather)
    delivered = 0
    for alert in alerts:
        if not await notifier.send(alert):
            continue
        delivered += 1

        def remember(alert: Alert = alert) -> None:
            with sessions.begin() as session:
                if alert.item_ids:
                    items = [dl.get(session, i) for i in alert.item_ids]
                    dl.mark_alerted(session, [i for i in items if i is not None], now)
                if alert.mark_key:
                    dl.alert_due(session, alert.mark_key, timedelta(0), now)

        await asyncio.to_thread(remember)
    return delivered
