"""The inbox web pages and the JSON API, as plain aiohttp handlers.

The worker mounts them on Faust's web server (`mount(app.web.web_app, ctx)`); tests run them
in a standalone `make_app(ctx)`. Pages (login required; finance users see only their tenants):

    GET  /inbox                         list + filters + counts per reason; "retry all matching"
    GET  /inbox/items/{id}              what was sent, what the ledger said, the suggested fix
    POST /inbox/items/{id}/retry        POST /inbox/items/{id}/discard (reason required)
    POST /inbox/retry                   retry all items matching the posted filters
    GET|POST /inbox/tenants/{tenant}/config   the tenant's YAML mapping editor
    GET  /inbox/history                 the audit log
    GET|POST /inbox/login, POST /inbox/logout
    GET  /api/dlq/items[?filters&limit=1..500]  GET /api/dlq/items/{id}  POST /api/dlq/items/{id}/retry
    POST /api/dlq/retry {filters}

The handlers run on Faust's event loop, next to the agents: password hashing (argon2) and
database work go to a thread (`asyncio.to_thread`) so a slow query or a burst of logins
never stalls the stream processing. Logins are throttled per (name, address) and logout
revokes the session (`inbox.auth`, both in this process's memory).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import SecretStr
from sqlalchemy.orm import Session as DbSession
from yarl import URL

from inbox import explain as explaining
from inbox.auth import COOKIE, LoginThrottle, Session, Sessions, bearer_ok, csrf_ok
from inbox.service import Inbox, NotAllowed, summarize
from schemas.dead_letter import Reason
from store import dead_letters as dl
from store import tenant_config, users
from store.tenant_config import ConfigError

TEMPLATES = Path(__file__).with_name("templates")
CTX = web.AppKey("inbox_ctx", object)


@dataclass
class Context:
    make_inbox: Callable[[], Inbox]
    """Called per request: the worker opens (and migrates) its database on first use."""
    sessions: Sessions
    api_token: SecretStr | None = None
    applied_topic: str = tenant_config.DEFAULT_TOPIC
    throttle: LoginThrottle = field(default_factory=LoginThrottle)

    @property
    def inbox(self) -> Inbox:
        return self.make_inbox()


@dataclass(frozen=True)
class Who:
    name: str
    role: str
    tenants: tuple[str, ...]
    session: Session | None  # None: bearer token

    @property
    def scope(self) -> frozenset[str] | None:
        return None if self.role == "admin" else frozenset(self.tenants)

    def may_see(self, tenant: str | None) -> bool:
        return self.role == "admin" or (tenant is not None and tenant in self.tenants)


_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
_env.filters["dt"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else ""


def _ctx(request: web.Request) -> Context:
    return request.app[CTX]  # type: ignore[return-value]


def _render(request: web.Request, name: str, who: Who | None, status: int = 200, **data: Any) -> web.Response:
    session = who.session if who is not None else data.pop("session", None)
    html = _env.get_template(name).render(
        who=who, csrf=session.csrf if session else "", reasons=[r.value for r in Reason], **data
    )
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "default-src 'self'; style-src 'unsafe-inline'"
    return response


async def _read(request: web.Request, fn: Callable[[DbSession], Any]) -> Any:
    """Run `fn(session)` in a read-only session, in a thread (never block the event loop)."""
    inbox = _ctx(request).inbox

    def run() -> Any:
        with inbox.sessions() as s:
            return fn(s)

    return await asyncio.to_thread(run)


async def _write(request: web.Request, fn: Callable[[DbSession], Any]) -> Any:
    """Run `fn(session)` in a transaction (committed on return), in a thread."""
    inbox = _ctx(request).inbox

    def run() -> Any:
        with inbox.sessions.begin() as s:
            return fn(s)

    return await asyncio.to_thread(run)


def _session(request: web.Request) -> Session | None:
    return _ctx(request).sessions.load(request.cookies.get(COOKIE))


async def _who(request: web.Request) -> Who | None:
    session = _session(request)
    if session is None or session.user is None:
        return None
    name = session.user

    def load(s: DbSession) -> Who | None:
        user = users.get(s, name)
        if user is None:
            return None
        return Who(user.name, user.role, tuple(user.tenants or ()), session)

    return await _read(request, load)


async def _page_user(request: web.Request) -> Who:
    who = await _who(request)
    if who is None:
        raise web.HTTPSeeOther("/inbox/login?" + urlencode({"next": request.path_qs}))
    return who


async def _form(request: web.Request, who: Who) -> dict[str, str]:
    form = {k: str(v) for k, v in (await request.post()).items()}
    if not csrf_ok(who.session, form.get("csrf")):
        raise web.HTTPForbidden(text="invalid or missing CSRF token; reload the page and try again")
    return form


def _date(value: str | None, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise web.HTTPBadRequest(text=f"not a date (YYYY-MM-DD): {value!r}") from None
    return day + timedelta(days=1) if end else day


def _filters(params: Any, who: Who) -> dl.Filters:
    status = params.get("status") or None
    if status is not None and status not in (*dl.STATUSES, "all"):
        raise web.HTTPBadRequest(text=f"unknown status {status!r}")
    return dl.Filters(
        tenant=params.get("tenant") or None,
        ledger=params.get("ledger") or None,
        reason=params.get("reason") or None,
        status=None if status == "all" else status,
        since=_date(params.get("since")),
        until=_date(params.get("until"), end=True),
        tenants=who.scope,
    )


async def _item_for(request: web.Request, who: Who) -> dl.DeadLetterItem:
    try:
        item_id = int(request.match_info["item_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    item = await _read(request, lambda s: dl.get(s, item_id))
    if item is None or not who.may_see(item.tenant_id):
        raise web.HTTPNotFound(text="no such item")  # another tenant's item: the same answer
    return item


# --------------------------------------------------------------------------- login


async def login_form(request: web.Request) -> web.Response:
    session = _session(request) or Sessions.new()
    response = _render(request, "login.html", None, session=session, next=request.query.get("next", "/inbox"))
    _set_cookie(request, response, session)
    return response


_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f\\]")  # control characters, space, backslash
MAX_PASSWORD = 1024  # longer is refused before hashing (argon2 work is the attacker's lever)


def safe_next(target: str | None) -> str:
    """Where to go after login: a path of the inbox on this server, else "/inbox".

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    `/\t/evil.com` and `/\\evil.com` would become `//evil.com` (another site): such
    characters are refused outright, then the URL must have no scheme and no host and a
    path under /inbox.
    """
    if not target or _UNSAFE_IN_URL.search(target):
        return "/inbox"
    try:
        url = URL(target)
    except (ValueError, TypeError):
        return "/inbox"
    if url.scheme or url.host is not None or url.raw_authority or target.startswith("//"):
        return "/inbox"
    if not (url.path == "/inbox" or url.path.startswith("/inbox/")) or not target.startswith("/inbox"):
        return "/inbox"
    if any(part in (".", "..") for part in url.path.split("/")):  # no climbing out of /inbox
        return "/inbox"
    return target


def _login_refused(request: web.Request, status: int, error: str, target: str) -> web.Response:
    fresh = Sessions.new()
    response = _render(request, "login.html", None, status=status, session=fresh, error=error, next=target)
    _set_cookie(request, response, fresh)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    ctx = _ctx(request)
    session = _session(request)
    form = await request.post()
    if not csrf_ok(session, str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="invalid or missing CSRF token; reload the login page")
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next") or "/inbox"))
    key = ctx.throttle.key(name, request.remote)
    wait = ctx.throttle.wait(key)
    if wait > 0:
        response = _login_refused(
            request, 429, f"Too many failed attempts. Try again in {int(wait) + 1} seconds.", target
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    ctx.throttle.failed(key)  # counted before checking, so parallel guesses count too; cleared on success

    def check(s: DbSession) -> str | None:
        if len(password) > MAX_PASSWORD:
            return None
        user = users.authenticate(s, name, password)
        if user is None:
            return None
        dl.audit(s, user.name, "login", tenant_id=None)
        return user.name

    user_name = await _write(request, check)  # argon2 in a thread, not on the agents' event loop
    if user_name is None:
        return _login_refused(request, 401, "Wrong name or password.", target)
    ctx.throttle.succeeded(key)
    response = web.HTTPSeeOther(target)
    _set_cookie(request, response, Sessions.new(user_name))  # a new session (and CSRF token) on login
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    who = await _page_user(request)
    await _form(request, who)
    if who.session is not None:
        _ctx(request).sessions.revoke(who.session)  # a copy of the cookie stops working too
    response = web.HTTPSeeOther("/inbox/login")
    response.del_cookie(COOKIE, path="/")
    raise response


def _set_cookie(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    ctx = _ctx(request)
    response.set_cookie(
        COOKIE,
        ctx.sessions.dump(session),
        max_age=ctx.sessions.max_age,
        httponly=True,
        samesite="Strict",
        secure=ctx.sessions.secure,
        path="/",
    )


# --------------------------------------------------------------------------- pages


async def list_page(request: web.Request) -> web.Response:
    who = await _page_user(request)
    params = dict(request.query)
    params.setdefault("status", "open")
    filters = _filters(params, who)

    def load(s: DbSession) -> tuple[list[dl.DeadLetterItem], int, dict[str, int], list[str]]:
        tenants = (
            sorted(who.tenants)
            if who.role != "admin"
            else [c.tenant_id for c in tenant_config.all_current(s)]
        )
        return (
            dl.search(s, filters, limit=500),
            dl.count(s, filters),
            dl.counts_by_reason(s, replace(filters, reason=None)),
            tenants,
        )

    items, total, counts, tenants = await _read(request, load)
    return _render(
        request,
        "list.html",
        who,
        items=items,
        total=total,
        counts=counts,
        params=params,
        tenants=tenants,
        statuses=dl.STATUSES,
        flash=request.query.get("done"),
        query=lambda **kw: urlencode({**params, **kw}),
    )


async def item_page(request: web.Request) -> web.Response:
    who = await _page_user(request)
    item = await _item_for(request, who)
    letter = item.letter()
    config, history = await _read(
        request,
        lambda s: (
            tenant_config.current(s, item.tenant_id) if item.tenant_id else None,
            dl.history(s, item_id=item.id),
        ),
    )
    explanation = explaining.explain(letter, config)
    return _render(
        request,
        "item.html",
        who,
        item=item,
        letter=letter,
        command=letter.command,
        explanation=explanation,
        history=history,
        raw=json.dumps(letter.command or letter.payload or {}, indent=2, sort_keys=True),
        original=letter.original().decode("utf-8", "replace"),
        flash=request.query.get("done"),
    )


async def item_retry(request: web.Request) -> web.StreamResponse:
    who = await _page_user(request)
    await _form(request, who)
    item = await _item_for(request, who)
    outcome = await _ctx(request).inbox.retry(item.id, who.name, who.scope)
    raise web.HTTPSeeOther(
        f"/inbox/items/{item.id}?" + urlencode({"done": f"{outcome.action}: {outcome.note}"})
    )


async def item_discard(request: web.Request) -> web.StreamResponse:
    who = await _page_user(request)
    form = await _form(request, who)
    item = await _item_for(request, who)
    reason = form.get("reason", "").strip()
    if not reason:
        raise web.HTTPSeeOther(f"/inbox/items/{item.id}?" + urlencode({"done": "Discard needs a reason."}))
    try:
        await asyncio.to_thread(_ctx(request).inbox.discard, item.id, who.name, reason, who.scope)
    except ValueError as exc:
        raise web.HTTPSeeOther(f"/inbox/items/{item.id}?" + urlencode({"done": str(exc)})) from exc
    raise web.HTTPSeeOther(f"/inbox/items/{item.id}?" + urlencode({"done": "discarded"}))


async def retry_matching(request: web.Request) -> web.StreamResponse:
    who = await _page_user(request)
    form = await _form(request, who)
    filters = _filters(form, who)
    if filters.tenant and not who.may_see(filters.tenant):
        raise web.HTTPNotFound(text="no such tenant")
    outcomes = await _ctx(request).inbox.retry_matching(filters, who.name)
    counts = summarize(outcomes)
    done = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing to retry"
    params = {k: v for k, v in form.items() if k in ("tenant", "ledger", "reason", "since", "until") and v}
    raise web.HTTPSeeOther("/inbox?" + urlencode({**params, "status": "all", "done": f"Retry all: {done}"}))


async def config_page(request: web.Request) -> web.Response:
    who = await _page_user(request)
    tenant = request.match_info["tenant"]
    if not who.may_see(tenant):
        raise web.HTTPNotFound(text="no such tenant")
    config = await _read(request, lambda s: tenant_config.current(s, tenant))
    if config is None:
        raise web.HTTPNotFound(text="no such tenant")
    text = tenant_config.to_yaml(config)
    return _render(
        request,
        "config.html",
        who,
        tenant=tenant,
        text=text,
        version=config.version,
        problems=[],
        changes=[],
        back=request.query.get("back", ""),
    )


async def config_save(request: web.Request) -> web.Response:
    who = await _page_user(request)
    form = await _form(request, who)
    tenant = request.match_info["tenant"]
    if not who.may_see(tenant):
        raise web.HTTPNotFound(text="no such tenant")
    ctx = _ctx(request)
    text = form.get("config", "")
    problems: list[str] = []
    changes: list[str] = []
    version = None
    try:
        config = tenant_config.load_yaml(text, source="config")
        if config.tenant_id != tenant:
            raise ConfigError([f"config: tenant_id must stay {tenant!r}"])
        comment = form.get("comment") or "edited in the inbox"

        def save(s: DbSession) -> tuple[int, list[str]]:
            result = tenant_config.apply(s, config, who.name, comment, topic=ctx.applied_topic)
            changes = result.changes if not result.unchanged else ["(no change)"]
            dl.audit(
                s,
                who.name,
                "config_saved",
                tenant_id=tenant,
                detail=f"version {result.version}: " + "; ".join(changes)[:2000],
            )
            return result.version, changes

        version, changes = await _write(request, save)
    except ConfigError as exc:
        problems = exc.problems
    status = 400 if problems else 200
    return _render(
        request,
        "config.html",
        who,
        status=status,
        tenant=tenant,
        text=text,
        version=version,
        problems=problems,
        changes=changes,
        back=form.get("back", ""),
    )


async def history_page(request: web.Request) -> web.Response:
    who = await _page_user(request)
    entries = await _read(request, lambda s: dl.history(s, tenants=who.scope, limit=500))
    return _render(request, "history.html", who, entries=entries)


# --------------------------------------------------------------------------- JSON API


async def _api_user(request: web.Request, post: bool = False) -> Who:
    ctx = _ctx(request)
    header = request.headers.get("Authorization", "")
    if header:
        if bearer_ok(header, ctx.api_token):
            return Who("api-token", "admin", (), None)
        raise _json_error(401, "unauthorized")
    who = await _who(request)
    if who is None:
        raise _json_error(401, "unauthorized")
    if post and not csrf_ok(who.session, request.headers.get("X-CSRF-Token")):
        raise _json_error(403, "missing or invalid X-CSRF-Token")
    return who


def _json_error(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return cls[status](text=json.dumps({"error": message}), content_type="application/json", headers=headers)


API_LIMIT, API_MAX_LIMIT = 200, 500


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return API_LIMIT
    if not (len(value) <= 3 and value.isascii() and value.isdigit()) or not 1 <= int(value) <= API_MAX_LIMIT:
        raise _json_error(400, f"limit must be a whole number from 1 to {API_MAX_LIMIT}, not {value[:40]!r}")
    return int(value)


async def api_list(request: web.Request) -> web.Response:
    who = await _api_user(request)
    filters = _filters(request.query, who)
    limit = _limit(request.query.get("limit"))
    items, counts = await _read(
        request, lambda s: (dl.search(s, filters, limit=limit), dl.counts_by_reason(s, filters))
    )
    return web.json_response({"items": [dl.to_json(i) for i in items], "counts": counts})


async def api_show(request: web.Request) -> web.Response:
    who = await _api_user(request)
    try:
        item = await _item_for(request, who)
    except web.HTTPNotFound:
        raise _json_error(404, "no such item") from None
    data = dl.to_json(item)
    data["record"] = json.loads(item.record)
    config = (
        await _read(request, lambda s: tenant_config.current(s, item.tenant_id)) if item.tenant_id else None
    )
    explanation = explaining.explain(item.letter(), config)
    data["explanation"] = {
        "headline": explanation.headline,
        "plain": [f.plain for f in explanation.findings],
        "fixes": list(explanation.fixes),
    }
    return web.json_response(data)


async def api_retry(request: web.Request) -> web.Response:
    who = await _api_user(request, post=True)
    try:
        item = await _item_for(request, who)
        outcome = await _ctx(request).inbox.retry(item.id, who.name, who.scope)
    except (web.HTTPNotFound, NotAllowed):
        raise _json_error(404, "no such item") from None
    return web.json_response({"id": outcome.item_id, "action": outcome.action, "note": outcome.note})


async def api_retry_matching(request: web.Request) -> web.Response:
    who = await _api_user(request, post=True)
    try:
        body = await request.json()
    except ValueError:
        raise _json_error(400, "expected a JSON object of filters") from None
    if not isinstance(body, dict):
        raise _json_error(400, "expected a JSON object of filters")
    filters = _filters(body, who)
    outcomes = await _ctx(request).inbox.retry_matching(filters, who.name)
    return web.json_response({"counts": summarize(outcomes), "items": [o.__dict__ for o in outcomes]})


# --------------------------------------------------------------------------- wiring


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/inbox")


ROUTES = (
    ("GET", "/inbox/login", login_form),
    ("POST", "/inbox/login", login),
    ("POST", "/inbox/logout", logout),
    ("GET", "/inbox", list_page),
    ("GET", "/inbox/", index),
    ("POST", "/inbox/retry", retry_matching),
    ("GET", "/inbox/items/{item_id}", item_page),
    ("POST", "/inbox/items/{item_id}/retry", item_retry),
    ("POST", "/inbox/items/{item_id}/discard", item_discard),
    ("GET", "/inbox/tenants/{tenant}/config", config_page),
    ("POST", "/inbox/tenants/{tenant}/config", config_save),
    ("GET", "/inbox/history", history_page),
    ("GET", "/api/dlq/items", api_list),
    ("GET", "/api/dlq/items/{item_id}", api_show),
    ("POST", "/api/dlq/items/{item_id}/retry", api_retry),
    ("POST", "/api/dlq/retry", api_retry_matching),
)


def mount(app: web.Application, ctx: Context) -> None:
    """Add the inbox routes to an aiohttp application (before it starts)."""
    app[CTX] = ctx
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)


def make_app(ctx: Context) -> web.Application:
    app = web.Application()
    mount(app, ctx)
    return app
