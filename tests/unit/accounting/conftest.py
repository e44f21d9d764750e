"""Sample tenants and order builders for the accounting rules (test data, not product code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas.events import (
    Address,
    Customer,
    FulfilledLine,
    GiftCardRedemption,
    Order,
    OrderCancelled,
    OrderDiscount,
    OrderFulfilled,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    PaymentCaptured,
    RefundLine,
    ShippingLine,
)
from schemas.tenant import (
    AccountMapping,
    LedgerMapping,
    PaymentAccount,
    PostingPolicy,
    TaxCode,
    TaxMapping,
    TaxRule,
    TenantConfig,
)

D = Decimal
T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)

UK_TAX = TaxMapping(
    rules=(
        TaxRule(country="GB", tax=TaxCode(code="OUTPUT2", rate=D(20))),
        TaxRule(country="US", tax=TaxCode(code="EXEMPTOUTPUT", rate=D(0))),
        TaxRule(country="IE", tax=TaxCode(code="OUTPUTIE", rate=D(23))),
        TaxRule(country="GB", postcode_prefix="JE", tax=TaxCode(code="ZERORATEDOUTPUT", rate=D(0))),
        TaxRule(country="GB", postcode_prefix="JE3", tax=TaxCode(code="JE3", rate=D(5))),
        TaxRule(country="US", region="CA", tax=TaxCode(code="CA", rate=D(0))),
    ),
    fallback=TaxCode(code="OUTPUT2", rate=D(20)),
    exempt=TaxCode(code="EXEMPTOUTPUT", rate=D(0)),
    reverse_charge=TaxCode(code="ECZROUTPUTSERVICES", rate=D(0)),
    home_country="GB",
    no_tax=TaxCode(code="NONE", rate=D(0)),
)

UK_ACCOUNTS = AccountMapping(
    revenue="200",
    revenue_by_product_type={"book": "210"},
    revenue_by_sku_prefix={"B": "220", "BK-": "230"},
    shipping="425",
    discounts="410",
    gift_card_liability="801",
    payments=(
        PaymentAccount(gateway="stripe", currency="GBP", account="091"),
        PaymentAccount(gateway="stripe", currency=None, account="092"),
    ),
    default_payment="090",
    fees="404",
    rounding="497",
)


def uk_config(ledgers: tuple[str, ...] = ("xero",), **policy: Any) -> TenantConfig:
    """A UK tenant (GBP, 20 % OUTPUT2) with the same mapping in every named ledger."""
    mapping = LedgerMapping(tax=UK_TAX, accounts=UK_ACCOUNTS)
    return TenantConfig(
        tenant_id="acme",
        name="Acme Ltd",
        base_currency="GBP",
        policy=PostingPolicy(**policy),
        ledgers=dict.fromkeys(ledgers, mapping),
    )


def with_mapping(config: TenantConfig, **changes: Any) -> TenantConfig:
    """The config with tax= / accounts= changes applied to every ledger mapping."""
    ledgers = {}
    for name, mapping in config.ledgers.items():
        tax = mapping.tax.model_copy(update=changes.get("tax", {}))
        accounts = mapping.accounts.model_copy(update=changes.get("accounts", {}))
        ledgers[name] = LedgerMapping(tax=tax, accounts=accounts)
    return config.model_copy(update={"ledgers": ledgers})


GB = Address(line1="1 High St", city="London", postcode="SW1A 1AA", country="GB")


def line(lid: str, qty: str, price: str, **kw: Any) -> OrderLine:
    name = kw.pop("name", f"Item {lid}")
    return OrderLine(line_id=lid, name=name, quantity=D(qty), unit_price=D(price), **kw)


def order(
    *lines: OrderLine,
    total: str,
    shipping: str | None = None,
    discounts: tuple[str, ...] = (),
    gift_cards: tuple[tuple[str, str], ...] = (),
    inclusive: bool = False,
    address: Address | None = GB,
    customer: Customer | None = None,
    currency: str = "GBP",
    **kw: Any,
) -> Order:
    return Order(
        order_number="1001",
        currency=currency,
        prices_include_tax=inclusive,
        lines=lines,
        shipping_lines=(ShippingLine(line_id="s1", title="Standard", price=D(shipping)),) if shipping else (),
        discounts=tuple(OrderDiscount(amount=D(d)) for d in discounts),
        gift_cards=tuple(GiftCardRedemption(gift_card_id=g, amount=D(a)) for g, a in gift_cards),
        customer=customer or Customer(name="Ada Lovelace", email="ada@example.com"),
        billing_address=address,
        shipping_address=address,
        total=D(total),
        **kw,
    )


def _base(n: int, minutes: int) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "tenant_id": "acme",
        "order_id": "o1",
        "occurred_at": T0 + timedelta(minutes=minutes),
    }


def placed(o: Order, n: int = 1) -> OrderPlaced:
    return OrderPlaced(order=o, **_base(n, n))


def paid(o: Order, n: int = 2) -> OrderPaid:
    return OrderPaid(order=o, **_base(n, n))


def fulfilled(o: Order, n: int = 3, fid: str | None = None, lines: dict | None = None) -> OrderFulfilled:
    shipped = lines or {ln.line_id: str(ln.quantity) for ln in o.lines}
    return OrderFulfilled(
        order=o,
        fulfillment_id=fid or f"f{n}",
        lines=tuple(FulfilledLine(line_id=k, quantity=D(v)) for k, v in shipped.items()),
        **_base(n, n),
    )


def refunded(
    n: int = 4, rid: str | None = None, lines: dict | None = None, shipping: str = "0", amount: str = "0"
) -> OrderRefunded:
    return OrderRefunded(
        refund_id=rid or f"r{n}",
        currency="GBP",
        lines=tuple(RefundLine(line_id=k, quantity=D(v)) for k, v in (lines or {}).items()),
        shipping=D(shipping),
        amount_only=D(amount),
        **_base(n, n),
    )


def cancelled(n: int = 5) -> OrderCancelled:
    return OrderCancelled(**_base(n, n))


def captured(amount: str, n: int = 6, gateway: str = "stripe", fee: str | None = None, currency: str = "GBP"):
    return PaymentCaptured(
        payment_id=f"p{n}",
        gateway=gateway,
        amount=D(amount),
        currency=currency,
        fee=D(fee) if fee else None,
        **_base(n, n),
    )


@pytest.fixture
def config() -> TenantConfig:
    return uk_config()


def run(config: TenantConfig, *events: Any) -> list[Any]:
    """Apply events in order, threading the state; returns every Decision."""
    from accounting.engine import apply

    state, out = None, []
    for event in events:
        decision = apply(state, event, config)
        state = decision.state
        out.append(decision)
    return out


def rows(command: Any) -> list[tuple[str, str, str, str, str]]:
    """(line_ref, account, tax code, line amount, tax) per document line, as strings."""
    return [
        (ln.line_ref, ln.account_code, ln.tax_code, str(ln.line_amount), str(ln.tax_amount))
        for ln in command.document.lines
    ]
