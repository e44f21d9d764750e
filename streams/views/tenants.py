"""Tenant configuration over HTTP, on the worker's web server (bearer token: `LEDGERSTREAM_API_TOKEN`).

    GET  /api/tenants                       every tenant with the version in effect
    GET  /api/tenants/{id}                  the config in effect (?version=N: a past one; ?format=yaml)
    GET  /api/tenants/{id}/history          every version: when, by whom, why
    PUT  /api/tenants/{id}                  body YAML (or JSON with Content-Type: application/json):
                                            validate, check against the ledger, diff, store
                                            ?dry_run=1  validate and diff only
                                            ?check_ledger=1 / 0  always / never (default: against
                                                        each ledger the tenant has an active connection to)
                                            ?by=NAME&comment=WHY  stored with the version (by: "api")
    GET  /api/tenants/{id}/loaded           what THIS worker's tenant-config table holds (the config the
                                            agents use), to confirm a change arrived

A PUT writes the version and its outbox row in one transaction, exactly like `ledgerstream
tenants apply`; the worker's leader timer (`agents.post.relay_outbox`, every 2 s) publishes it
to the compacted `tenant-config` topic and every worker's table picks it up.

Answers are JSON. Problems are 422 `{"error": ..., "problems": ["<source>:<line>: <field>: <why>"]}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from faust.web import View
from sqlalchemy.orm import Session, sessionmaker

from connectors.protocol import LedgerConnector
from schemas.tenant import TenantConfig
from store import tenant_config
from store.tenant_config import ConfigError
from streams.app import app, names, tenant_configs
from streams.commands.tenants import check_ledgers
from streams.database import sessions
from streams.views.auth import require_api_token

JSON_TYPES = ("application/json",)
MAX_BODY = 1_000_000

Result = tuple[int, Any]
"""(HTTP status, JSON document) of a handler below; the views only add transport."""


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.lower() in ("1", "true", "yes", "on")


def _not_found(tenant_id: str, version: int | None = None) -> Result:
    which = f" version {version}" if version is not None else ""
    return 404, {"error": f"no configuration for tenant {tenant_id!r}{which}"}


def _version_doc(info: tenant_config.VersionInfo) -> dict[str, Any]:
    return {
        "version": info.version,
        "sha256": info.sha256,
        "applied_at": info.applied_at.isoformat(),
        "applied_by": info.applied_by,
        "comment": info.comment,
    }


# --------------------------------------------------------------------------- handlers (database only)


def list_tenants(factory: sessionmaker[Session]) -> Result:
    with factory() as session:
        rows = []
        for config in tenant_config.all_current(session):
            last = tenant_config.history(session, config.tenant_id)[-1]
            rows.append(
                {
                    "tenant_id": config.tenant_id,
                    "name": config.name,
                    "version": config.version,
                    "ledgers": sorted(config.ledgers),
                    "applied_at": last.applied_at.isoformat(),
                    "applied_by": last.applied_by,
                }
            )
    return 200, {"tenants": rows}


def get_tenant(factory: sessionmaker[Session], tenant_id: str, version: int | None = None) -> Result:
    with factory() as session:
        if version is None:
            config = tenant_config.current(session, tenant_id)
        else:
            config = tenant_config.get_version(session, tenant_id, version)
        if config is None:
            return _not_found(tenant_id, version)
        [info] = [v for v in tenant_config.history(session, tenant_id) if v.version == config.version]
    return 200, {
        "tenant_id": tenant_id,
        **_version_doc(info),
        "config": config.model_dump(mode="json"),
    }


def get_history(factory: sessionmaker[Session], tenant_id: str) -> Result:
    with factory() as session:
        versions = tenant_config.history(session, tenant_id)
    if not versions:
        return _not_found(tenant_id)
    return 200, {"tenant_id": tenant_id, "versions": [_version_doc(v) for v in versions]}


def parse_body(tenant_id: str, body: bytes, content_type: str) -> TenantConfig:
    """The config in a PUT body; `ConfigError` names each bad field (and line, for YAML)."""
    source = f"PUT /api/tenants/{tenant_id}"
    if content_type in JSON_TYPES:
        config = tenant_config.load_json(body, source)
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{source}: the body is not UTF-8"]) from exc
        config = tenant_config.load_yaml(text, source)
    if config.tenant_id != tenant_id:
        found = config.tenant_id
        problem = f"{source}: tenant_id: {found!r} does not match the tenant in the URL ({tenant_id!r})"
        raise ConfigError([problem])
    return config


async def put_tenant(
    factory: sessionmaker[Session],
    tenant_id: str,
    body: bytes,
    content_type: str,
    query: dict[str, str],
    *,
    topic: str,
    connector_for: Callable[[str], LedgerConnector] | None = None,
) -> Result:
    """Validate, check against the ledger, diff and store; see the module docstring."""
    try:
        config = parse_body(tenant_id, body, content_type)
    except ConfigError as exc:
        return 422, {"error": "invalid tenant configuration", "problems": exc.problems}
    dry_run = bool(_flag(query.get("dry_run")))
    checked = await check_ledgers(factory, config, _flag(query.get("check_ledger")), connector_for)

    def write() -> tenant_config.ApplyResult:
        with factory.begin() as session:
            return tenant_config.apply(
                session,
                config,
                query.get("by") or "api",
                query.get("comment") or None,
                dry_run,
                check=checked.check,
                topic=topic,
            )

    try:
        result = await asyncio.to_thread(write)
    except ConfigError as exc:
        return 422, {"error": "rejected by the ledger check", "problems": exc.problems}
    created = result.version == 1 and not result.unchanged and not dry_run
    return 201 if created else 200, {
        "tenant_id": tenant_id,
        "version": result.version,
        "unchanged": result.unchanged,
        "dry_run": dry_run,
        "changes": result.changes,
        "checked_against": sorted(checked.catalogues),
        "not_checked": checked.skipped,
    }


def loaded(tenant_id: str) -> Result:
    """The config this worker's agents use now (its `tenant-config` global table)."""
    raw = tenant_configs.get(tenant_id)
    if not raw:
        return 404, {"error": f"tenant {tenant_id!r} is not loaded on this worker"}
    config = TenantConfig.model_validate_json(raw)
    return 200, {"tenant_id": tenant_id, "version": config.version, "config": config.model_dump(mode="json")}


