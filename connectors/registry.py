"""Building the connector of a ledger from settings; one place that knows every ledger."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from connectors.protocol import LedgerConnector
from store.connections import TokenCipher


def build(ledger: str, sessions: sessionmaker[Session]) -> LedgerConnector:
    """The connector for `ledger`, configured from the environment (`XERO_*`, ...)."""
    cipher = TokenCipher.from_settings()
    if ledger == "xero":
        from connectors.xero.client import XeroClient
        from connectors.xero.connector import XeroConnector
        from connectors.xero.oauth import XeroOAuth
        from connectors.xero.settings import XeroSettings
        from connectors.xero.tokens import TokenManager

        xero = XeroSettings()
        oauth = XeroOAuth(xero, sessions, cipher)
        return XeroConnector(XeroClient(xero), TokenManager(sessions, cipher, oauth), sessions)
    raise LookupError(f"no connector for ledger {ledger!r} yet")
