"""Inbox sessions: itsdangerous-signed cookies with expiry, a CSRF token per session, bearer
tokens, login throttling and logout revocation.

The cookie holds {"u": user name or None, "c": CSRF token}, signed (HMAC) with
`LEDGERSTREAM_SESSION_SECRET`; itsdangerous adds the signing time and `load` refuses a
cookie older than `session_max_age` seconds. The CSRF token is random per session (a login
issues a new one), so it doubles as the session's id. Every POST form carries it, compared
in constant time. The JSON API takes the same cookie (then the token must come in
`X-CSRF-Token` for POSTs) or `Authorization: Bearer <LEDGERSTREAM_API_TOKEN>` (an admin:
scripts and SREs).

The cookie is set `HttpOnly` and `SameSite=Strict` (never sent on cross-site requests, which
also blocks CSRF a second way) and `Secure` only when `LEDGERSTREAM_COOKIE_SECURE=true`: the
default is False so the inbox works over plain http on a laptop; set it behind HTTPS.

Logout revokes the session server-side: `Sessions.revoke` remembers the session id until the
cookie would have expired anyway, and `load` refuses it. Limitation (chosen to avoid a schema
migration): the revocation list lives in this process's memory, so it is not shared between
worker processes and a restart forgets it; a copied cookie of a logged-out session is then
valid again until its `session_max_age` ends. Deactivating a user (`users.active`) is checked
in the database on every request and works everywhere.

Login throttling (`LoginThrottle`): per (user name, remote address), after `free` failures in
a row each new attempt is refused for a delay that doubles with every further failure (2 s,
4 s, … capped at 15 minutes); a success clears it, and failures are forgotten 15 minutes
after the last one. Also in memory, per process (a restart or another worker starts afresh),
and the address is the TCP peer (behind a proxy: the proxy's).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr

log = logging.getLogger(__name__)
COOKIE = "ledgerstream_inbox"
Clock = Callable[[], float]


@dataclass(frozen=True)
class Session:
    user: str | None
    csrf: str

    @property
    def id(self) -> str:
        """The session's id: its CSRF token (random per session, new on every login)."""
        return self.csrf


class Sessions:
    def __init__(
        self, secret: SecretStr | None, max_age: int, secure: bool = False, clock: Clock = time.monotonic
    ) -> None:
        if secret is None:
            log.warning("LEDGERSTREAM_SESSION_SECRET is not set: sessions end when this process stops")
            key = secrets.token_urlsafe(32)
        else:
            key = secret.get_secret_value()
        self._signer = URLSafeTimedSerializer(key, salt="ledgerstream-inbox-session")
        self.max_age = max_age
        self.secure = secure
        self._clock = clock
        self._revoked: dict[str, float] = {}  # session id -> when the revocation may be forgotten

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
        session = Session(user if isinstance(user, str) else None, data["c"])
        if self.revoked(session):
            return None
        return session

    def dump(self, session: Session) -> str:
        return self._signer.dumps({"u": session.user, "c": session.csrf})

    def revoke(self, session: Session) -> None:
        """Refuse this session's cookie from now on (in this process; see the module docstring)."""
        now = self._clock()
        self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
        self._revoked[session.id] = now + self.max_age

    def revoked(self, session: Session) -> bool:
        until = self._revoked.get(session.id)
        return until is not None and until > self._clock()

    @staticmethod
    def new(user: str | None = None) -> Session:
        return Session(user, secrets.token_urlsafe(24))


class LoginThrottle:
    """Refuse login attempts for a growing delay after `free` failures per (name, address)."""

    def __init__(
        self,
        free: int = 5,
        base_delay: float = 2.0,
        max_delay: float = 900.0,
        forget_after: float = 900.0,
        max_entries: int = 10_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self.free = free
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_entries = max_entries
        self._clock = clock
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}  # key -> (failures, last at)

    @staticmethod
    def key(name: str, remote: str | None) -> tuple[str, str]:
        return name.strip().lower(), remote or "?"

    def wait(self, key: tuple[str, str]) -> float:
        """Seconds before this key may try again (0: now)."""
        entry = self._failures.get(key)
        if entry is None:
            return 0.0
        failures, last = entry
        now = self._clock()
        if now - last >= self.forget_after:
            del self._failures[key]
            return 0.0
        if failures < self.free:
            return 0.0
        delay = min(self.base_delay * 2 ** (failures - self.free), self.max_delay)
        return max(0.0, last + delay - now)

    def failed(self, key: tuple[str, str]) -> None:
        now = self._clock()
        if len(self._failures) >= self.max_entries:
            self._failures = {
                k: (n, at) for k, (n, at) in self._failures.items() if now - at < self.forget_after
            }
            if len(self._failures) >= self.max_entries:  # still full: drop the oldest entry
                oldest = min(self._failures, key=lambda k: self._failures[k][1])
                del self._failures[oldest]
        failures, last = self._failures.get(key, (0, now))
        if now - last >= self.forget_after:
            failures = 0
        self._failures[key] = (failures + 1, now)

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)


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
