"""The one error tree every connector raises; nothing raw from httpx reaches an agent.

LedgerError
├── RetryableError(retry_after)      try again later, same idempotency key
│   ├── RateLimited(scope)           429: minute / day / concurrent / app
│   └── Transient                    5xx, timeouts, connection resets
└── PermanentError                   retrying the same request cannot help
    ├── Rejected(messages)           validation: fix the data or the mapping
    ├── AuthRevoked                  refresh token dead: tenant must reconnect
    └── NotFound                     the referenced document does not exist
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every connector error; carries the ledger's status and body when there was one."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class RetryableError(LedgerError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RateLimited(RetryableError):
    """`scope` is the limit hit: "minute", "day", "concurrent" or "app"."""

    def __init__(self, message: str, *, scope: str = "minute", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.scope = scope


class Transient(RetryableError):
    pass


class PermanentError(LedgerError):
    pass


class Rejected(PermanentError):
    def __init__(self, message: str, *, messages: tuple[str, ...] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.messages = messages or (message,)


class AuthRevoked(PermanentError):
    pass


class NotFound(PermanentError):
    pass
