"""GET filters: a small `where` subset (`Field=="x"` joined by AND, groups joined by OR), ID
lists, paging. OR binds looser than AND, as in Xero (`A AND B OR C` = `(A AND B) OR C`).
Quoted values may hold `AND`/`OR` and backslash-escaped quotes or backslashes (`"a \\"b\\""`),
the escaping the client's `where_equals` applies."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

_CLAUSE = re.compile(
    r"^\s*(?P<field>[A-Za-z]+(?:\.[A-Za-z]+)*)\s*(?P<op>==|!=)\s*"
    r'(?:"(?P<text>(?:[^"\\]|\\.)*)"|Guid\("(?P<guid>[^"]*)"\)|(?P<bare>true|false|-?\d+(?:\.\d+)?))\s*$'
)
_ESCAPE = re.compile(r"\\(.)")
_AND = re.compile(r"\s+AND\s+|\s*&&\s*", re.IGNORECASE)
_OR = re.compile(r"\s+OR\s+|\s*\|\|\s*", re.IGNORECASE)


class QueryError(ValueError):
    """A `where` clause the sandbox cannot parse (Xero: QueryParseException)."""


def _split(where: str, separator: re.Pattern[str]) -> list[str]:
    """Split at `separator` wherever it occurs outside a double-quoted value."""
    parts: list[str] = []
    start = i = 0
    quoted = False
    while i < len(where):
        ch = where[i]
        if quoted:
            if ch == "\\":
                i += 2
                continue
            quoted = ch != '"'
        elif ch == '"':
            quoted = True
        else:
            match = separator.match(where, i)
            if match is not None:
                parts.append(where[start:i])
                start = i = match.end()
                continue
        i += 1
    parts.append(where[start:])
    return parts


def parse_where(where: str) -> list[tuple[str, str, str]]:
    """Clauses as (dotted field, operator, value)."""
    clauses = []
    for part in _split(where.strip(), _AND):
        match = _CLAUSE.match(part)
        if match is None:
            raise QueryError(f"Unsupported where clause: {part!r}")
        if match["text"] is not None:
            value = _ESCAPE.sub(r"\1", match["text"])
        else:
            value = match["guid"] or match["bare"]
        clauses.append((match["field"], match["op"], value))
    return clauses


def parse_where_any(where: str) -> list[list[tuple[str, str, str]]]:
    """OR-groups of AND-clauses."""
    return [parse_where(group) for group in _split(where.strip(), _OR)]


def _lookup(doc: dict[str, Any], field: str) -> Any:
    value: Any = doc
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value).lower()


def matches(doc: dict[str, Any], clauses: list[tuple[str, str, str]]) -> bool:
    """Whether a document satisfies every clause (string compare, case-insensitive)."""
    for field, op, value in clauses:
        equal = _text(_lookup(doc, field)) == value.lower()
        if equal != (op == "=="):
            return False
    return True


def csv_param(query: dict[str, str], name: str) -> set[str] | None:
    """A comma-separated query parameter as a lower-cased set (None when absent)."""
    raw = query.get(name)
    if not raw:
        return None
    return {v.strip().strip('"').lower() for v in raw.split(",") if v.strip()}


def select(
    docs: Iterable[dict[str, Any]], query: dict[str, str], lists: dict[str, str]
) -> list[dict[str, Any]]:
    """Apply `where` and the ID-list parameters (`lists` maps param → dotted field)."""
    result = list(docs)
    if query.get("where"):
        groups = parse_where_any(query["where"])
        result = [d for d in result if any(matches(d, clauses) for clauses in groups)]
    for param, field in lists.items():
        wanted = csv_param(query, param)
        if wanted is not None:
            result = [d for d in result if _text(_lookup(d, field)) in wanted]
    return result


def paginate(
    docs: list[dict[str, Any]], query: dict[str, str], default_size: int
) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    """One page when `page` is given (with Xero's `pagination` block), else everything."""
    if "page" not in query:
        return docs, None
    try:
        page = max(1, int(query["page"]))
        size = min(1000, max(1, int(query.get("pageSize", default_size))))
    except ValueError as exc:
        raise QueryError("page and pageSize must be integers") from exc
    chunk = docs[(page - 1) * size : page * size]
    return chunk, {
        "page": page,
        "pageSize": size,
        "pageCount": math.ceil(len(docs) / size),
        "itemCount": len(docs),
    }
