"""Validate Xero request bodies against the official OpenAPI spec (`xero_accounting.yaml`).

Reusable by integration tests: `XeroSpec.load().validate_request("PUT", "/Invoices", body)`
checks a body against the operation's request schema; `validate("Invoices", body)` against a
named component. `$ref`s to `#/components/schemas/...` are resolved with `referencing`;
OpenAPI-only keywords (`x-*`, `readOnly`, `externalDocs`, `example`) are ignored by jsonschema.
Bodies are validated as decoded from the bytes on the wire (numbers as Decimal).
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path(__file__).resolve().parents[3].parent / "shared/contracts/xero/xero_accounting.yaml"
if not SPEC_PATH.exists():  # a checkout with the contracts next to the repo
    SPEC_PATH = Path(__file__).resolve().parents[4] / "shared" / "contracts" / "xero" / "xero_accounting.yaml"
SPEC_URI = "urn:xero-accounting"

_TYPES = jsonschema.Draft4Validator.TYPE_CHECKER.redefine(
    "number", lambda _checker, value: isinstance(value, int | float | Decimal) and not isinstance(value, bool)
)
Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, type_checker=_TYPES)


class XeroSpec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource(contents=document, specification=DRAFT4)
        self.registry: Registry = Registry().with_resource(SPEC_URI, resource)

    @classmethod
    @functools.cache
    def load(cls, path: Path = SPEC_PATH) -> XeroSpec:
        return cls(yaml.safe_load(path.read_text()))

    def validate(self, component: str, instance: Any) -> None:
        """Raise jsonschema.ValidationError unless `instance` matches `#/components/schemas/<component>`."""
        schema = {"$ref": f"{SPEC_URI}#/components/schemas/{component}"}
        Validator(schema, registry=self.registry).validate(instance)

    def request_schema(self, method: str, path: str) -> dict[str, Any] | None:
        """The request-body schema of the operation matching `path` (`/CreditNotes/<id>/Allocations`)."""
        for template, item in self.document["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path) and method.lower() in item:
                op = item[method.lower()]
                body = op.get("requestBody")
                if body is None:
                    return None
                if "$ref" in body:
                    name = body["$ref"].rsplit("/", 1)[-1]
                    body = self.document["components"]["requestBodies"][name]
                return body["content"]["application/json"]["schema"]
        raise KeyError(f"no {method} {path} in the Xero spec")

    def validate_request(self, method: str, path: str, body: Any) -> None:
        schema = self.request_schema(method, path)
        if schema is None:
            return
        schema = {"$ref": f"{SPEC_URI}{schema['$ref']}"} if "$ref" in schema else schema
        Validator(schema, registry=self.registry).validate(body)
