"""The published event contract: examples, malformed examples, README, exported JSON Schema."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from schemas import export
from schemas.events import EVENT_MODELS, parse_event

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
EXAMPLES = SCHEMAS / "examples"
VALID = sorted(EXAMPLES.glob("*.json"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))
README = (SCHEMAS / "README.md").read_text()
KINDS = {model.model_fields["type"].default for model in EVENT_MODELS}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _field(loc: tuple[str | int, ...], event_type: str | None) -> str:
    """An error location as documented: without the leading event type tag; '(event)' when empty."""
    if loc and loc[0] == event_type:
        loc = loc[1:]
    return ".".join(str(part) for part in loc) or "(event)"


def test_there_is_an_example_of_every_event_kind_and_of_each_refund_and_fulfillment_shape() -> None:
    events = [_load(path) for path in VALID]
    assert {event["type"] for event in events} == KINDS
    refunds = [e for e in events if e["type"] == "order.refunded"]
    assert any(e.get("lines") and not e.get("shipping") and not e.get("amount_only") for e in refunds)
    assert any(e.get("shipping") and not e.get("lines") for e in refunds)
    assert any(e.get("amount_only") and not e.get("lines") for e in refunds)
    fulfilled = {p.stem: _load(p) for p in VALID if p.stem.startswith("order.fulfilled")}
    placed = _load(EXAMPLES / "order.placed.json")["order"]["lines"]
    ordered = {line["line_id"]: line["quantity"] for line in placed}
    shipped = {name: {ln["line_id"]: ln["quantity"] for ln in e["lines"]} for name, e in fulfilled.items()}
    assert shipped["order.fulfilled.full"] == ordered
    assert shipped["order.fulfilled.partial"] != ordered


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_every_example_is_a_valid_event(path: Path) -> None:
    event = parse_event(path.read_text())
    assert event.type == _load(path)["type"]
    assert event.schema_version == 1
    assert event.occurred_at.tzinfo is not None


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_every_example_validates_against_its_published_json_schema(path: Path) -> None:
    event = _load(path)
    schema = _load(SCHEMAS / "json" / f"event.{event['type']}.v1.json")
    jsonschema.validate(event, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_every_malformed_example_fails_naming_its_field(path: Path) -> None:
    case = _load(path)
    with pytest.raises(ValidationError) as caught:
        parse_event(json.dumps(case["event"]))
    errors = [(_field(e["loc"], case["event"].get("type")), e["msg"]) for e in caught.value.errors()]
    assert any(
        field == case["error_field"] and case["error_contains"] in message for field, message in errors
    ), errors
    if case["error_field"] != "(event)":
        assert case["error_field"] in str(caught.value)  # what a producer reads names the field


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_malformed_examples_differ_from_a_valid_one_in_the_documented_way(path: Path) -> None:
    """Each malformed example is a valid example with one defect, so it tests one rule."""
    event = _load(path)["event"]
    nearest = min(VALID, key=lambda p: len(_diff(_load(p), event)))
    assert len(_diff(_load(nearest), event)) == 1, _diff(_load(nearest), event)


def _diff(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in a.keys() | b.keys() for d in _diff(a.get(k, ...), b.get(k, ...), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}.{i}")]
    return [] if a == b and type(a) is type(b) else [path]


MONEY_AS_FLOAT = [
    ("order.placed.json", ("order", "lines", 0, "unit_price"), "order.lines.0.unit_price"),
    ("order.placed.json", ("order", "total"), "order.total"),
    ("order.placed.json", ("order", "shipping_lines", 0, "price"), "order.shipping_lines.0.price"),
    ("order.placed.json", ("order", "lines", 0, "tax_lines", 0, "rate"), "order.lines.0.tax_lines.0.rate"),
    ("order.fulfilled.partial.json", ("lines", 1, "quantity"), "lines.1.quantity"),
    ("order.refunded.shipping.json", ("shipping",), "shipping"),
    ("order.refunded.amount-only.json", ("amount_only",), "amount_only"),
    ("payment.captured.json", ("amount",), "amount"),
    ("payment.captured.json", ("fee",), "fee"),
]


@pytest.mark.parametrize(("file", "loc", "field"), MONEY_AS_FLOAT, ids=[m[2] for m in MONEY_AS_FLOAT])
def test_money_as_a_json_float_is_rejected_by_the_model_and_the_published_schema(
    file: str, loc: tuple[str | int, ...], field: str
) -> None:
    event = _load(EXAMPLES / file)
    parent = event
    for part in loc[:-1]:
        parent = parent[part]
    as_string = parent[loc[-1]]
    parent[loc[-1]] = float(Decimal(as_string))  # the same value, as a JSON number: 12.0, 46.8, ...
    raw = json.dumps(event)
    assert re.search(rf'"{loc[-1]}": [0-9.]+[,}}]', raw)  # really a bare number on the wire

    with pytest.raises(ValidationError) as caught:
        parse_event(raw)
    [error] = caught.value.errors()
    assert _field(error["loc"], event["type"]) == field
    assert "not a float" in error["msg"]

    schema = _load(SCHEMAS / "json" / f"event.{event['type']}.v1.json")
    validator = jsonschema.Draft202012Validator(schema)
    [schema_error] = list(validator.iter_errors(json.loads(raw)))
    assert tuple(schema_error.absolute_path) == loc


def test_exported_json_schemas_are_committed_and_in_sync() -> None:
    documents = export.documents()
    committed = {path.name for path in (SCHEMAS / "json").glob("*.json")}
    assert committed == set(documents), "run `ledgerstream schemas export` and commit schemas/json/"
    for name, doc in documents.items():
        assert (SCHEMAS / "json" / name).read_text() == export.render(doc), (
            f"{name} is stale: run `ledgerstream schemas export` and commit schemas/json/"
        )
        jsonschema.Draft202012Validator.check_schema(doc)


def test_every_published_money_field_is_a_decimal_string_never_a_number() -> None:
    """No `"type": "number"` anywhere in the published schemas: money is never a float."""

    def walk(node: object) -> list[object]:
        if isinstance(node, dict):
            return [node.get("type"), *[t for v in node.values() for t in walk(v)]]
        if isinstance(node, list):
            return [t for v in node for t in walk(v)]
        return []

    for name, doc in export.documents().items():
        assert "number" not in walk(doc), name


# ------------------------------------------------------------------ README ⇄ files


def _readme_json_blocks() -> list[object]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", README, flags=re.S)]


def test_every_json_block_in_the_readme_is_an_example_file_and_every_example_is_quoted() -> None:
    files = {p.relative_to(EXAMPLES).as_posix(): _load(p) for p in [*VALID, *INVALID]}
    blocks = _readme_json_blocks()
    assert blocks, "no ```json blocks found in schemas/README.md"
    for block in blocks:
        assert block in files.values(), f"README block is not an example file: {json.dumps(block)[:120]}"
    for name, content in files.items():
        if name.startswith("invalid/"):
            assert f"`{Path(name).name}`" in README, f"{name} is not listed in the README"
        else:
            assert content in blocks, f"{name} is not quoted in the README"
            assert f"`schemas/examples/{name}`" in README


def test_readme_lists_each_malformed_example_with_its_field_and_message() -> None:
    for path in INVALID:
        case = _load(path)
        row = f"| `{path.name}` | `{case['error_field']}` | `{case['error_contains']}` |"
        assert row in README, row


def test_readme_quotes_the_real_error_for_money_as_a_float() -> None:
    case = _load(EXAMPLES / "invalid" / "money-as-float.json")
    with pytest.raises(ValidationError) as caught:
        parse_event(json.dumps(case["event"]))
    [quoted] = re.findall(r"```text\n(.*?)```", README, flags=re.S)
    for line in quoted.strip().splitlines():
        assert line in str(caught.value)


def test_readme_names_the_topics_and_keys_of_streams_topics() -> None:
    from streams.topics import TopicNames

    names = TopicNames()
    for topic in (names.orders, names.dead_letter, names.tenant_config, "ledger.<ledger>.commands"):
        assert f"`{topic}`" in README
    assert names.commands("xero") == "ledger.xero.commands"
