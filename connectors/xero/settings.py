"""Xero app settings (pydantic-settings, env prefix `XERO_`); the client secret is a `SecretStr`.

Production URLs are the defaults; `XeroSettings.for_sandbox(base_url)` points every URL at
one sandbox server (`python -m connectors.xero.sandbox --port 8800`).
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SCOPES = (
    "openid profile email offline_access accounting.transactions accounting.contacts accounting.settings"
)
SANDBOX_CLIENT_ID = "ledgerstream-dev"
SANDBOX_CLIENT_SECRET = "dev-secret"  # the sandbox's published dev credential


class XeroSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XERO_", extra="ignore")

    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    redirect_uri: str = "http://localhost:8000/connect/xero/callback"
    scopes: str = DEFAULT_SCOPES
    login_url: str = "https://login.xero.com/identity/connect/authorize"
    token_url: str = "https://identity.xero.com/connect/token"
    revoke_url: str = "https://identity.xero.com/connect/revocation"
    connections_url: str = "https://api.xero.com/connections"
    api_url: str = "https://api.xero.com/api.xro/2.0"
    timeout: float = 30.0

    @classmethod
    def for_sandbox(cls, base_url: str, **overrides: Any) -> XeroSettings:
        """Every URL under one sandbox base, e.g. `http://127.0.0.1:8800`; dev client by default."""
        base = base_url.rstrip("/")
        values: dict[str, Any] = {
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SecretStr(SANDBOX_CLIENT_SECRET),
            "login_url": f"{base}/identity/connect/authorize",
            "token_url": f"{base}/connect/token",
            "revoke_url": f"{base}/connect/revocation",
            "connections_url": f"{base}/connections",
            "api_url": f"{base}/api.xro/2.0",
        }
        values.update(overrides)
        return cls(**values)
