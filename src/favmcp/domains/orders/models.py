"""Orders and their lines: amounts computed by the server and snapshotted when the order is made."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, Index
from sqlmodel import Field

from favmcp.db.types import Table, amount_field, enum_field, utc_field, workspace_fk


class OrderStatus(StrEnum):
    open = "open"
    paid = "paid"
    fulfilled = "fulfilled"
    cancelled = "cancelled"


class Order(Table, table=True):
    """An order. amount_paid never passes the total, amount_refunded never passes amount_paid (CHECKs, and the
    conditional UPDATEs that move them)."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_workspace_keyset", "workspace_id", "id"),
        Index("ix_orders_workspace_member", "workspace_id", "member_id", "id"),
        Index("ix_orders_workspace_status", "workspace_id", "status", "id"),
        CheckConstraint("amount_paid >= 0 AND amount_paid <= total", name="ck_orders_paid_within_total"),
        CheckConstraint(
            "amount_refunded >= 0 AND amount_refunded <= amount_paid", name="ck_orders_refunded_within_paid"
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    member_id: str = Field(foreign_key="members.id", max_length=40)
    # Snapshot of the customer's name when ordered; cleared when the member is erased.
    customer_name: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=300)
    status: OrderStatus = enum_field(OrderStatus, OrderStatus.open)
    currency: str = Field(max_length=3)
    prices_include_tax: bool = Field(default=False)
    subtotal: int = amount_field()
    discount: int = amount_field()
    tax: int = amount_field()
    total: int = amount_field()
    amount_paid: int = amount_field(default=0)
    amount_refunded: int = amount_field(default=0)
    promotion_id: str | None = Field(default=None, max_length=40)
    promotion_code: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    paid_at: datetime | None = utc_field(nullable=True)
    fulfilled_at: datetime | None = utc_field(nullable=True)
    cancelled_at: datetime | None = utc_field(nullable=True)


class OrderLine(Table, table=True):
    """A line as ordered: the product's name, SKU, price and tax rate at order time, and what the line came to."""

    __tablename__ = "order_lines"
    __table_args__ = (Index("ix_order_lines_order", "workspace_id", "order_id", "position"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    order_id: str = Field(foreign_key="orders.id", max_length=40, ondelete="CASCADE")
    position: int
    product_id: str = Field(foreign_key="products.id", max_length=40, index=True)
    name: str = Field(max_length=200)
    sku: str | None = Field(default=None, max_length=64)
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    unit_amount: int = amount_field()
    currency: str = Field(max_length=3)
    tax_rate: str = Field(max_length=12)
    discount: int = amount_field()
    net: int = amount_field()
    tax: int = amount_field()
    total: int = amount_field()
    # Whether this line took stock from the product (tracked when ordered); cancelling gives back exactly that.
    stock_reserved: bool = Field(default=False)