# --------------------------------------------------------------------------- views


def _respond(result: Result) -> web.Response:
    status, document = result
    return web.json_response(document, status=status)


_connectors: dict[str, LedgerConnector] = {}


def _connector_for(ledger: str) -> LedgerConnector:
    """One connector per ledger for this worker's checks (its HTTP client is reused)."""
    from connectors import registry

    if ledger not in _connectors:
        _connectors[ledger] = registry.build(ledger, sessions())
    return _connectors[ledger]


@app.page("/api/tenants")
class Tenants(View):
    async def get(self, request: web.Request) -> web.Response:
        require_api_token(request)
        return _respond(await asyncio.to_thread(list_tenants, sessions()))


@app.page("/api/tenants/{tenant_id}")
class TenantConfigView(View):
    async def get(self, request: web.Request, tenant_id: str) -> web.Response:
        require_api_token(request)
        raw = request.query.get("version")
        if raw is not None and not raw.isdigit():
            return _respond((400, {"error": "version must be a positive integer"}))
        version = int(raw) if raw is not None else None
        status, document = await asyncio.to_thread(get_tenant, sessions(), tenant_id, version)
        if status == 200 and request.query.get("format") == "yaml":
            text = tenant_config.to_yaml(TenantConfig.model_validate(document["config"]))
            return web.Response(text=text, content_type="application/yaml")
        return _respond((status, document))

    async def put(self, request: web.Request, tenant_id: str) -> web.Response:
        require_api_token(request)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _respond((413, {"error": f"a tenant configuration is at most {MAX_BODY} bytes"}))
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _respond((413, {"error": f"a tenant configuration is at most {MAX_BODY} bytes"}))
        result = await put_tenant(
            sessions(),
            tenant_id,
            body,
            request.content_type,
            dict(request.query),
            topic=names.tenant_config,
            connector_for=_connector_for,
        )
        return _respond(result)


@app.page("/api/tenants/{tenant_id}/history")
class TenantHistory(View):
    async def get(self, request: web.Request, tenant_id: str) -> web.Response:
        require_api_token(request)
        return _respond(await asyncio.to_thread(get_history, sessions(), tenant_id))


@app.page("/api/tenants/{tenant_id}/loaded")
class TenantLoaded(View):
    async def get(self, request: web.Request, tenant_id: str) -> web.Response:
        require_api_token(request)
        return _respond(loaded(tenant_id))
