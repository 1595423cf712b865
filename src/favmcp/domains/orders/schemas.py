from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, model_validator

from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import UtcDateTime
from favmcp.domains.members.schemas import MemberId
from favmcp.domains.orders.models import OrderStatus
from favmcp.domains.products.schemas import BasketLine
from favmcp.registry.spec import ConfirmInput, Preview, ToolInput, WriteInput

OrderId = Annotated[str, Field(min_length=1, max_length=40)]


class CreateOrderInput(WriteInput):
    member_id: MemberId
    lines: list[BasketLine] = Field(min_length=1, max_length=100)
    promotion_code: str | None = Field(default=None, min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=300, description="Internal, e.g. pickup details.")


class OrderInput(ToolInput):
    order_id: OrderId


class ListOrdersInput(ToolInput, PageParams):
    status: OrderStatus | None = None
    member_id: MemberId | None = None
    created_from: UtcDateTime | None = Field(default=None, description="Created at or after (ISO 8601).")
    created_to: UtcDateTime | None = Field(default=None, description="Created before (exclusive).")

    @model_validator(mode="after")
    def _range(self) -> ListOrdersInput:
        if self.created_from and self.created_to and self.created_to <= self.created_from:
            raise ValueError("created_to must be after created_from")
        return self


class FulfilOrderInput(WriteInput):
    order_id: OrderId


class CancelOrderInput(ConfirmInput):
    order_id: OrderId


class OrderLinePublic(Schema):
    product_id: str
    name: str
    quantity: int
    unit_amount: int = Field(description="Price per unit when ordered.")
    tax_rate: str
    discount: int
    net: int
    tax: int
    total: int
    currency: str


class OrderPublic(Schema):
    id: str
    status: OrderStatus
    member_id: str
    customer_name: str | None
    note: str | None
    currency: str
    lines: list[OrderLinePublic]
    subtotal: int = Field(description="Lines after discount, before tax.")
    discount: int
    tax: int
    total: int
    amount_paid: int
    amount_remaining: int = Field(description="Still to pay (0 unless open).")
    amount_refunded: int
    refund_due: int = Field(description="Cancelled order: paid less refunded, to refund (refund_payment).")
    promotion_code: str | None
    created_at: datetime


class OrderSummary(Schema):
    id: str
    status: OrderStatus
    member_id: str
    customer_name: str | None
    currency: str
    total: int
    amount_paid: int
    amount_remaining: int
    refund_due: int
    created_at: datetime


class OrderPage(Page[OrderSummary]):
    pass


class StockRelease(Schema):
    product_id: str
    name: str
    quantity: int


class CancelPreview(Preview):
    order_id: str
    status: OrderStatus
    stock_released: list[StockRelease]
    promotion_released: str | None = Field(description="The promotion code whose use is given back.")
    refund_due: int = Field(description="Paid amounts to refund separately after cancelling.")
    currency: str
