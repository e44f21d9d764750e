"""Xero HTTP status / fault body → the connector error tree (`connectors.errors`).

- 400 `ValidationException` → Rejected(messages of Elements[*].ValidationErrors[*], then the
  top-level Message); any other 400 (`PostDataInvalidException`, an Idempotency-Key reused
  with another body …) → Rejected.
- 400/401 OAuth body `{"error": "invalid_grant"}` (token endpoint) → AuthRevoked;
  `temporarily_unavailable` / `server_error` → Transient; other OAuth errors → Rejected.
- 401 (API) → Transient(status=401, retry_after=0).
- 403 → AuthRevoked.
- 404 → NotFound.
- 429 → RateLimited(scope from `X-Rate-Limit-Problem`, retry_after from `Retry-After`).
- 5xx except 501 → Transient(retry_after from `Retry-After` when sent).
- any other 4xx, and 501 → Rejected.
- httpx.TransportError (timeout, reset, DNS) → Transient (`translate_transport`).

Decisions:
- **401 is Transient**: an API 401 means the access token expired or was revoked mid-flight
  (Xero: `AuthenticationUnsuccessful`). Nothing was processed, so the same request is safe to
  repeat. `XeroConnector` forces one token refresh and repeats the call once; a dead refresh
  token then surfaces as `AuthRevoked` from the token endpoint (`invalid_grant`). If the
  refreshed token still gets 401, the Transient goes to the agent, which backs off.
- **403 is AuthRevoked**: Xero's `AuthorizationUnsuccessful` means the organisation is no
  longer connected to the app (or a scope is missing). Only the merchant can fix that by
  reconnecting, so it is permanent; the connector marks the connection `needs_reconnect`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from connectors.errors import (
    AuthRevoked,
    LedgerError,
    NotFound,
    RateLimited,
    Rejected,
    Transient,
)

_SCOPES = {"minute": "minute", "day": "day", "concurrent": "concurrent", "appminute": "app", "app": "app"}
_OAUTH_TRANSIENT = {"temporarily_unavailable", "server_error", "slow_down"}
_BODY_LIMIT = 4000


def body_of(response: httpx.Response) -> Any:
    """The parsed JSON body, or (a bounded prefix of) the text when it is not JSON."""
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return response.text[:_BODY_LIMIT]


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date); None when absent or unparseable."""
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def validation_messages(body: Any) -> tuple[str, ...]:
    """Messages of a Xero `ValidationException` envelope (elements' first, then the summary)."""
    messages: list[str] = []
    if not isinstance(body, dict):
        return ()
    for element in body.get("Elements") or ():
        if isinstance(element, dict):
            messages.extend(element_messages(element))
    top = body.get("Message") or body.get("Detail") or body.get("detail")
    if isinstance(top, str) and top and top not in messages:
        messages.append(top)
    return tuple(messages)


def element_messages(element: dict[str, Any]) -> list[str]:
    """`ValidationErrors[*].Message` of one element (invoice, payment, contact …)."""
    out: list[str] = []
    for err in element.get("ValidationErrors") or ():
        message = err.get("Message") if isinstance(err, dict) else None
        if message and message not in out:
            out.append(str(message))
    return out


def translate(response: httpx.Response) -> LedgerError:
    """The error for one non-2xx Xero response (API, identity or connections endpoint)."""
    status = response.status_code
    body = body_of(response)
    where = f"{response.request.method} {response.request.url.path}" if _has_request(response) else "Xero"

    oauth_error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else None
    if oauth_error and status in (400, 401):
        detail = body.get("error_description") or oauth_error
        if oauth_error == "invalid_grant":
            return AuthRevoked(f"Xero refused the grant: {detail}", status=status, body=body)
        if oauth_error in _OAUTH_TRANSIENT:
            return Transient(f"Xero identity unavailable: {detail}", status=status, body=body)
        return Rejected(f"Xero OAuth error {oauth_error}: {detail}", status=status, body=body)

    if status == 400:
        messages = validation_messages(body)
        kind = body.get("Type") if isinstance(body, dict) else None
        summary = messages[0] if messages else f"{where} rejected ({kind or 'bad request'})"
        return Rejected(summary, messages=messages, status=status, body=body)
    if status == 401:
        return Transient(f"{where}: access token not accepted (401)", retry_after=0, status=status, body=body)
    if status == 403:
        return AuthRevoked(
            f"{where}: organisation not connected or scope missing (403)", status=status, body=body
        )
    if status == 404:
        return NotFound(f"{where}: not found", status=status, body=body)
    if status == 429:
        problem = response.headers.get("X-Rate-Limit-Problem", "minute").strip().lower()
        scope = _SCOPES.get(problem, problem or "minute")
        return RateLimited(
            f"Xero {scope} rate limit hit",
            scope=scope,
            retry_after=retry_after(response),
            status=status,
            body=body,
        )
    if status >= 500 and status != 501:
        return Transient(
            f"{where}: Xero error {status}", retry_after=retry_after(response), status=status, body=body
        )
    messages = validation_messages(body)
    return Rejected(
        messages[0] if messages else f"{where}: HTTP {status}", messages=messages, status=status, body=body
    )


def translate_transport(exc: httpx.TransportError) -> Transient:
    """Timeouts, resets, DNS failures: the request may or may not have arrived; retry with the same key."""
    return Transient(f"Xero unreachable: {type(exc).__name__}: {exc}")


def _has_request(response: httpx.Response) -> bool:
    try:
        response.request  # noqa: B018
    except RuntimeError:
        return False
    return True
