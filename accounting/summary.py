"""Daily-summary mode: each order contributes net and tax per (account, tax code); `close_day`
turns a day's contributions into one summary invoice (and one summary credit note for refunds)
per (tenant, ledger, day, currency).

Summary lines carry the summed per-order tax as an explicit `tax_amount` (connectors send it as
the line's tax override: Xero `TaxAmount`, QuickBooks `TxnTaxDetail`), so the summary equals the
sum of the orders to the cent. Summaries are exclusive of tax, carry no exchange rate, are
addressed to `policy.summary_contact_name`, and summary credit notes reference the summary
invoice of the day the credited sales were summarised (`invoice_day`) with nothing to allocate
(they stay as credit to apply by hand or at payout).

Source ids: `summary:{day}:{currency}` for a day's invoice; contributions that arrive after a
day was closed are closed again as part n ≥ 2, `summary:{day}:{currency}:{n}`. Credit notes
append `:refunds` (and `:{invoice_day}` when they credit the sales of another day). Each
contribution carries the per-order document it came from (`source_id`), so an accumulator can
drop a contribution delivered twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

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
    source_id: str = ""
    """The order's document this share belongs to (`order:…`, `refund:…`)."""
    invoice_day: date | None = None
    """Credit notes: the day the credited sale was summarised (None: `day`)."""

    @property
    def dedup_key(self) -> str:
        """Unique per contribution: one per (document, kind, account, tax code)."""
        return "\x1f".join((self.source_id, self.kind, self.account_code, self.tax_code))


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
    source_id: str = "",
    invoice_day: date | None = None,
) -> list[SummaryContribution]:
    """A document's lines folded per (account, tax code), net of tax."""
    sums: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for line in lines:
        net = line.line_amount - line.tax_amount if inclusive else line.line_amount
        key = (line.account_code, line.tax_code)
        n, t = sums.get(key, (ZERO, ZERO))
        sums[key] = (n + net, t + line.tax_amount)
    return [
        SummaryContribution(
            tenant_id, ledger, day, currency, kind, account, code, net, tax, order_id, source_id, invoice_day
        )
        for (account, code), (net, tax) in sorted(sums.items())
    ]


def close_day(
    items: Iterable[SummaryContribution], policy: PostingPolicy | None = None, *, part: int = 1
) -> tuple[PostingCommand, ...]:
    """Summary invoices and credit notes for the contributions, sorted by (tenant, ledger, day, currency).

    `part` n ≥ 2 closes contributions that arrived after the day was already closed n − 1 times.
    """
    policy = policy or PostingPolicy()
    groups: dict[tuple[str, str, date, str, str, date], list[SummaryContribution]] = {}
    for c in items:
        credited = (c.invoice_day or c.day) if c.kind == "credit_note" else c.day
        groups.setdefault((c.tenant_id, c.ledger, c.day, c.currency, c.kind, credited), []).append(c)
    out: list[PostingCommand] = []
    suffix = f":{part}" if part > 1 else ""
    for (tenant, ledger, day, currency, kind, credited), group in sorted(groups.items()):
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
        reference = f"{label} {day.isoformat()} {currency}"
        if part > 1:
            reference += f" part {part}"
        if kind == "credit_note" and credited != day:
            reference += f" of sales {credited.isoformat()}"
        subtotal = sum((line.line_amount for line in lines), ZERO)
        total_tax = sum((line.tax_amount for line in lines), ZERO)
        doc = Document(
            date=day,
            currency=currency,
            line_amount_type="exclusive",
            contact=ContactDetails(name=policy.summary_contact_name),
            reference=f"{reference} ({len(order_ids)} orders)",
            lines=lines,
            subtotal=subtotal,
            total_tax=total_tax,
            total=subtotal + total_tax,
        )
        common = {
            "tenant_id": tenant,
            "ledger": ledger,
            "source_type": "summary",
            "event_id": f"summary:{ledger}:{day.isoformat()}:{currency}:{kind}{suffix}",
        }
        if kind == "invoice":
            source = invoice_source + suffix
            out.append(
                CreateInvoice(
                    idempotency_key=idempotency_key(tenant, ledger, "invoice.create", source, 0),
                    source_id=source,
                    status=policy.status,
                    due_date=day + timedelta(days=policy.due_days),
                    document=doc,
                    order_ids=order_ids,
                    **common,
                )
            )
        else:
            source = f"{invoice_source}{suffix}:refunds"
            if credited != day:
                source += f":{credited.isoformat()}"
            out.append(
                CreateCreditNote(
                    idempotency_key=idempotency_key(tenant, ledger, "credit_note.create", source, 0),
                    source_id=source,
                    status=policy.status,
                    document=doc,
                    invoice_source_id=f"summary:{credited.isoformat()}:{currency}",
                    allocate=ZERO,
                    **common,
                )
            )
    return tuple(out)


def closes_at(day: date, timezone: str, grace: timedelta) -> datetime:
    """When `day` may be closed: midnight after it in the tenant's zone, plus `grace` (aware)."""
    return datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(timezone)) + grace


class DayBook(BaseModel):
    """What an accumulator keeps per (tenant, ledger, day, currency), for good.

    `items` are the contributions not yet closed; `part` the number the next close gets (so
    a contribution arriving after a close is never lost under the earlier part's binding);
    `seen` the dedup keys of the contributions added, so one delivered twice is dropped. Once
    `keep` has passed since the last close, `compact` forgets `seen` (a redelivery is only
    expected within seconds of a crash) and the book shrinks to a few fields.
    Pure: the caller stores it and supplies the clock.
    """

    model_config = ConfigDict(extra="forbid")

    tenant_id: str
    ledger: str
    day: date
    currency: str
    part: int = 1
    items: list[SummaryContribution] = []
    seen: list[str] = []
    closed_at: datetime | None = None

    @staticmethod
    def key_of(c: SummaryContribution) -> str:
        return json.dumps([c.tenant_id, c.ledger, c.day.isoformat(), c.currency])

    @classmethod
    def for_contribution(cls, c: SummaryContribution) -> DayBook:
        return cls(tenant_id=c.tenant_id, ledger=c.ledger, day=c.day, currency=c.currency)

    def add(self, c: SummaryContribution) -> bool:
        """Record `c`; False (and nothing changes) when it was already added."""
        if (c.tenant_id, c.ledger, c.day, c.currency) != (
            self.tenant_id,
            self.ledger,
            self.day,
            self.currency,
        ):
            raise ValueError(f"contribution for {DayBook.key_of(c)} added to another day's book")
        if c.dedup_key in self.seen:
            return False
        self.seen.append(c.dedup_key)
        self.items.append(c)
        return True

    def due(self, now: datetime, timezone: str, grace: timedelta) -> bool:
        """Something to close, and the day (plus grace) is over in the tenant's zone."""
        return bool(self.items) and now >= closes_at(self.day, timezone, grace)

    def compactable(self, now: datetime, keep: timedelta) -> bool:
        return bool(not self.items and self.seen and self.closed_at and now >= self.closed_at + keep)

    def compact(self) -> None:
        self.seen = []

    def close(self, policy: PostingPolicy, now: datetime) -> tuple[PostingCommand, ...]:
        """The documents for what is open now; later contributions go to the next part."""
        commands = close_day(self.items, policy, part=self.part)
        self.items = []
        self.part += 1
        self.closed_at = now
        return commands
