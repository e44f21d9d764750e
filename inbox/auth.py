"""Inbox sessions: itsdangerous-signed cookies with expiry, a CSRF token per session, bearer tokens.

The cookie holds {"u": user name or None, "c": CSRF token, "t": login time}; it is signed
(HMAC) with `LEDGERSTREAM_SESSION_SECRET` and refused after `session_max_age` seconds.
Every POST form carries the session's CSRF token, compared in constant time. The JSON API
takes the same cookie (then the token must come in `X-CSRF-Token` for POSTs) or
`Authorization: Bearer <LEDGERSTREAM_API_TOKEN>` (an admin: scripts and SREs).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr

log = logging.getLogger(__name__)
COOKIE = "ledgerstream_inbox"


@dataclass(frozen=True)
class Session:
    user: str | None
    csrf: str


class Sessions:
    def __init__(self, secret: SecretStr | None, max_age: int, secure: bool = False) -> None:
        if secret is None:
            log.warning("LEDGERSTREAM_SESSION_SECRET is not set: sessions end when this process stops")
            key = secrets.token_urlsafe(32)
        else:
            key = secret.get_secret_value()
        self._signer = URLSafeTimedSerializer(key, salt="ledgerstream-inbox-session")
        self.max_age = max_age
        self.secure = secure

    def load(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # includes SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        user = data.get("u")
        return Session(user if isinstance(user, str) else None, data["c"])

    def dump(self, session: Session) -> str:
        return self._signer.dumps({"u": session.user, "c": session.csrf})

    @staticmethod
    def new(user: str | None = None) -> Session:
        return Session(user, secrets.token_urlsafe(24))


def csrf_ok(session: Session | None, given: str | None) -> bool:
    return bool(session and given and hmac.compare_digest(session.csrf.encode(), given.encode()))


def bearer_ok(header: str, expected: SecretStr | None) -> bool:
    scheme, _, token = header.partition(" ")
    return (
        expected is not None
        and scheme.lower() == "bearer"
        and bool(token)
        and hmac.compare_digest(token.encode(), expected.get_secret_value().encode())
    )
