"""Replay: what a retry sends, so that it never duplicates and uses the fixed mapping.

Decision (see the report / docs in `inbox/__init__.py`):

* An **input** record (bad event, unknown tenant, …; `record.command` is None) is replayed by
  re-publishing the exact original bytes to the orders topic, keyed by order id: enrichment
  runs again with the current configuration.
* A **command** record whose source is already bound in the ledger is resolved, nothing sent.
  After a partial failure (`letter.resolves_with`: the main document was created, its fee /
  allocation / settling payment failed) only the binding of that pending part proves it done:
  `resolves_with_external_id`; without it the command is re-posted, and the connector, finding
  the main document bound, does only the pending part (or answers already_bound).
* Any other **command** record is re-posted. Its tax and account codes are *re-mapped* from
  the tenant configuration that produced it (the version in effect when it first failed) to
  the current one, slot by slot (`rules[GB].tax`, `fallback`, `accounts.revenue`, …):
  a line carrying old code X gets the code the same slot carries now. Amounts never change:
  a slot whose tax *rate* changed is refused (the document would need re-booking from the
  order), as is a code used by several slots that now differ, when the line cannot be tied
  to one of them (tax: by the contact's country).
  - nothing changed → the ORIGINAL bytes are re-published (same idempotency key);
  - codes changed → the re-mapped command is published under a *replay key*
    `sha256(original key, "remap", content)`: a different request body must not reuse an
    Idempotency-Key (Xero answers a reused key with a different body with a 400, and the
    connector's batch key derives from member keys). Duplicates are still impossible: the
    connector looks up bindings by `source_id` (not by key) before any create, and a
    pending intent left by an attempt that reached the ledger is found by its Reference
    and bound (documents that "reached the ledger before failing").
  The inbox item remembers the replay key so a new failure updates the same item.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from schemas.commands import command_adapter
from schemas.dead_letter import DeadLetter
from schemas.tenant import ACCOUNT_SLOTS, LedgerMapping, TaxCode, TenantConfig


@dataclass(frozen=True)
class Plan:
    action: Literal["publish_command", "publish_event", "resolved", "refuse"]
    note: str
    key: bytes = b""
    value: bytes = b""
    ledger: str | None = None
    replay_key: str | None = None
    changes: tuple[str, ...] = field(default=())


def proof_source_id(letter: DeadLetter) -> str | None:
    """The source id whose binding proves the letter's command done (None: an input record)."""
    if letter.command is None:
        return None
    return letter.resolves_with or letter.command.get("source_id")


class Unmappable(ValueError):
    """The command cannot be re-mapped without changing its amounts, or ambiguously."""


# --------------------------------------------------------------------------- slots

TaxSlots = dict[str, tuple[TaxCode, tuple[str, str | None, str | None] | None]]


def _tax_slots(mapping: LedgerMapping) -> TaxSlots:
    slots: TaxSlots = {}
    for rule in mapping.tax.rules:
        where = (rule.country, rule.region, rule.postcode_prefix)
        slots["rules[" + "/".join(p for p in where if p) + "]"] = (rule.tax, where)
    for name in ("fallback", "exempt", "reverse_charge", "no_tax"):
        value = getattr(mapping.tax, name)
        if value is not None:
            slots[name] = (value, None)
    return slots


def _account_slots(mapping: LedgerMapping) -> dict[str, str]:
    a = mapping.accounts
    slots = {name: getattr(a, name) for name in ACCOUNT_SLOTS if getattr(a, name) is not None}
    slots |= {f"revenue_by_product_type.{k}": v for k, v in a.revenue_by_product_type.items()}
    slots |= {f"revenue_by_sku_prefix.{k}": v for k, v in a.revenue_by_sku_prefix.items()}
    slots |= {f"payments[{p.gateway}/{p.currency or '*'}]": p.account for p in a.payments}
    return slots


def _norm(code: str | None) -> str:
    return (code or "").replace(" ", "").upper()


@dataclass
class Remapper:
    old: LedgerMapping
    new: LedgerMapping
    contact: dict[str, Any] = field(default_factory=dict)

    def tax(self, code: str) -> str:
        old, new = _tax_slots(self.old), _tax_slots(self.new)
        using = {name: slot for name, slot in old.items() if slot[0].code == code}
        if not using:
            return code  # not from the mapping (e.g. chosen by hand): leave it
        targets = {name: new.get(name) for name in using}
        if len({t[0].code if t else None for t in targets.values()}) > 1:
            name = self._tax_slot_for_contact(using)
            if name is None:
                raise Unmappable(
                    f"tax code {code} is used by {', '.join(using)}, which now map to different codes; "
                    "this document cannot be tied to one of them"
                )
            using = {name: using[name]}
            targets = {name: targets[name]}
        name, (old_tax, _) = next(iter(using.items()))
        target = targets[name]
        if target is None:
            raise Unmappable(f"tax code {code} came from tax.{name}, which is no longer in the configuration")
        if Decimal(target[0].rate) != Decimal(old_tax.rate):
            raise Unmappable(
                f"tax.{name} changed rate from {old_tax.rate}% to {target[0].rate}%: the amounts would "
                "change, so this document must be booked again from the order, not retried"
            )
        return target[0].code

    def _tax_slot_for_contact(self, using: TaxSlots) -> str | None:
        country = self.contact.get("country")
        region = (self.contact.get("region") or "").upper()
        postcode = _norm(self.contact.get("postcode"))
        best: tuple[tuple[int, int], str] | None = None
        for name, (_, where) in using.items():
            if where is None or where[0] != country:
                continue
            if where[1] and where[1].upper() != region:
                continue
            if where[2] and not postcode.startswith(_norm(where[2])):
                continue
            rank = ((2 if where[2] else 0) + (1 if where[1] else 0), len(_norm(where[2])))
            if best is None or rank > best[0]:
                best = (rank, name)
        if best is not None:
            return best[1]
        return "fallback" if "fallback" in using else None

    def account(self, code: str) -> str:
        old, new = _account_slots(self.old), _account_slots(self.new)
        using = [name for name, value in old.items() if value == code]
        if not using:
            return code
        targets = {new.get(name) for name in using}
        if None in targets:
            raise Unmappable(f"account {code} came from accounts.{using[0]}, which is no longer configured")
        if len(targets) > 1:
            raise Unmappable(
                f"account {code} is used by accounts.{', accounts.'.join(using)}, which now map to different "
                "accounts; this document cannot be tied to one of them"
            )
        return targets.pop()  # type: ignore[return-value]


def remap(
    command: dict[str, Any], old: LedgerMapping, new: LedgerMapping
) -> tuple[dict[str, Any], list[str]]:
    """The command with codes moved from `old` to `new` mapping slots, and what changed."""
    contact = ((command.get("document") or {}).get("contact")) or command.get("contact") or {}
    mapper = Remapper(old, new, contact)
    out = json.loads(json.dumps(command))
    changes: list[str] = []

    def move(holder: dict[str, Any], key: str, how: Any, label: str) -> None:
        before = holder.get(key)
        if before is None:
            return
        after = how(before)
        if after != before:
            holder[key] = after
            changes.append(f"{label}: {before} → {after}")

    document = out.get("document")
    if document:
        for line in document.get("lines", []):
            ref = line.get("description") or line.get("line_ref")
            move(line, "tax_code", mapper.tax, f"line '{ref}' tax code")
            move(line, "account_code", mapper.account, f"line '{ref}' account")
    move(out, "account_code", mapper.account, "payment account")
    move(out, "fee_account_code", mapper.account, "fee account")
    move(out, "deposit_account", mapper.account, "deposit account")
    return out, changes


def replay_key(original_key: str, command: dict[str, Any]) -> str:
    """A deterministic key for a re-mapped command: same fix, same key; different body, new key."""
    body = {k: v for k, v in command.items() if k != "idempotency_key"}
    content = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return hashlib.sha256("\x1f".join((original_key, "remap", content)).encode()).hexdigest()


def plan(
    letter: DeadLetter,
    *,
    bound_external_id: str | None,
    old_config: TenantConfig | None,
    new_config: TenantConfig | None,
    resolves_with_external_id: str | None = None,
) -> Plan:
    """What to do for one retry. Pure: the caller publishes and records.

    `bound_external_id`: the ledger id bound to the command's source id (None: not bound);
    `resolves_with_external_id`: the one bound to `letter.resolves_with`, when the letter has
    one (a partial failure): then only that one resolves the item (see `proof_source_id`).
    """
    if letter.command is None:
        return Plan(
            "publish_event",
            "re-sent the original event to enrichment (current configuration)",
            key=(letter.order_id or "").encode(),
            value=letter.original(),
        )
    proof = resolves_with_external_id if letter.resolves_with else bound_external_id
    if proof is not None:
        return Plan("resolved", f"already in {letter.ledger}: document {proof}")
    command = letter.command
    ledger = command["ledger"]
    original = letter.original()
    if (
        old_config is None
        or new_config is None
        or ledger not in old_config.ledgers
        or ledger not in new_config.ledgers
    ):
        return Plan(
            "publish_command",
            "re-posted the original command",
            key=command["tenant_id"].encode(),
            value=original,
            ledger=ledger,
            replay_key=None,
        )
    try:
        remapped, changes = remap(command, old_config.ledgers[ledger], new_config.ledgers[ledger])  # type: ignore[index]
    except Unmappable as exc:
        return Plan("refuse", f"not retried: {exc}")
    if not changes:
        return Plan(
            "publish_command",
            "re-posted the original command (no mapping change applies)",
            key=command["tenant_id"].encode(),
            value=original,
            ledger=ledger,
        )
    key = replay_key(command["idempotency_key"], remapped)
    remapped["idempotency_key"] = key
    validated = command_adapter.validate_python(remapped)  # still a valid command
    return Plan(
        "publish_command",
        f"re-posted with configuration version {new_config.version}: " + "; ".join(changes),
        key=command["tenant_id"].encode(),
        value=validated.model_dump_json().encode(),
        ledger=ledger,
        replay_key=key,
        changes=tuple(changes),
    )
