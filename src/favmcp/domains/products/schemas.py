from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from favmcp.core.money import Amount, CurrencyCode, Percent
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.domains.products.models import MovementKind, ProductStatus
from favmcp.registry.spec import ToolInput, UpdateInput, WriteInput

ProductId = Annotated[str, Field(min_length=1, max_length=40)]
Sku = Annotated[str, Field(min_length=1, max_length=64, description="Unique among active products.")]


class CreateProductInput(WriteInput):
    name: str = Field(min_length=1, max_length=200)
    sku: Sku | None = None
    description: str | None = Field(default=None, max_length=2000)
    unit_amount: Amount
    currency: CurrencyCode | None = Field(default=None, description="The workspace's by default.")
    tax_rate: Percent = Field(default="0", validate_default=True)
    track_stock: bool = True
    initial_stock: int = Field(default=0, ge=0, le=1_000_000_000)

    @model_validator(mode="after")
    def _stock_tracked(self) -> CreateProductInput:
        if self.initial_stock and not self.track_stock:
            raise ValueError("initial_stock needs track_stock")
        return self


class ProductInput(ToolInput):
    product_id: ProductId


class ListProductsInput(ToolInput, PageParams):
    status: ProductStatus | Literal["all"] = ProductStatus.active
    text: str | None = Field(default=None, max_length=200, description="Matches name or SKU.")


class UpdateProductInput(UpdateInput):
    not_clearable = frozenset({"name", "unit_amount", "currency", "tax_rate", "track_stock"})

    product_id: ProductId
    name: str | None = Field(default=None, min_length=1, max_length=200)
    sku: Sku | None = None
    description: str | None = Field(default=None, max_length=2000)
    unit_amount: Amount | None = Field(default=None, description="Minor units.")
    currency: CurrencyCode | None = None
    tax_rate: Percent | None = Field(default=None, description='e.g. "21"')
    track_stock: bool | None = None


class ArchiveProductInput(WriteInput):
    product_id: ProductId


class AdjustStockInput(WriteInput):
    product_id: ProductId
    delta: int = Field(ge=-1_000_000_000, le=1_000_000_000, description="Units to add, or remove if negative.")
    reason: str = Field(min_length=1, max_length=300, description="e.g. delivery, stock count, damaged.")

    @model_validator(mode="after")
    def _nonzero(self) -> AdjustStockInput:
        if self.delta == 0:
            raise ValueError("delta is not 0")
        return self


class ProductPublic(Schema):
    id: str
    status: ProductStatus
    name: str
    sku: str | None
    description: str | None
    unit_amount: int
    currency: str
    tax_rate: str
    track_stock: bool
    stock_on_hand: int = Field(description="Units available (reserved ones taken off).")
    created_at: datetime
    updated_at: datetime


class StockMovementPublic(Schema):
    id: str
    delta: int
    kind: MovementKind
    reason: str
    order_id: str | None
    created_at: datetime


class ProductDetail(ProductPublic):
    recent_movements: list[StockMovementPublic] = Field(description="The latest stock ledger entries, newest first.")
    movements_total: int


class ProductPage(Page[ProductPublic]):
    pass


class StockAdjusted(Schema):
    product: ProductPublic
    movement: StockMovementPublic


class BasketLine(Schema):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: int = Field(ge=1, le=100_000)
