"""JSON Schema for every published contract: events in, commands, dead letters, tenant config."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter

from schemas.commands import PostingCommand
from schemas.dead_letter import DeadLetter
from schemas.events import EVENT_MODELS
from schemas.tenant import TenantConfig

JSON_DIR = Path(__file__).with_name("json")


def documents() -> dict[str, dict]:
    """File name → JSON Schema document, for every contract."""
    docs: dict[str, dict] = {}
    for model in EVENT_MODELS:
        name = model.model_fields["type"].default
        docs[f"event.{name}.v1.json"] = model.model_json_schema(mode="validation")
    docs["posting-command.v1.json"] = TypeAdapter(PostingCommand).json_schema(mode="serialization")
    docs["dead-letter.v1.json"] = DeadLetter.model_json_schema(mode="serialization")
    docs["tenant-config.v1.json"] = TenantConfig.model_json_schema(mode="validation")
    return docs


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def export(directory: Path = JSON_DIR) -> list[Path]:
    """Write every schema into `directory`; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in documents().items():
        path = directory / name
        path.write_text(render(doc))
        written.append(path)
    return written
