"""Properties over generated orders: totals to the cent, tax per line, credits ≤ invoices, determinism."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from conftest import fulfilled, placed, refunded, run, uk_config, with_mapping
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounting.engine import apply
from accounting.lines import line_tax
from schemas.events import Address, Order, OrderDiscount, OrderLine, ShippingLine
from schemas.money import cents
from schemas.tenant import TaxCode

D = Decimal
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def config_for(rate: Decimal, trigger: str = "placed", mode: str = "allocate"):
    base = uk_config(("xero", "quickbooks"), trigger=trigger, discount_mode=mode)
    return with_mapping(base, tax={"fallback": TaxCode(code=f"R{rate}", rate=rate)})


def upstream_total(lines, shipping, discount, inclusive, rate) -> Decimal:
    """The shop's own computation: naive pro-rata discount (remainder to the last line), tax per line."""
    nets = [q * p - d for q, p, d in lines]
    whole = sum(nets) or Decimal(1)
    shares = [cents(discount * n / whole) for n in nets]
    shares[-1] += discount - sum(shares)
    total = Decimal(0)
    for net in [cents(n - s) for n, s in zip(nets, shares, strict=True)] + ([shipping] if shipping else []):
        total += net if inclusive else net + (net * rate / 100).quantize(D("0.01"), ROUND_HALF_UP)
    return max(total, Decimal(0))


@st.composite
def orders(draw):
    n = draw(st.integers(1, 6))
    lines = []
    for _ in range(n):
        qty = D(draw(st.integers(1, 20000))) / 1000
        price = D(draw(st.integers(0, 50000))) / 100
        disc = cents(qty * price * D(draw(st.integers(0, 30))) / 100) if draw(st.booleans()) else D(0)
        lines.append((qty, price, disc))
    shipping = D(draw(st.integers(0, 2000))) / 100
    net = sum(q * p - d for q, p, d in lines)
    discount = cents(net * D(draw(st.integers(0, 50))) / 100) if draw(st.booleans()) else D(0)
    inclusive = draw(st.booleans())
    rate = draw(st.sampled_from([D(0), D(5), D(20), D(23)]))
    order = Order(
        order_number="1",
        currency="GBP",
        prices_include_tax=inclusive,
        lines=tuple(
            OrderLine(line_id=f"l{i}", name=f"L{i}", quantity=q, unit_price=p, discount=d)
            for i, (q, p, d) in enumerate(lines)
        ),
        shipping_lines=(ShippingLine(line_id="s", title="Ship", price=shipping),) if shipping else (),
        discounts=(OrderDiscount(amount=discount),) if discount else (),
        shipping_address=Address(country="FR"),
        total=upstream_total(lines, shipping, discount, inclusive, rate),
    )
    return order, rate


def check_lines(command, rate):
    doc = command.document
    for ln in doc.lines:
        assert ln.line_amount == cents(ln.quantity * ln.unit_amount - ln.discount_amount)
        line_rate = rate if ln.tax_code == f"R{rate}" else D(0)
        assert ln.tax_amount == line_tax(ln.line_amount, line_rate, doc.line_amount_type)
    tax = sum((ln.tax_amount for ln in doc.lines), D(0))
    amount = sum((ln.line_amount for ln in doc.lines), D(0))
    assert doc.total_tax == tax
    assert doc.total == (amount if doc.line_amount_type == "inclusive" else amount + tax)


@SETTINGS
@given(orders(), st.sampled_from(["allocate", "line"]))
def test_document_total_equals_order_total(generated, mode):
    order, rate = generated
    [decision] = run(config_for(rate, mode=mode), placed(order))
    assert decision.outcome.kind == "emitted", decision.outcome
    invoices = [c for c in decision.commands if c.kind == "invoice.create"]
    assert len(invoices) == 2
    for invoice in invoices:
        assert invoice.document.total == order.total
        check_lines(invoice, rate)


@SETTINGS
@given(orders(), st.data())
def test_partial_invoices_sum_to_order_total(generated, data):
    order, rate = generated
    shipments: list[dict[str, str]] = [{}, {}, {}]
    for ln in order.lines:
        units = int(ln.quantity * 1000)
        cuts = sorted(data.draw(st.lists(st.integers(0, units), min_size=2, max_size=2)))
        parts = [cuts[0], cuts[1] - cuts[0], units - cuts[1]]
        for shipment, part in zip(shipments, parts, strict=True):
            if part:
                shipment[ln.line_id] = str(D(part) / 1000)
    events = [fulfilled(order, i + 1, lines=s) for i, s in enumerate(shipments) if s]
    decisions = run(config_for(rate, trigger="fulfilled"), *events)
    for ledger in ("xero", "quickbooks"):
        invoices = [c for d in decisions for c in d.commands if c.ledger == ledger]
        assert sum(i.document.total for i in invoices) == order.total
        for invoice in invoices:
            check_lines(invoice, rate)
    assert decisions[-1].state.complete


@SETTINGS
@given(orders(), st.data())
def test_credits_never_exceed_invoices(generated, data):
    order, rate = generated
    config = config_for(rate)
    events = [placed(order)]
    for n in range(data.draw(st.integers(1, 4))):
        ln = data.draw(st.sampled_from(order.lines))
        qty = D(data.draw(st.integers(1, int(ln.quantity * 1000)))) / 1000
        amount = D(data.draw(st.integers(0, 3000))) / 100
        events.append(refunded(n + 10, lines={ln.line_id: str(qty)}, amount=str(amount)))
    decisions = run(config, *events)
    for d in decisions[1:]:
        assert d.outcome.kind in ("emitted", "dead_letter"), d.outcome
        if d.outcome.kind == "dead_letter":
            assert d.outcome.reason_code == "over_credit", d.outcome
        for note in d.commands:
            check_lines(note, rate)
            assert note.allocate <= note.document.total
    state = decisions[-1].state
    for ledger in state.ledgers.values():
        [invoice] = ledger.invoices
        credited = sum((c.total for c in ledger.credit_notes), D(0))
        assert credited == invoice.credited <= invoice.total
        for rec in invoice.lines:
            assert rec.credited_quantity <= rec.line.quantity


@SETTINGS
@given(orders())
def test_same_event_twice_gives_identical_commands(generated):
    order, rate = generated
    config = config_for(rate)
    a, b = apply(None, placed(order), config), apply(None, placed(order), config)
    assert [c.model_dump_json() for c in a.commands] == [c.model_dump_json() for c in b.commands]
    assert [c.idempotency_key for c in a.commands] == [c.idempotency_key for c in b.commands]
    again = apply(a.state, placed(order), config)
    assert (again.outcome.kind, again.outcome.reason_code, again.commands) == ("skipped", "duplicate", ())
