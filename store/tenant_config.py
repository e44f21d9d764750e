"""Tenant configuration as a managed, versioned store.

Finance writes a tenant's mappings as YAML; `load_yaml` validates it and names every
bad field with its line; `apply` stores a new version only when the canonical JSON
changed and, in the same transaction, puts the new config in the outbox for the
compacted `tenant-config` topic that the agents read.

    text ──load_yaml──▶ TenantConfig ──apply──▶ tenant_config_versions (n + 1)
                                              └▶ outbox (topic, tenant id, config JSON)

Errors: `ConfigError` (a `ValueError`) carries one problem per line in `problems`.

YAML scalars are read as written: `code: 090`, `country: NO` and `rate: 5.5` stay the
strings "090", "NO" and "5.5" (no octal, no Norway problem, no floats for money) and
pydantic converts them; only `null`, `~` and empty values become None.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schemas.ledger import LedgerAccount, LedgerTaxRate
from schemas.tenant import TaxCode, TenantConfig
from store.base import utcnow
from store.outbox import enqueue
from store.tenants import Tenant, TenantConfigVersion

DEFAULT_TOPIC = "tenant-config"

Check = Callable[[TenantConfig], Sequence[str]]
"""A validator run before anything is written, e.g. the codes against the ledger: returns problems."""


class ConfigError(ValueError):
    """An invalid tenant configuration; `problems` has one readable line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ApplyResult:
    version: int
    """The version now in effect (or, for a dry run that changes something, the one it would write)."""
    changes: list[str]
    unchanged: bool
    config: TenantConfig | None = None
    """The config as stored (its `version` set); None for a dry run."""
    dry_run: bool = False


@dataclass(frozen=True)
class VersionInfo:
    tenant_id: str
    version: int
    sha256: str
    applied_at: datetime
    applied_by: str
    comment: str | None = None


# --------------------------------------------------------------------------- YAML in


class _Loader(yaml.SafeLoader):
    """SafeLoader that resolves plain scalars to strings, except null (and `<<` merge keys)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag.endswith((":null", ":merge"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"

Path = tuple[str | int, ...]


class _Builder:
    """Turns a composed YAML node tree into plain data and remembers each path's line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[Path, int] = {}
        self.problems: list[str] = []

    def build(self, node: yaml.Node, path: Path = ()) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.build(item, (*path, index)))
            return items
        if node.tag == _NULL:
            return None
        return node.value

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged = {**self._mapping(source, path), **merged}
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(f"{self._at(key_node)}: {_dotted(path)}: keys must be plain names")
                continue
            key = key_node.value
            if key in result:
                self.problems.append(f"{self._at(key_node)}: {_dotted((*path, key))}: duplicate key")
                continue
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*path, key))
        return {**merged, **result}

    def _at(self, node: yaml.Node) -> str:
        return f"{self.source}:{node.start_mark.line + 1}"

    def line_of(self, loc: Iterable[str | int]) -> int:
        """The line of the deepest part of `loc` present in the YAML (a missing field: its parent)."""
        path: Path = ()
        line = 1
        for part in loc:
            if (*path, part) in self.lines:
                path = (*path, part)
                line = self.lines[path]
            # parts absent from the YAML (a missing field, '[key]', a union tag) are skipped
        return line


def _dotted(loc: Iterable[str | int]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith("[") or not text:  # pydantic's '[key]' for a bad dict key
            text += part
        else:
            text += f".{part}"
    return text or "(top)"


def load_yaml(text: str, source: str = "<input>") -> TenantConfig:
    """Parse and validate a tenant config; `ConfigError` names each bad field and its line."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{source}:{line}: invalid YAML: {problem}"]) from exc
    if not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1 if root is not None else 1
        raise ConfigError([f"{source}:{line}: expected a mapping of tenant settings at the top level"])
    builder = _Builder(source)
    data = builder.build(root)
    if builder.problems:
        raise ConfigError(builder.problems)
    try:
        return TenantConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{source}:{builder.line_of(error['loc'])}: {_dotted(error['loc'])}: {message}")
        raise ConfigError(problems) from exc


def load_json(text: str | bytes, source: str = "<input>") -> TenantConfig:
    """Parse and validate a tenant config sent as JSON (the HTTP API); `ConfigError` names each field.

    Amounts such as tax rates must be strings or integers here: a JSON float is rejected, as in events.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", 1)
        raise ConfigError([f"{source}:{line}: invalid JSON: {getattr(exc, 'msg', exc)}"]) from exc
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected an object of tenant settings at the top level"])
    try:
        return TenantConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [
                f"{source}: {_dotted(error['loc'])}: {error['msg'].removeprefix('Value error, ')}"
                for error in exc.errors(include_url=False)
            ]
        ) from exc


