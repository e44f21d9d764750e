"""The one error tree every connector raises; nothing raw from httpx reaches an agent.

LedgerError
├── RetryableError(retry_after)      try again later, same idempotency key
│   ├── RateLimited(scope)           429: minute / day / concurrent / app
│   └── Transient                    5xx, timeouts, connection resets
└── PermanentError                   retrying the same request cannot help
    ├── Rejected(messages)           validation: fix the data or the mapping
    ├── AuthRevoked                  refresh token dead: tenant must reconnect
    └── NotFound                     the referenced document does not exist

`pending_source_id` (any error): set when the command's main document *was* created and a
second part of it failed (a payment's fee, a credit note's allocation, a sales receipt's
settling payment). It names the binding that will exist once that part is done, so the
dead-letter inbox resolves the item only then, not as soon as the main document is bound.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every connector error; carries the ledger's status and body when there was one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        pending_source_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.pending_source_id = pending_source_id


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
