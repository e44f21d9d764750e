"""JSON on the wire: Decimal-exact parsing and output, Xero `/Date(ms+0000)/` dates."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from aiohttp import web

CENT = Decimal("0.01")


def loads(raw: bytes | str) -> Any:
    """Parse JSON keeping every number as Decimal."""
    return json.loads(raw, parse_float=Decimal, parse_int=Decimal)


def dumps(value: Any) -> str:
    """Serialise JSON; Decimals become numbers written exactly as held."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def money(value: Decimal) -> Decimal:
    """A money amount as a 2 dp Decimal (for totals on the wire)."""
    return value.quantize(CENT)


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response."""
    return web.Response(text=dumps(body), status=status, content_type="application/json", headers=headers)


def ms_date(moment: datetime | date) -> str:
    """Xero's Microsoft JSON date, e.g. `/Date(1552262400000+0000)/`."""
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(), tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def date_string(day: date) -> str:
    """Xero's `DateString`, e.g. `2019-03-11T00:00:00`."""
    return f"{day.isoformat()}T00:00:00"


def parse_date(value: Any) -> date | None:
    """Accept `YYYY-MM-DD`, ISO date-times and `/Date(ms)/`; None when unparseable."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("/Date("):
        digits = value[6:].split("+")[0].split(")")[0]
        try:
            return datetime.fromtimestamp(int(digits) / 1000, tz=UTC).date()
        except ValueError:
            return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        return None


def iso_utc(moment: datetime) -> str:
    """ISO-8601 UTC without offset, as identity's `createdDateUtc`."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def validation_envelope(elements: list[dict[str, Any]]) -> dict[str, Any]:
    """Xero's 400 `ValidationException` body."""
    return {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": elements,
    }


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    """The problem-details body Xero uses for 401/403/404/429/5xx."""
    return {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": None,
        "Extensions": {},
    }
