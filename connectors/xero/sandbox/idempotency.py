"""`Idempotency-Key` handling: responses cached for 6 minutes per app, tenant and key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_KEY_LENGTH = 128


@dataclass
class CachedResponse:
    """A response as first produced, replayed for repeats of the same request."""

    fingerprint: str
    status: int
    body: str
    stored_at: datetime


def fingerprint(method: str, path_qs: str, body: bytes) -> str:
    """Identity of a request: method, URL (with query) and body."""
    return hashlib.sha256(f"{method} {path_qs}\n".encode() + body).hexdigest()


class IdempotencyCache:
    """Per (app, tenant, key) store with a fixed lifetime from first use."""

    def __init__(self, ttl_seconds: int, now: Callable[[], datetime]) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self.now = now
        self.entries: dict[tuple[str, str, str], CachedResponse] = {}

    def lookup(self, scope: tuple[str, str, str]) -> CachedResponse | None:
        """The live cached response for a key, dropping expired ones."""
        entry = self.entries.get(scope)
        if entry and self.now() - entry.stored_at >= self.ttl:
            del self.entries[scope]
            return None
        return entry

    def store(self, scope: tuple[str, str, str], fp: str, status: int, body: str) -> None:
        """Remember the response to a keyed request."""
        self.entries[scope] = CachedResponse(fp, status, body, self.now())
