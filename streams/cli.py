"""The `ledgerstream` command: Faust's CLI (`worker`, `agents`, ...) plus our own groups."""

from __future__ import annotations

from faust.cli.faust import cli

from streams.commands.schemas import schemas_group
from streams.commands.tenants import tenants

_GROUPS = (schemas_group, tenants)


def main() -> None:
    """Load the agents onto the app, add our command groups, run the CLI."""
    import agents.post

    import agents.enrich  # noqa: F401  (registers the agents)
    import streams.web  # noqa: F401  (registers the web views)
    from streams.app import app

    for group in _GROUPS:
        cli.add_command(group)
    app.main()
