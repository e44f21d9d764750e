"""The `ledgerstream` command: Faust's CLI (`worker`, `agents`, ...) plus our own groups."""

from __future__ import annotations

from importlib import import_module

import click
from faust.cli.faust import cli

# Modules that register agents, timers and web views on the app when imported.
APP_MODULES = (
    "agents.enrich",
    "agents.post",
    "agents.summary",
    "agents.maintenance",
    "streams.views.metrics",
    "agents.dead_letter_store",
    "agents.alerts",
    "streams.views.xero",
    "streams.views.tenants",
)

# (module, click group attribute) of our command groups.
COMMAND_GROUPS = (
    ("streams.commands.schemas", "schemas_group"),
    ("streams.commands.tenants", "tenants"),
    ("streams.commands.dlq", "dlq"),
    ("streams.commands.xero", "xero_group"),
)


def main() -> None:
    """Load the agents onto the app, add our command groups, run the CLI."""
    for name in APP_MODULES:
        import_module(name)
    for module, attr in COMMAND_GROUPS:
        group = getattr(import_module(module), attr)
        assert isinstance(group, click.Group)
        cli.add_command(group)
    from streams.app import app

    app.main()
