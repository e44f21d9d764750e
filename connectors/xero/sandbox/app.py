"""Builds the sandbox aiohttp application: identity, Accounting API and admin routes."""

from __future__ import annotations

from aiohttp import web

from connectors.xero.sandbox import accounting, admin, oauth
from connectors.xero.sandbox.config import SandboxConfig, default_config
from connectors.xero.sandbox.gateway import api_gateway
from connectors.xero.sandbox.oauth import STATE_KEY
from connectors.xero.sandbox.state import Clock, SandboxState


def create_app(config: SandboxConfig | None = None, clock: Clock | None = None) -> web.Application:
    """A Xero sandbox serving identity, `/connections`, `/api.xro/2.0/*` and `/__sandbox/*`."""
    config = config or default_config()
    app = web.Application(middlewares=[api_gateway], client_max_size=config.max_body_bytes * 2)
    app[STATE_KEY] = SandboxState(config, clock)
    oauth.add_routes(app)
    accounting.add_routes(app)
    if config.admin_enabled:
        admin.add_routes(app)
    return app


def sandbox_state(app: web.Application) -> SandboxState:
    """The state behind an app built by `create_app` (for in-process tests)."""
    return app[STATE_KEY]
