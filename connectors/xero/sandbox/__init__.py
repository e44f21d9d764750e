"""Xero sandbox: an aiohttp server following Xero's identity and Accounting API contract
(tokens, tenants, limits, idempotency, validation envelopes) for tests and demos.

Modules: `config` (seed and knobs), `state` (clock, orgs, tokens), `oauth` (identity),
`gateway` (auth → tenant → limits → faults → idempotency), `accounting` (handlers),
`documents`/`payments`/`banking`/`totals` (Xero's rules), `queries` (where/paging), `limits`,
`idempotency`, `faults`, `admin` (`/__sandbox/*`), `wire` (JSON/Decimal/dates), `app`.
"""

from connectors.xero.sandbox.app import create_app, sandbox_state
from connectors.xero.sandbox.config import SandboxConfig, default_config
from connectors.xero.sandbox.state import Clock

__all__ = ["Clock", "SandboxConfig", "create_app", "default_config", "sandbox_state"]
