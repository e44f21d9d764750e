"""Daily-summary mode: each order contributes net and tax per (account, tax code); `close_day`
turns a day's contributions into one summary invoice (and one summary credit note for refunds)
per (tenant, ledger, day, currency).

Summary lines carry the summed per-order tax as an explicit `tax_amount` (connectors send it as
the line's tax override: Xero `TaxAmount`, QuickBooks `TxnTaxDetail`), so the summary equals the
sum of the orders to the cent. Summaries are exclusive of tax, carry no exchange rate, are
addressed to `policy.summary_contact_name`, and summary credit notes reference that day's
summary invoice with nothing to allocate (they stay as credit to apply by hand or at payout).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from accounting.lines import ZERO
from schemas.commands import (
    ContactDetails,
    CreateCreditNote,
    CreateInvoice,
    Document,
    DocumentLine,
    PostingCommand,
    idempotency_key,
)
from schemas.tenant import PostingPolicy

SummaryKind = Literal["invoice", "credit_note"]


@dataclass(frozen=True)
class SummaryContribution:
    """One order's share of a day's summary for one (account, tax code) in one ledger."""

    tenant_id: str
    ledger: str
    day: date
    currency: str
    kind: SummaryKind
    account_code: str
    tax_code: str
    net: Decimal
    tax: Decimal
    order_id: str


def contributions(
    *,
    tenant_id: str,
    ledger: str,
    day: date,
    currency: str,
    kind: SummaryKind,
    order_id: str,
    lines: Iterable[DocumentLine],
    inclusive: bool,
) -> list[SummaryContribution]:
    """A document's lines folded per (account, tax code), net of tax."""
    sums: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for line in lines:
        net = line.line_amount - line.tax_amount if inclusive else line.line_amount
        key = (line.account_code, line.tax_code)
        n, t = sums.get(key, (ZERO, ZERO))
        sums[key] = (n + net, t + line.tax_amount)
    return [
        SummaryContribution(tenant_id, ledger, day, currency, kind, account, code, net, tax, order_id)
        for (account, code), (net, tax) in sorted(sums.items())
    ]


def close_day(
    items: Iterable[SummaryContribution], policy: PostingPolicy | None = None
) -> tuple[PostingCommand, ...]:
    """Summary invoices and credit notes for the contributions, sorted by (tenant, ledger, day, currency)."""
    policy = policy or PostingPolicy()
    groups: dict[tuple[str, str, date, str, str], list[SummaryContribution]] = {}
    for c in items:
        groups.setdefault((c.tenant_id, c.ledger, c.day, c.currency, c.kind), []).append(c)
    out: list[PostingCommand] = []
    for (tenant, ledger, day, currency, kind), group in sorted(groups.items()):
        sums: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        for c in group:
            n, t = sums.get((c.account_code, c.tax_code), (ZERO, ZERO))
            sums[(c.account_code, c.tax_code)] = (n + c.net, t + c.tax)
        lines = tuple(
            DocumentLine(
                line_ref=f"{account}:{code}",
                description=f"Sales {day.isoformat()} {account} {code}",
                quantity=Decimal(1),
                unit_amount=net,
                account_code=account,
                tax_code=code,
                line_amount=net,
                tax_amount=tax,
            )
            for (account, code), (net, tax) in sorted(sums.items())
            if net or tax
        )
        if not lines:
            continue
        order_ids = tuple(sorted({c.order_id for c in group}))
        invoice_source = f"summary:{day.isoformat()}:{currency}"
        label = "Daily sales" if kind == "invoice" else "Daily refunds"
        subtotal = sum((line.line_amount for line in lines), ZERO)
        total_tax = sum((line.tax_amount for line in lines), ZERO)
        doc = Document(
            date=day,
            currency=currency,
            line_amount_type="exclusive",
            contact=ContactDetails(name=policy.summary_contact_name),
            reference=f"{label} {day.isoformat()} {currency} ({len(order_ids)} orders)",
            lines=lines,
            subtotal=subtotal,
            total_tax=total_tax,
            total=subtotal + total_tax,
        )
        common = {
            "tenant_id": tenant,
            "ledger": ledger,
            "source_type": "summary",
            "event_id": f"summary:{ledger}:{day.isoformat()}:{currency}:{kind}",
        }
        if kind == "invoice":
            out.append(
                CreateInvoice(
                    idempotency_key=idempotency_key(tenant, ledger, "invoice.create", invoice_source, 0),
                    source_id=invoice_source,
                    status=policy.status,
                    due_date=day + timedelta(days=policy.due_days),
                    document=doc,
                    order_ids=order_ids,
                    **common,
                )
            )
        else:
            source = f"{invoice_source}:refunds"
            out.append(
                CreateCreditNote(
                    idempotency_key=idempotency_key(tenant, ledger, "credit_note.create", source, 0),
                    source_id=source,
                    status=policy.status,
                    document=doc,
                    invoice_source_id=invoice_source,
                    allocate=ZERO,
                    **common,
                )
            )
    return tuple(out)
