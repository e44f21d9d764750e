"""Events that upstream order systems publish: the versioned input contract.

Every event is JSON on the `orders.events` topic, keyed by `order_id` so that all
events of one order are read in order. `type` selects the model; `schema_version`
is 1 for this contract (a breaking change gets a new version, old ones stay readable).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from schemas.money import (
    Country,
    Currency,
    ExchangeRate,
    Money,
    NonNegativeMoney,
    Quantity,
    Rate,
    check_minor_units,
)

Id = Annotated[str, Field(min_length=1, max_length=128)]


class Model(BaseModel):
    """Strict base: unknown fields are errors, so typos surface at the producer."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(Model):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = Field(None, description="state / province code, e.g. CA, ON")
    postcode: str | None = None
    country: Country


class Customer(Model):
    id: str | None = None
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    company: str | None = None
    vat_id: str | None = Field(None, description="EU VAT id with country prefix, e.g. DE123456789")
    tax_exempt: bool = False


class TaxLine(Model):
    """Tax the upstream system charged on a line, as it computed it."""

    name: str
    rate: Rate
    amount: NonNegativeMoney


class OrderLine(Model):
    line_id: Id
    sku: str | None = None
    name: str
    quantity: Quantity
    unit_price: NonNegativeMoney = Field(description="per unit, tax included iff prices_include_tax")
    discount: NonNegativeMoney = Field(Decimal(0), description="line discount, whole line")
    tax_lines: tuple[TaxLine, ...] = ()
    product_type: str | None = None
    gift_card: bool = Field(False, description="a gift card sold: a liability, not revenue")


class ShippingLine(Model):
    line_id: Id
    title: str
    price: NonNegativeMoney
    discount: NonNegativeMoney = Decimal(0)
    tax_lines: tuple[TaxLine, ...] = ()


class OrderDiscount(Model):
    """An order-level discount, in the same tax basis as the line prices."""

    code: str | None = None
    amount: NonNegativeMoney


class GiftCardRedemption(Model):
    """A gift card used to pay: reduces the amount due, never revenue."""

    gift_card_id: Id
    amount: NonNegativeMoney


class Order(Model):
    order_number: str
    currency: Currency
    exchange_rate: ExchangeRate | None = Field(None, description="units of order currency per 1 base")
    prices_include_tax: bool = False
    lines: tuple[OrderLine, ...] = Field(min_length=1)
    shipping_lines: tuple[ShippingLine, ...] = ()
    discounts: tuple[OrderDiscount, ...] = ()
    gift_cards: tuple[GiftCardRedemption, ...] = ()
    customer: Customer = Customer()
    billing_address: Address | None = None
    shipping_address: Address | None = None
    channel: str | None = None
    store_id: str | None = None
    total: NonNegativeMoney = Field(description="grand total incl. tax and shipping, before gift cards")

    @model_validator(mode="after")
    def _unique_line_ids(self) -> Order:
        ids = [line.line_id for line in self.lines] + [s.line_id for s in self.shipping_lines]
        if len(ids) != len(set(ids)):
            raise ValueError("line_id values must be unique within an order")
        return self

    @model_validator(mode="after")
    def _amounts_fit_the_currency(self) -> Order:
        """Totals, shipping, discounts and gift cards in whole minor units (JPY: yen, KWD: fils).

        Unit prices may carry more decimals (0.335 per gram); line amounts are rounded.
        """
        amounts: dict[str, Decimal | None] = {"total": self.total}
        for n, ship in enumerate(self.shipping_lines):
            amounts[f"shipping_lines.{n}.price"] = ship.price
            amounts[f"shipping_lines.{n}.discount"] = ship.discount
        for n, discount in enumerate(self.discounts):
            amounts[f"discounts.{n}.amount"] = discount.amount
        for n, card in enumerate(self.gift_cards):
            amounts[f"gift_cards.{n}.amount"] = card.amount
        check_minor_units(self.currency, amounts)
        return self


class EventBase(Model):
    event_id: Id
    tenant_id: Id
    order_id: Id
    occurred_at: AwareDatetime
    schema_version: Literal[1] = 1


class OrderPlaced(EventBase):
    type: Literal["order.placed"] = "order.placed"
    order: Order


class OrderPaid(EventBase):
    type: Literal["order.paid"] = "order.paid"
    order: Order


class FulfilledLine(Model):
    line_id: Id
    quantity: Quantity


class OrderFulfilled(EventBase):
    """A shipment: the lines and quantities it carried (all of them when full)."""

    type: Literal["order.fulfilled"] = "order.fulfilled"
    fulfillment_id: Id
    order: Order
    lines: tuple[FulfilledLine, ...] = Field(min_length=1)


class RefundLine(Model):
    line_id: Id
    quantity: Quantity


class OrderRefunded(EventBase):
    """Money given back: by line and quantity, shipping, and/or a bare amount."""

    type: Literal["order.refunded"] = "order.refunded"
    refund_id: Id
    currency: Currency
    lines: tuple[RefundLine, ...] = ()
    shipping: NonNegativeMoney = Decimal(0)
    amount_only: NonNegativeMoney = Field(Decimal(0), description="goodwill / adjustment, tax incl.")
    reason: str | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> OrderRefunded:
        if not self.lines and not self.shipping and not self.amount_only:
            raise ValueError("a refund needs lines, shipping or amount_only")
        return self

    @model_validator(mode="after")
    def _amounts_fit_the_currency(self) -> OrderRefunded:
        check_minor_units(self.currency, {"shipping": self.shipping, "amount_only": self.amount_only})
        return self


class OrderCancelled(EventBase):
    type: Literal["order.cancelled"] = "order.cancelled"
    reason: str | None = None


class PaymentCaptured(EventBase):
    type: Literal["payment.captured"] = "payment.captured"
    payment_id: Id
    gateway: str = Field(min_length=1, description="e.g. stripe, paypal, shopify_payments")
    amount: Money = Field(gt=0)
    currency: Currency
    fee: NonNegativeMoney | None = None
    fee_currency: Currency | None = None

    @model_validator(mode="after")
    def _amounts_fit_the_currency(self) -> PaymentCaptured:
        check_minor_units(self.currency, {"amount": self.amount})
        check_minor_units(self.fee_currency or self.currency, {"fee": self.fee})
        return self


OrderEvent = Annotated[
    OrderPlaced | OrderPaid | OrderFulfilled | OrderRefunded | OrderCancelled | PaymentCaptured,
    Field(discriminator="type"),
]
EVENT_MODELS: tuple[type[EventBase], ...] = (
    OrderPlaced,
    OrderPaid,
    OrderFulfilled,
    OrderRefunded,
    OrderCancelled,
    PaymentCaptured,
)
event_adapter: TypeAdapter[OrderEvent] = TypeAdapter(OrderEvent)


def parse_event(raw: bytes | str) -> OrderEvent:
    """Decode one event; raises `pydantic.ValidationError` naming the bad field."""
    return event_adapter.validate_json(raw)
