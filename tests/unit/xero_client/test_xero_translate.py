"""translate(): every status onto the error tree; Retry-After / X-Rate-Limit-Problem parsed."""

from __future__ import annotations

import httpx
import pytest

from connectors.errors import (
    AuthRevoked,
    NotFound,
    PermanentError,
    RateLimited,
    Rejected,
    RetryableError,
    Transient,
)
from connectors.xero.translate import translate, translate_transport

REQ = httpx.Request("PUT", "https://api.xero.com/api.xro/2.0/Invoices")

VALIDATION = {
    "ErrorNumber": 10,
    "Type": "ValidationException",
    "Message": "A validation exception occurred",
    "Elements": [
        {"Reference": "#1", "ValidationErrors": [{"Message": "Account code '999' is not a valid code."}]},
        {"Reference": "#2", "ValidationErrors": [{"Message": "Contact must be set."}, {"Message": "x"}]},
    ],
}


def resp(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=REQ)


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (400, VALIDATION, None, Rejected),
        (400, {"Type": "PostDataInvalidException", "Message": "bad JSON"}, None, Rejected),
        (400, {"error": "invalid_grant"}, None, AuthRevoked),
        (400, {"error": "temporarily_unavailable"}, None, Transient),
        (400, {"error": "invalid_client"}, None, Rejected),
        (401, {"Type": "AuthenticationUnsuccessful"}, None, Transient),
        (403, {"Type": "AuthorizationUnsuccessful"}, None, AuthRevoked),
        (404, None, None, NotFound),
        (409, None, None, Rejected),
        (413, None, None, Rejected),
        (429, None, {"X-Rate-Limit-Problem": "minute", "Retry-After": "17"}, RateLimited),
        (500, None, None, Transient),
        (501, None, None, Rejected),
        (502, None, None, Transient),
        (503, "<html>down</html>", {"Retry-After": "120"}, Transient),
        (504, None, None, Transient),
    ],
)
def test_status_table(status: int, body: object, headers: dict[str, str] | None, kind: type) -> None:
    if isinstance(body, str):
        response = httpx.Response(status, text=body, headers=headers, request=REQ)
    else:
        response = resp(status, body, headers)
    error = translate(response)
    assert type(error) is kind
    assert error.status == status
    assert isinstance(error, RetryableError | PermanentError)


def test_validation_messages_from_elements_and_top_level() -> None:
    error = translate(resp(400, VALIDATION))
    assert isinstance(error, Rejected)
    assert error.messages == (
        "Account code '999' is not a valid code.",
        "Contact must be set.",
        "x",
        "A validation exception occurred",
    )
    assert error.message == "Account code '999' is not a valid code."
    assert error.body == VALIDATION


@pytest.mark.parametrize(
    ("problem", "scope"),
    [("minute", "minute"), ("day", "day"), ("concurrent", "concurrent"), ("AppMinute", "app")],
)
def test_rate_limit_scope_and_retry_after(problem: str, scope: str) -> None:
    error = translate(resp(429, None, {"X-Rate-Limit-Problem": problem, "Retry-After": "42"}))
    assert isinstance(error, RateLimited)
    assert error.scope == scope
    assert error.retry_after == 42.0


def test_rate_limit_without_headers() -> None:
    error = translate(resp(429))
    assert isinstance(error, RateLimited)
    assert (error.scope, error.retry_after) == ("minute", None)


def test_retry_after_http_date_and_503() -> None:
    error = translate(resp(503, None, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert isinstance(error, Transient)
    assert error.retry_after == 0.0  # in the past
    assert translate(resp(503, None, {"Retry-After": "120"})).retry_after == 120.0


def test_401_is_retryable_at_once() -> None:
    error = translate(resp(401))
    assert isinstance(error, Transient)
    assert error.retry_after == 0


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")]
)
def test_transport_errors_are_transient(exc: httpx.TransportError) -> None:
    error = translate_transport(exc)
    assert isinstance(error, Transient)
    assert error.status is None
