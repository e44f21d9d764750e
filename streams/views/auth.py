"""Authentication for the worker's machine API: a bearer token from settings.

Browser pages for finance use their own login (sessions and roles); this is for scripts.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from streams.settings import settings


def require_api_token(request: web.Request) -> None:
    """Raise 401 unless the request carries `Authorization: Bearer <LEDGERSTREAM_API_TOKEN>`.

    With no token configured the API is closed, not open.
    """
    expected = settings().api_token
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    if (
        expected is None
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode())
    ):
        raise web.HTTPUnauthorized(
            text='{"error": "unauthorized"}',
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )
