"""The ledger's answer in plain words, and what finance can do about it.

Pure functions: a dead-letter record (+ the tenant's current config) → `Explanation`. Known
Xero messages are matched by pattern; unknown ones are shown as the ledger wrote them.
The original message is always kept next to the plain sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from schemas.dead_letter import DeadLetter, Reason
from schemas.tenant import ACCOUNT_SLOTS, LedgerMapping, TenantConfig

LEDGER_NAMES = {"xero": "Xero", "quickbooks": "QuickBooks Online", "moloni": "Moloni"}


@dataclass(frozen=True)
class Finding:
    plain: str
    original: str | None = None
    code: str | None = None
    code_type: str | None = None  # "tax" | "account"


@dataclass(frozen=True)
class Explanation:
    headline: str
    findings: tuple[Finding, ...] = ()
    fixes: tuple[str, ...] = ()
    fix_paths: tuple[str, ...] = field(default=())
    config_fix: bool = False
    """True when editing the tenant configuration is the likely fix (offer the editor)."""


_PATTERNS: tuple[tuple[re.Pattern[str], str, str | None], ...] = (
    (
        re.compile(r"The TaxType code '([^']+)' does not exist or cannot be used"),
        "Tax code {code} does not exist in this {ledger} organisation (or cannot be used on sales).",
        "tax",
    ),
    (
        re.compile(r"Tax type '([^']+)' is not active"),
        "Tax code {code} is not active in this {ledger} organisation.",
        "tax",
    ),
    (
        re.compile(r"Account code '([^']+)' is not a valid code"),
        "Account code {code} does not exist in the chart of accounts.",
        "account",
    ),
    (
        re.compile(r"Account code '([^']+)' has been archived, or deleted"),
        "Account code {code} has been archived or deleted in the chart of accounts.",
        "account",
    ),
    (
        re.compile(r"Account code '([^']+)' is not a bank account"),
        "Account code {code} is not a bank account, so payments cannot be recorded against it.",
        "account",
    ),
    (
        re.compile(r"The currency '([^']+)' is not enabled"),
        "The currency {code} is not enabled in this {ledger} organisation.",
        None,
    ),
    (
        re.compile(r"must be unique", re.I),
        "The document number is already used by another document in {ledger}.",
        None,
    ),
    (
        re.compile(r"Payment amount exceeds the amount outstanding"),
        "The payment is larger than what is still owed on the invoice.",
        None,
    ),
)


def _findings(messages: tuple[str, ...], ledger: str) -> Iterator[Finding]:
    seen: set[str] = set()
    for message in messages:
        for pattern, text, code_type in _PATTERNS:
            match = pattern.search(message)
            if match:
                code = match.group(1) if match.groups() else None
                plain = text.format(code=code, ledger=ledger)
                if plain not in seen:
                    seen.add(plain)
                    yield Finding(plain, message, code, code_type)
                break
        else:
            if message not in seen:
                seen.add(message)
                yield Finding(message, message)


def code_paths(config: TenantConfig | None, ledger: str | None, code: str, code_type: str) -> list[str]:
    """Where `code` is used in the tenant's configuration, as field paths (e.g. for the fix text)."""
    if config is None or ledger is None or ledger not in config.ledgers:
        return []
    mapping: LedgerMapping = config.ledgers[ledger]  # type: ignore[index]
    base = f"ledgers.{ledger}"
    paths: list[str] = []
    if code_type == "tax":
        tax = mapping.tax
        for rule in tax.rules:
            if rule.tax.code == code:
                where = "/".join(p for p in (rule.country, rule.region, rule.postcode_prefix) if p)
                paths.append(f"{base}.tax.rules[{where}].tax.code")
        for slot in ("fallback", "exempt", "reverse_charge", "no_tax"):
            value = getattr(tax, slot)
            if value is not None and value.code == code:
                paths.append(f"{base}.tax.{slot}.code")
    else:
        accounts = mapping.accounts
        for name in ACCOUNT_SLOTS:
            if getattr(accounts, name) == code:
                paths.append(f"{base}.accounts.{name}")
        for key, value in {**accounts.revenue_by_product_type}.items():
            if value == code:
                paths.append(f"{base}.accounts.revenue_by_product_type.{key}")
        for key, value in accounts.revenue_by_sku_prefix.items():
            if value == code:
                paths.append(f"{base}.accounts.revenue_by_sku_prefix.{key}")
        for payment in accounts.payments:
            if payment.account == code:
                paths.append(f"{base}.accounts.payments[{payment.gateway}].account")
    return paths


