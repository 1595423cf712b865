"""Products and their stock ledger: stock_on_hand is kept equal to the ledger sum and never below zero."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, text
from sqlmodel import Field

from favmcp.db.types import Table, amount_field, enum_field, utc_field, workspace_fk


class ProductStatus(StrEnum):
    active = "active"
    archived = "archived"


class MovementKind(StrEnum):
    adjust = "adjust"
    order_reserve = "order_reserve"
    order_release = "order_release"


NOT_ARCHIVED = text("status = 'active'")
ONLY_ACTIVE: dict[str, Any] = {"sqlite_where": NOT_ARCHIVED, "postgresql_where": NOT_ARCHIVED}


class Product(Table, table=True):
    """A retail product. The SKU is unique per workspace among active products."""

    __tablename__ = "products"
    __table_args__ = (
        Index("uq_products_active_sku", "workspace_id", "sku", unique=True, **ONLY_ACTIVE),
        Index("ix_products_workspace_keyset", "workspace_id", "id"),
        CheckConstraint("stock_on_hand >= 0", name="ck_products_stock_not_negative"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    status: ProductStatus = enum_field(ProductStatus, ProductStatus.active)
    name: str = Field(max_length=200)
    sku: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=2000)
    unit_amount: int = amount_field()
    currency: str = Field(max_length=3)
    tax_rate: str = Field(default="0", max_length=12)
    track_stock: bool = Field(default=True)
    stock_on_hand: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    archived_at: datetime | None = utc_field(nullable=True)


class StockMovement(Table, table=True):
    """One entry of the append-only stock ledger: never edited, never deleted."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_product", "workspace_id", "product_id", "id"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    product_id: str = Field(foreign_key="products.id", max_length=40, ondelete="CASCADE")
    delta: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: MovementKind = enum_field(MovementKind)
    reason: str = Field(max_length=300)
    order_id: str | None = Field(default=None, max_length=40, index=True)
    actor_user_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