# --------------------------------------------------------------------------- canonical form, YAML out


def _plain(model: Any, dumped: Any) -> Any:
    """JSON data of a model in field order, dict keys sorted, Decimals normalised ("20.0" → "20")."""
    if isinstance(model, BaseModel):
        return {name: _plain(getattr(model, name), dumped[name]) for name in dumped}
    if isinstance(model, dict):
        return {key: _plain(model[key], dumped[key]) for key in sorted(dumped)}
    if isinstance(model, list | tuple):
        return [_plain(m, d) for m, d in zip(model, dumped, strict=True)]
    if isinstance(model, Decimal):
        return format(model.normalize(), "f")
    return dumped


def _data(config: TenantConfig) -> dict[str, Any]:
    return _plain(config, config.model_dump(mode="json"))


def canonical_json(config: TenantConfig) -> str:
    """The stored form: sorted keys, no spaces, normalised decimals (includes `version`)."""
    return json.dumps(_data(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(config: TenantConfig) -> str:
    """sha256 of the canonical JSON without `version`: equal for configs that mean the same."""
    return hashlib.sha256(canonical_json(config.model_copy(update={"version": 0})).encode()).hexdigest()


class _Dumper(yaml.SafeDumper):
    pass


_NUMBERISH = re.compile(r"^[-+]?[0-9][0-9_.:eE+-]*$")


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Multi-line strings as blocks; number-like codes quoted ("090", which YAML 1.2 reads as 90)."""
    style = "|" if "\n" in value else ("'" if _NUMBERISH.match(value) else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def to_yaml(config: TenantConfig) -> str:
    """YAML that `load_yaml` reads back to an equal config: field order, sorted dict keys."""
    return yaml.dump(_data(config), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


# --------------------------------------------------------------------------- diff

_LIST_KEYS: dict[str, tuple[str, ...]] = {
    "rules": ("country", "region", "postcode_prefix"),
    "payments": ("gateway", "currency"),
}


def _inline(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_inline(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return str(value)


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs; items of keyed lists (tax rules, payment accounts) are `name[key]` subtrees."""
    name = path.rsplit(".", 1)[-1]
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and name in _LIST_KEYS and all(isinstance(v, dict) for v in value):
        for item in value:
            label = "/".join(str(item[k]) for k in _LIST_KEYS[name] if item.get(k) is not None)
            yield f"{path}[{label}]", item
    elif value is not None:
        yield path, value


def _leaves(config: TenantConfig | None) -> dict[str, Any]:
    if config is None:
        return {}
    data = _data(config)
    data.pop("version")
    leaves: dict[str, Any] = {}
    for path, value in _flatten(data):
        if path in leaves:  # two list items with the same key: keep both, distinguishable
            path = f"{path}#{sum(p.startswith(path) for p in leaves) + 1}"
        leaves[path] = value
    return leaves


def diff(old: TenantConfig | None, new: TenantConfig) -> list[str]:
    """Readable changes from `old` to `new`, one line per path: `a.b: x → y`, `+ a.c: z`, `- a.d: w`."""
    before, after = _leaves(old), _leaves(new)
    lines: list[tuple[float, str]] = []
    order = {path: i for i, path in enumerate(after)}
    position = -1.0
    for path, value in before.items():  # removed paths go right after their old neighbour
        if path in order:
            position = order[path]
        else:
            lines.append((position + 0.5, f"- {path}: {_inline(value)}"))
    for path, value in after.items():
        if path not in before:
            lines.append((order[path], f"+ {path}: {_inline(value)}"))
        elif isinstance(value, dict) and before[path] != value:  # a keyed list item that changed
            for sub, (a, b) in _pairs(before[path], value).items():
                lines.append((order[path], _change(f"{path}.{sub}", a, b)))
        elif before[path] != value:
            lines.append((order[path], f"{path}: {_inline(before[path])} → {_inline(value)}"))
    return [line for _, line in sorted(lines, key=lambda pair: pair[0])]


def _pairs(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    a, b = dict(_flatten(old)), dict(_flatten(new))
    return {p: (a.get(p), b.get(p)) for p in [*a, *[p for p in b if p not in a]] if a.get(p) != b.get(p)}


def _change(path: str, old: Any, new: Any) -> str:
    if old is None:
        return f"+ {path}: {_inline(new)}"
    if new is None:
        return f"- {path}: {_inline(old)}"
    return f"{path}: {_inline(old)} → {_inline(new)}"


# --------------------------------------------------------------------------- store


def _latest(session: Session, tenant_id: str) -> TenantConfigVersion | None:
    return session.scalar(
        select(TenantConfigVersion)
        .where(TenantConfigVersion.tenant_id == tenant_id)
        .order_by(TenantConfigVersion.version.desc())
        .limit(1)
    )


def _config(row: TenantConfigVersion) -> TenantConfig:
    return TenantConfig.model_validate_json(row.config)


def apply(
    session: Session,
    config: TenantConfig,
    applied_by: str,
    comment: str | None = None,
    dry_run: bool = False,
    *,
    check: Check | None = None,
    topic: str = DEFAULT_TOPIC,
) -> ApplyResult:
    """Store `config` as the tenant's next version if it differs from the current one.

    Writes the tenant, the version and the outbox message in the caller's transaction
    (flushes, never commits): `with sessions.begin() as s: apply(s, ...)`. `check` runs on
    every call, unchanged configs included; its problems raise `ConfigError` before anything
    is written. `config.version` is ignored. The tenant row is locked (`FOR UPDATE` on
    PostgreSQL) so concurrent applies to one tenant number their versions one after another.
    """
    if check is not None and (problems := list(check(config))):
        raise ConfigError(problems)
    tenant = session.scalar(select(Tenant).where(Tenant.id == config.tenant_id).with_for_update())
    latest = _latest(session, config.tenant_id) if tenant is not None else None
    previous = _config(latest) if latest is not None else None
    sha = fingerprint(config)
    if latest is not None and latest.sha256 == sha:
        return ApplyResult(latest.version, [], unchanged=True, config=previous, dry_run=dry_run)
    version = (latest.version if latest is not None else 0) + 1
    changes = diff(previous, config)
    if dry_run:
        return ApplyResult(version, changes, unchanged=False, dry_run=True)

    stored = config.model_copy(update={"version": version})
    document = canonical_json(stored)
    if tenant is None:
        session.add(Tenant(id=config.tenant_id, name=config.name))
    else:
        tenant.name = config.name
        tenant.updated_at = utcnow()
    session.flush()  # the tenant row first: the version row references it
    session.add(
        TenantConfigVersion(
            tenant_id=config.tenant_id,
            version=version,
            config=document,
            sha256=sha,
            applied_by=applied_by,
            comment=comment,
        )
    )
    enqueue(session, topic, config.tenant_id.encode(), document.encode())
    session.flush()
    return ApplyResult(version, changes, unchanged=False, config=TenantConfig.model_validate_json(document))


def current(session: Session, tenant_id: str) -> TenantConfig | None:
    """The version in effect, or None for an unknown tenant."""
    row = _latest(session, tenant_id)
    return _config(row) if row is not None else None


def get_version(session: Session, tenant_id: str, version: int) -> TenantConfig | None:
    row = session.get(TenantConfigVersion, (tenant_id, version))
    return _config(row) if row is not None else None


def history(session: Session, tenant_id: str) -> list[VersionInfo]:
    """Every version of a tenant's config, oldest first."""
    rows = session.scalars(
        select(TenantConfigVersion)
        .where(TenantConfigVersion.tenant_id == tenant_id)
        .order_by(TenantConfigVersion.version)
    )
    return [
        VersionInfo(r.tenant_id, r.version, r.sha256, r.applied_at, r.applied_by, r.comment) for r in rows
    ]


def all_current(session: Session) -> list[TenantConfig]:
    """The config in effect for every tenant, by tenant id (what a worker loads at start)."""
    latest = (
        select(TenantConfigVersion.tenant_id, func.max(TenantConfigVersion.version).label("version"))
        .group_by(TenantConfigVersion.tenant_id)
        .subquery()
    )
    rows = session.scalars(
        select(TenantConfigVersion)
        .join(
            latest,
            (TenantConfigVersion.tenant_id == latest.c.tenant_id)
            & (TenantConfigVersion.version == latest.c.version),
        )
        .order_by(TenantConfigVersion.tenant_id)
    )
    return [_config(row) for row in rows]


# --------------------------------------------------------------------------- checks against a ledger


@dataclass
class LedgerCatalogue:
    """What one ledger organisation offers: its tax rates and chart of accounts."""

    tax_rates: Sequence[LedgerTaxRate]
    accounts: Sequence[LedgerAccount]
    _rates: dict[str, LedgerTaxRate] = field(init=False, repr=False)
    _accounts: dict[str, LedgerAccount] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rates = {r.code: r for r in self.tax_rates}
        self._accounts = {a.code: a for a in self.accounts}


def ledger_problems(config: TenantConfig, ledgers: dict[str, LedgerCatalogue]) -> list[str]:
    """Codes the ledgers do not have, have archived, or carry at another rate; pure, for `check`.

    `ledgers` maps a ledger name to its catalogue (fetched with the connector's
    `tax_rates()` / `accounts()`); ledgers of the config without a catalogue are skipped.
    """
    problems: list[str] = []
    for name, mapping in config.ledgers.items():
        catalogue = ledgers.get(name)
        if catalogue is None:
            continue
        base = f"ledgers.{name}"
        tax = mapping.tax
        codes: list[tuple[str, TaxCode]] = [(f"{base}.tax.fallback", tax.fallback)]
        for label in ("exempt", "reverse_charge", "no_tax"):
            if (code := getattr(tax, label)) is not None:
                codes.append((f"{base}.tax.{label}", code))
        codes += [(f"{base}.tax.rules[{i}].tax", rule.tax) for i, rule in enumerate(tax.rules)]
        for path, code in codes:
            rate = catalogue._rates.get(code.code)
            if rate is None:
                problems.append(f"{path}.code: tax rate {code.code!r} does not exist in {name}")
            elif not rate.active:
                problems.append(f"{path}.code: tax rate {code.code!r} is archived in {name}")
            elif rate.rate != code.rate:
                problems.append(
                    f"{path}.rate: {code.code!r} is {format(rate.rate.normalize(), 'f')}% in {name}, "
                    f"not {format(code.rate.normalize(), 'f')}%"
                )
        accounts = mapping.accounts
        refs: list[tuple[str, str | None, bool]] = [
            (f"{base}.accounts.revenue", accounts.revenue, False),
            (f"{base}.accounts.shipping", accounts.shipping, False),
            (f"{base}.accounts.discounts", accounts.discounts, False),
            (f"{base}.accounts.gift_card_liability", accounts.gift_card_liability, False),
            (f"{base}.accounts.default_payment", accounts.default_payment, True),
            (f"{base}.accounts.fees", accounts.fees, False),
            (f"{base}.accounts.rounding", accounts.rounding, False),
        ]
        refs += [
            (f"{base}.accounts.revenue_by_product_type.{k}", v, False)
            for k, v in accounts.revenue_by_product_type.items()
        ]
        refs += [
            (f"{base}.accounts.revenue_by_sku_prefix.{k}", v, False)
            for k, v in accounts.revenue_by_sku_prefix.items()
        ]
        refs += [
            (f"{base}.accounts.payments[{i}].account", p.account, True)
            for i, p in enumerate(accounts.payments)
        ]
        for path, code, payments in refs:
            if code is None:
                continue
            account = catalogue._accounts.get(code)
            if account is None:
                problems.append(f"{path}: account {code!r} does not exist in {name}")
            elif not account.active:
                problems.append(f"{path}: account {code!r} is archived in {name}")
            elif payments and not (account.accepts_payments or account.type.upper() == "BANK"):
                problems.append(f"{path}: account {code!r} does not accept payments in {name}")
    return problems
