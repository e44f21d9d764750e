"""`ledgerstream schemas export DIR`: write the JSON Schema of every contract."""

from __future__ import annotations

from pathlib import Path

import click

from schemas.export import JSON_DIR, export


@click.group("schemas")
def schemas_group() -> None:
    """Published JSON Schemas of events, commands, dead letters and tenant config."""


@schemas_group.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=JSON_DIR)
def export_command(directory: Path) -> None:
    """Write one JSON Schema file per contract into DIRECTORY."""
    for path in export(directory):
        click.echo(path)
