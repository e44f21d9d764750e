"""The one entry point: `apply(state, event, config) -> Decision`.

Pure and deterministic: no clock, no randomness, no I/O; the input state is never mutated.
Every event ends in exactly one `Outcome`. A shipment, refund or payment is booked once by its
own id (`fulfillment_id`, `refund_id`, `payment_id`), whatever event id it is re-sent under.
Money found unapplicable on the way (a parked payment left over once the order is fully
invoiced) is handed back as `Decision.unapplied`, each dead-lettered on its own while the event
itself goes on. A `RuleViolation` anywhere dead-letters the whole
event for every ledger (nothing half-posted) and leaves the state as it was, so a replay after
fixing the config is processed afresh; any other outcome records the event id as processed.
Ledgers are processed in sorted name order; within a ledger commands are in posting order
(invoice, then the payments it unblocks; credit notes oldest invoice first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from accounting import documents as docs
from accounting.accounts import payment_account
from accounting.lines import ZERO
from accounting.outcome import Outcome, RuleViolation
from accounting.payments import apply_pending, unapplied
from accounting.refunds import plan_credits
from accounting.state import CreditRecord, InvoiceRecord, LedgerState, OrderState, PendingPayment
from accounting.summary import SummaryContribution, contributions
from schemas.commands import PostingCommand
from schemas.dead_letter import Reason
from schemas.events import (
    EventBase,
    Order,
    OrderCancelled,
    OrderEvent,
    OrderFulfilled,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    PaymentCaptured,
)
from schemas.tenant import TenantConfig

__all__ = ["Decision", "Outcome", "Unapplied", "apply"]


@dataclass(frozen=True)
class Unapplied:
    """Payment money that can never be applied (over-payment): a dead letter of its own."""

    ledger: str
    payment_id: str
    event_id: str
    gateway: str | None
    currency: str
    amount: Decimal
    reason: str
    code: Reason = Reason.ACCOUNTING_RULE


@dataclass(frozen=True)
class Decision:
    """What to store, what to post (in order) and how the input ended.

    `unapplied`: money taken out of the parked payments, to dead-letter separately.
    `warnings`: stable codes of what was deliberately left out (e.g. `fee_dropped`), to count.
    """

    state: OrderState
    commands: tuple[PostingCommand, ...]
    outcome: Outcome
    summary: tuple[SummaryContribution, ...] = ()
    unapplied: tuple[Unapplied, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass
class _Result:
    outcome: Outcome
    commands: list[PostingCommand]
    summary: list[SummaryContribution]
    unapplied: list[Unapplied] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def apply(state: OrderState | None, event: OrderEvent, config: TenantConfig) -> Decision:
    """Book one event of one order for every ledger of the tenant."""
    base = state or OrderState(tenant_id=event.tenant_id, order_id=event.order_id)
    if event.event_id in base.processed_event_ids:
        return Decision(
            base, (), Outcome.skipped("duplicate", f"event {event.event_id} was already processed")
        )
    if event.tenant_id != config.tenant_id:
        return Decision(
            base,
            (),
            Outcome.dead_letter(
                Reason.UNKNOWN_TENANT, f"event tenant {event.tenant_id} != config tenant {config.tenant_id}"
            ),
        )
    work = base.model_copy(deep=True)
    try:
        result = _dispatch(work, event, config)
    except RuleViolation as violation:
        return Decision(base, (), Outcome.dead_letter(violation.code, violation.reason))
    work.processed_event_ids.append(event.event_id)
    return Decision(
        work,
        tuple(result.commands),
        result.outcome,
        tuple(result.summary),
        tuple(result.unapplied),
        tuple(result.warnings),
    )


def _dispatch(work: OrderState, event: OrderEvent, config: TenantConfig) -> _Result:
    order = getattr(event, "order", None)
    if isinstance(order, Order) and order != work.order:
        work.order = order
        work.order_revision += 1
    if isinstance(event, OrderPlaced | OrderPaid):
        return _placed_or_paid(work, event, config)
    if isinstance(event, OrderFulfilled):
        return _fulfilled(work, event, config)
    if isinstance(event, OrderRefunded):
        return _refunded(work, event, config)
    if isinstance(event, OrderCancelled):
        return _cancelled(work, event)
    return _payment(work, event, config)


def _skip(code: str, reason: str) -> _Result:
    return _Result(Outcome.skipped(code, reason), [], [])


def _placed_or_paid(work: OrderState, event: OrderPlaced | OrderPaid, config: TenantConfig) -> _Result:
    trigger = config.policy.trigger
    if work.cancelled:
        return _skip("cancelled", f"order {event.order_id} was cancelled; nothing is posted")
    if trigger == "fulfilled":
        return _skip("not_trigger", f"{event.type} recorded; the trigger is order.fulfilled")
    if trigger == "paid" and isinstance(event, OrderPlaced):
        return _skip("not_trigger", "order.placed recorded; the trigger is order.paid")
    if work.posted:
        return _skip("already_posted", f"{event.type} recorded; the order was already posted")
    order = event.order
    after = {line.line_id: line.quantity - work.reduced.get(line.line_id, ZERO) for line in order.lines}
    return _post(work, event, config, after, f"order:{event.order_id}")


def _fulfilled(work: OrderState, event: OrderFulfilled, config: TenantConfig) -> _Result:
    if event.fulfillment_id in work.fulfillment_ids:
        return _skip("duplicate", f"shipment {event.fulfillment_id} was already booked")
    work.fulfillment_ids.append(event.fulfillment_id)
    order = event.order
    known = {line.line_id: line for line in order.lines}
    for shipped in event.lines:
        if shipped.line_id not in known:
            raise RuleViolation(Reason.ACCOUNTING_RULE, f"fulfillment names unknown line {shipped.line_id}")
        work.fulfilled[shipped.line_id] = work.fulfilled.get(shipped.line_id, ZERO) + shipped.quantity
    if work.cancelled:
        return _skip("cancelled", f"shipment {event.fulfillment_id} recorded; the order was cancelled")
    trigger = config.policy.trigger
    if trigger != "fulfilled":
        if work.posted:
            return _skip(
                "already_posted",
                f"shipment {event.fulfillment_id} recorded; the whole order was posted at order.{trigger}",
            )
        return _skip("not_trigger", f"shipment {event.fulfillment_id} recorded; waiting for order.{trigger}")
    after = dict(work.invoiced)
    for shipped in event.lines:
        line = known[shipped.line_id]
        limit = line.quantity - work.reduced.get(line.line_id, ZERO)
        after[line.line_id] = min(limit, after.get(line.line_id, ZERO) + shipped.quantity)
    return _post(work, event, config, after, f"order:{event.order_id}:fulfillment:{event.fulfillment_id}")


def _post(
    work: OrderState,
    event: OrderPlaced | OrderPaid | OrderFulfilled,
    config: TenantConfig,
    after: dict[str, Decimal],
    source_id: str,
) -> _Result:
    """Invoice the quantities up to `after` (plus shipping the first time) in every ledger."""
    order, policy = event.order, config.policy
    before = dict(work.invoiced)
    ordered = {line.line_id: line.quantity for line in order.lines}
    target = {lid: q - work.reduced.get(lid, ZERO) for lid, q in ordered.items()}
    shipping = not work.shipping_invoiced
    final = all(after.get(lid, ZERO) >= q for lid, q in target.items())
    adjustment = ZERO if work.amount_reduced_posted else work.amount_reduced
    on = docs.local_date(event.occurred_at, policy.timezone)
    sequence = work.invoice_count + 1
    reference = docs.reference_for(order, event.order_id, policy)
    number = docs.number_for(order, event.order_id, policy, sequence)
    result = _Result(Outcome.emitted("posted", ""), [], [])
    notes: list[str] = []
    for name in sorted(config.ledgers):
        ctx = docs.LedgerContext.build(config.tenant_id, name, config.ledgers[name], policy, order)
        ledger = work.ledger(name)
        lines = docs.sale_lines(
            ctx,
            before,
            after,
            shipping=shipping,
            shipping_reduction=work.shipping_reduced,
            adjustment=adjustment,
        )
        if not lines:
            return _skip("nothing_to_invoice", f"nothing left to invoice for {source_id}")
        if final:
            full = docs.sale_lines(ctx, {}, ordered, shipping=True)
            difference = order.total - docs.lines_total(full, ctx.kind)
            docs.check_tolerance(ctx, difference, len(full) + sum(len(i.lines) for i in ledger.invoices))
            kept = docs.sale_lines(
                ctx,
                {},
                target,
                shipping=True,
                shipping_reduction=work.shipping_reduced,
                adjustment=work.amount_reduced,
            )
            goal = docs.lines_total(kept, ctx.kind) + difference
            rest = goal - sum((i.total for i in ledger.invoices), ZERO) - docs.lines_total(lines, ctx.kind)
            if rest:
                lines.append(("rounding", docs.rounding_line(ctx, rest), docs.rounding_tax_rate(ctx)))
        doc = docs.document(ctx, [line for _, line, _ in lines], on=on, reference=reference, number=number)
        if doc.total < 0:
            raise RuleViolation(Reason.ACCOUNTING_RULE, f"{source_id} would total {doc.total} in {name}")
        receipt = policy.document == "sales_receipt" and name == "quickbooks"
        summary = policy.mode == "daily_summary"
        kind = "summary" if summary else "sales_receipt" if receipt else "invoice"
        record = InvoiceRecord(
            source_id=source_id,
            kind=kind,
            event_id=event.event_id,
            amount_type=ctx.kind,
            main_tax_code=ctx.main_tax.code,
            main_tax_rate=ctx.main_tax.rate,
            lines=docs.record_lines(lines),
            total=doc.total,
            day=on,
        )
        if kind != "invoice":
            record.paid = doc.total
        ledger.invoices.append(record)
        if summary:
            result.summary.extend(
                contributions(
                    tenant_id=config.tenant_id,
                    ledger=name,
                    day=on,
                    currency=order.currency,
                    kind="invoice",
                    order_id=event.order_id,
                    lines=doc.lines,
                    inclusive=ctx.kind == "inclusive",
                    source_id=source_id,
                )
            )
            continue
        if receipt:
            result.commands.append(_sales_receipt(ctx, work, doc, source_id, event))
            continue
        result.commands.append(
            docs.invoice_command(
                ctx, doc, source_id=source_id, order_id=event.order_id, event_id=event.event_id
            )
        )
        if sequence == 1:
            ledger.pending[:0] = [
                PendingPayment(
                    kind="giftcard",
                    ref_id=card.gift_card_id,
                    event_id=event.event_id,
                    gateway=None,
                    account_code=ctx.mapping.accounts.gift_card_liability,
                    currency=order.currency,
                    remaining=card.amount,
                    date=on,
                )
                for card in order.gift_cards
                if card.amount > 0
            ]
        result.commands.extend(apply_pending(ctx, ledger, event.order_id))
        if final:
            result.unapplied.extend(_over_payments(name, ledger))
        if ledger.pending:
            notes.append(f"{name}: unapplied {unapplied(ledger)}")
    work.invoiced = {lid: after.get(lid, ZERO) for lid in ordered}
    work.shipping_invoiced = True
    work.amount_reduced_posted = work.amount_reduced_posted or bool(adjustment)
    work.invoice_count = sequence
    work.complete = final
    what = "summary contributions" if policy.mode == "daily_summary" else "documents"
    reason = f"{what} for {source_id} in {len(config.ledgers)} ledger(s)" + (" (final)" if final else "")
    if notes:
        reason += "; still parked: " + "; ".join(notes)
    if result.unapplied:
        reason += "; over-payment dead-lettered: " + "; ".join(
            f"{u.ledger}: payment {u.payment_id} {u.amount}" for u in result.unapplied
        )
    result.outcome = Outcome.emitted("summarised" if result.summary else "posted", reason)
    return result


def _over_payments(name: str, ledger: LedgerState) -> list[Unapplied]:
    """Parked payment money left once the order is fully invoiced: taken out, to dead-letter.

    The same end as a payment arriving after the last invoice (dead-lettered as an
    over-payment), whichever came first. Gift cards stay parked: their rest is the card's.
    """
    out = []
    for p in ledger.pending:
        if p.kind != "payment" or p.remaining <= 0:
            continue
        out.append(
            Unapplied(
                ledger=name,
                payment_id=p.ref_id,
                event_id=p.event_id,
                gateway=p.gateway,
                currency=p.currency,
                amount=p.remaining,
                reason=f"{name}: over-payment: {p.remaining} of payment {p.ref_id} is left over once "
                "the order is fully invoiced",
            )
        )
    ledger.pending = [p for p in ledger.pending if p.kind != "payment"]
    return out


def _sales_receipt(
    ctx: docs.LedgerContext, work: OrderState, doc, source_id: str, event: EventBase
) -> PostingCommand:
    if ctx.order.gift_cards:
        raise RuleViolation(
            Reason.ACCOUNTING_RULE, "gift card redemptions on a QuickBooks sales receipt are not supported"
        )
    accounts = ctx.mapping.accounts
    deposit = (
        payment_account(work.first_gateway, ctx.order.currency, accounts) if work.first_gateway else None
    )
    deposit = deposit or accounts.default_payment
    if deposit is None:
        raise RuleViolation(
            Reason.ACCOUNTING_RULE,
            f"no deposit account for a sales receipt: gateway {work.first_gateway or 'unknown'} "
            "is not mapped and accounts.default_payment is empty",
        )
    return docs.sales_receipt_command(
        ctx,
        doc,
        source_id=source_id,
        order_id=event.order_id,
        event_id=event.event_id,
        deposit_account=deposit,
    )


def _refunded(work: OrderState, event: OrderRefunded, config: TenantConfig) -> _Result:
    order = work.order
    if order is None:
        raise RuleViolation(
            Reason.NOT_FOUND, f"refund {event.refund_id} for order {event.order_id} never seen"
        )
    if event.currency != order.currency:
        raise RuleViolation(
            Reason.ACCOUNTING_RULE,
            f"refund currency {event.currency} differs from the order's {order.currency}",
        )
    if event.refund_id in work.refund_ids:
        return _skip("duplicate", f"refund {event.refund_id} was already booked")
    work.refund_ids.append(event.refund_id)
    if work.cancelled and not work.posted:
        return _skip(
            "cancelled", f"refund {event.refund_id} recorded; the order was cancelled before posting"
        )
    ordered = {line.line_id: line.quantity for line in order.lines}
    credit_lines: dict[str, Decimal] = {}
    adjusted: list[str] = []
    for refund_line in event.lines:
        if refund_line.line_id not in ordered:
            raise RuleViolation(
                Reason.OVER_CREDIT, f"refund names line {refund_line.line_id}, not in the order"
            )
        lid = refund_line.line_id
        open_qty = ordered[lid] - work.reduced.get(lid, ZERO) - work.invoiced.get(lid, ZERO)
        if work.cancelled:
            open_qty = ZERO
        reduce = min(refund_line.quantity, max(open_qty, ZERO))
        if reduce:
            work.reduced[lid] = work.reduced.get(lid, ZERO) + reduce
            adjusted.append(f"{reduce} × {lid}")
        if refund_line.quantity - reduce:
            credit_lines[lid] = refund_line.quantity - reduce
    credit_shipping = ZERO
    if event.shipping:
        if work.shipping_invoiced:
            credit_shipping = event.shipping
        else:
            room = sum((s.price - s.discount for s in order.shipping_lines), ZERO) - work.shipping_reduced
            if event.shipping > room:
                raise RuleViolation(
                    Reason.OVER_CREDIT, f"shipping refund {event.shipping} exceeds the {room} charged"
                )
            work.shipping_reduced += event.shipping
            adjusted.append(f"shipping {event.shipping}")
    credit_amount = ZERO
    if event.amount_only:
        if work.posted:
            credit_amount = event.amount_only
        else:
            if work.amount_reduced + event.amount_only > order.total:
                raise RuleViolation(Reason.OVER_CREDIT, f"refund {event.amount_only} exceeds the order total")
            work.amount_reduced += event.amount_only
            adjusted.append(f"amount {event.amount_only}")
    result = _Result(Outcome.emitted("posted", ""), [], [])
    if credit_lines or credit_shipping or credit_amount:
        on = docs.local_date(event.occurred_at, config.policy.timezone)
        reference = docs.reference_for(order, event.order_id, config.policy) + f" refund {event.refund_id}"
        for name in sorted(config.ledgers):
            ctx = docs.LedgerContext.build(config.tenant_id, name, config.ledgers[name], config.policy, order)
            ledger = work.ledger(name)
            plans = plan_credits(ctx, ledger, credit_lines, credit_shipping, credit_amount)
            for n, plan in enumerate(plans, start=1):
                source_id = f"refund:{event.order_id}:{event.refund_id}" + (f":{n}" if n > 1 else "")
                doc = docs.document(ctx, plan.lines, on=on, reference=reference, number=None)
                allocate = min(doc.total, plan.invoice.outstanding)
                plan.invoice.credited += doc.total
                plan.invoice.credit_allocated += allocate
                ledger.credit_notes.append(
                    CreditRecord(
                        source_id=source_id,
                        invoice_source_id=plan.invoice.source_id,
                        event_id=event.event_id,
                        total=doc.total,
                        allocated=allocate,
                    )
                )
                if plan.invoice.kind == "summary":
                    result.summary.extend(
                        contributions(
                            tenant_id=config.tenant_id,
                            ledger=name,
                            day=on,
                            currency=order.currency,
                            kind="credit_note",
                            order_id=event.order_id,
                            lines=doc.lines,
                            inclusive=ctx.kind == "inclusive",
                            source_id=source_id,
                            invoice_day=plan.invoice.day,
                        )
                    )
                    continue
                result.commands.append(
                    docs.credit_note_command(
                        ctx,
                        doc,
                        source_id=source_id,
                        order_id=event.order_id,
                        event_id=event.event_id,
                        invoice_source_id=plan.invoice.source_id,
                        allocate=allocate,
                    )
                )
    if not result.commands and not result.summary:
        return _skip(
            "adjusted_before_posting",
            f"refund {event.refund_id} reduces what will be invoiced: {', '.join(adjusted)}",
        )
    reason = f"credit notes for refund {event.refund_id}"
    if adjusted:
        reason += f"; not yet invoiced, reduced instead: {', '.join(adjusted)}"
    result.outcome = Outcome.emitted("summarised" if result.summary else "posted", reason)
    return result


def _cancelled(work: OrderState, event: OrderCancelled) -> _Result:
    work.cancelled = True
    if work.posted:
        return _skip(
            "cancelled_after_posting",
            "order cancelled after posting: nothing more is invoiced; refunds credit what was invoiced",
        )
    return _skip(
        "cancelled", f"order cancelled before posting ({event.reason or 'no reason given'}): nothing posted"
    )


def _payment(work: OrderState, event: PaymentCaptured, config: TenantConfig) -> _Result:
    if event.payment_id in work.payment_ids:
        return _skip("duplicate", f"payment {event.payment_id} was already booked")
    work.payment_ids.append(event.payment_id)
    if work.first_gateway is None:
        work.first_gateway = event.gateway
    order = work.order
    if order is not None and event.currency != order.currency:
        raise RuleViolation(
            Reason.ACCOUNTING_RULE,
            f"payment currency {event.currency} differs from the order's {order.currency}",
        )
    if config.policy.mode == "daily_summary":
        return _skip("daily_summary", f"payment {event.payment_id}: daily summaries are settled from payouts")
    on = docs.local_date(event.occurred_at, config.policy.timezone)
    result = _Result(Outcome.emitted("posted", ""), [], [])
    parked = False
    fee_note = ""
    if event.fee and event.fee_currency not in (None, event.currency):
        fee_note = (
            f"; fee {event.fee} {event.fee_currency} dropped: it is not in the payment currency "
            f"{event.currency} (book it by hand)"
        )
        result.warnings.append("fee_dropped")
    for name in sorted(config.ledgers):
        mapping = config.ledgers[name]
        ledger = work.ledger(name)
        accounts = mapping.accounts
        if config.policy.document == "sales_receipt" and name == "quickbooks":
            continue
        account = payment_account(event.gateway, event.currency, accounts)
        if account is None:
            raise RuleViolation(
                Reason.ACCOUNTING_RULE,
                f"{name}: no account for gateway {event.gateway} in {event.currency} and no default_payment",
            )
        fee_ok = event.fee and accounts.fees and event.fee_currency in (None, event.currency)
        if work.complete:
            due = sum((i.outstanding for i in ledger.invoices), ZERO)
            if event.amount > due:
                raise RuleViolation(
                    Reason.ACCOUNTING_RULE,
                    f"{name}: over-payment: {event.payment_id} of {event.amount} exceeds the {due} due",
                )
        ledger.pending.append(
            PendingPayment(
                kind="payment",
                ref_id=event.payment_id,
                event_id=event.event_id,
                gateway=event.gateway,
                account_code=account,
                currency=event.currency,
                remaining=event.amount,
                date=on,
                fee=event.fee if fee_ok else None,
                fee_account_code=accounts.fees if fee_ok else None,
            )
        )
        if order is not None and ledger.invoices:
            ctx = docs.LedgerContext.build(config.tenant_id, name, mapping, config.policy, order)
            result.commands.extend(apply_pending(ctx, ledger, event.order_id))
        parked = parked or any(p.ref_id == event.payment_id for p in ledger.pending)
    if not result.commands:
        if not parked:
            return _skip(
                "paid_by_receipt", f"payment {event.payment_id}: the sales receipt is paid on creation"
            )
        result.outcome = Outcome.parked(
            "waiting_for_invoice", f"payment {event.payment_id} parked until the invoice is posted" + fee_note
        )
        return result
    reason = f"payment {event.payment_id} applied"
    if parked:
        reason += "; the rest is parked until the next invoice"
    result.outcome = Outcome.emitted("posted", reason + fee_note)
    return result