def explain(letter: DeadLetter, config: TenantConfig | None) -> Explanation:
    ledger = LEDGER_NAMES.get(letter.ledger or "", letter.ledger or "the ledger")
    messages = tuple(letter.ledger_response.messages) if letter.ledger_response else ()
    code = letter.reason_code
    if code in (Reason.LEDGER_REJECTED, Reason.NOT_FOUND):
        findings = tuple(_findings(messages or (letter.reason,), ledger))
        fixes: list[str] = []
        paths: list[str] = []
        for finding in findings:
            if finding.code and finding.code_type:
                where = code_paths(config, letter.ledger, finding.code, finding.code_type)
                paths += where
                what = "tax mapping" if finding.code_type == "tax" else "account mapping"
                if where:
                    fixes.append(
                        f"Change the {what} in the tenant configuration: {', '.join(where)} uses "
                        f"{finding.code}. Pick a code that is active in {ledger}, save, then retry."
                    )
                else:
                    fixes.append(
                        f"{finding.code} is no longer in the tenant configuration: if the configuration "
                        f"is already fixed, retry. Otherwise activate it in {ledger}."
                    )
        if not fixes:
            fixes.append(
                f"Correct the problem in {ledger} or in the tenant configuration, then retry; "
                "or discard the item with a reason if it should not be posted."
            )
        return Explanation(
            f"{ledger} refused this {_kind(letter)}.",
            findings,
            tuple(fixes),
            tuple(paths),
            config_fix=bool(paths) or any(f.code_type for f in findings),
        )
    if code == Reason.RETRIES_EXHAUSTED:
        return Explanation(
            f"{ledger} did not answer successfully after {letter.attempts} tries.",
            tuple(Finding(m, m) for m in messages) or (Finding(letter.reason, letter.reason),),
            (
                f"Usually temporary (an outage or a rate limit). Retry: ledgerstream checks {ledger} "
                "before creating anything, so a document that was in fact created is not created twice.",
            ),
        )
    plain = {
        Reason.INVALID_JSON: "The event could not be read: it is not valid JSON.",
        Reason.SCHEMA_VIOLATION: "The event is missing fields or has wrong values.",
        Reason.UNKNOWN_TENANT: "The event is for a shop that has no configuration here.",
        Reason.NO_LEDGER: "The shop has no ledger configured for this kind of document.",
        Reason.OVER_CREDIT: "The refund is larger than what was invoiced.",
        Reason.ACCOUNTING_RULE: "The accounting rules could not book this event.",
        Reason.INTERNAL_ERROR: "ledgerstream failed on this event (a bug).",
    }.get(code, letter.reason)
    fix = {
        Reason.INVALID_JSON: "Ask the shop's developers to resend the event; discard this item.",
        Reason.SCHEMA_VIOLATION: "Ask the shop's developers to resend a corrected event; discard this item.",
        Reason.UNKNOWN_TENANT: "Add the tenant configuration, then retry.",
        Reason.NO_LEDGER: "Add the ledger to the tenant configuration, then retry.",
        Reason.ACCOUNTING_RULE: "Fix the tenant configuration field named in the message, then retry.",
        Reason.INTERNAL_ERROR: "Report it to the engineers with this item's id.",
    }.get(code, "Retry, or discard with a reason.")
    return Explanation(
        plain,
        (Finding(letter.reason, letter.reason),),
        (fix,),
        config_fix=code in (Reason.ACCOUNTING_RULE, Reason.NO_LEDGER, Reason.UNKNOWN_TENANT),
    )


def _kind(letter: DeadLetter) -> str:
    return {
        "invoice.create": "invoice",
        "credit_note.create": "credit note",
        "payment.create": "payment",
        "sales_receipt.create": "sales receipt",
        "contact.upsert": "contact",
    }.get(letter.kind or "", "document")
