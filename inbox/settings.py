"""Inbox settings (`LEDGERSTREAM_*`): sessions, retention, alert delivery. Secrets stay `SecretStr`."""

from __future__ import annotations

from functools import cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class InboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGERSTREAM_", extra="ignore")

    session_secret: SecretStr | None = Field(
        None, description="signs session cookies; unset: a random one per process (sessions end on restart)"
    )
    session_max_age: int = Field(8 * 3600, gt=0, description="seconds a login lasts")
    cookie_secure: bool = Field(False, description="mark cookies Secure (set behind HTTPS)")
    retention_days: int = Field(90, ge=1, description="days resolved/discarded items are kept")
    inbox_interval: float = Field(10.0, gt=0, description="seconds between inbox jobs (resolve, gauge)")
    purge_interval: float = Field(3600.0, gt=0, description="seconds between retention purges")
    alert_interval: float = Field(300.0, gt=0, description="seconds between alert batches")
    inactivity_days: int = Field(
        50, ge=1, description="warn when a connection was not refreshed for this long"
    )
    public_url: str = Field("http://127.0.0.1:6066", description="base URL of the inbox, for links in alerts")
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "ledgerstream@localhost"
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    alert_webhook_url: str | None = Field(None, description="POST JSON alerts here (in addition to email)")
    alert_webhook_token: SecretStr | None = None


@cache
def inbox_settings() -> InboxSettings:
    return InboxSettings()
