"""Products shared by the tools and by orders: loading, and stock moved through the append-only ledger.

stock_on_hand moves only by one conditional UPDATE (`stock_on_hand + delta >= 0`) written together with its
ledger entry, so it always equals the ledger sum and never goes below zero, however many writers race.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.core.errors import FavError, FieldError, conflict, invalid_state, not_found, validation_failed
from favmcp.core.ids import new_id
from favmcp.core.money import Money, total
from favmcp.domains.products.models import MovementKind, Product, ProductStatus, StockMovement
from favmcp.domains.products.schemas import BasketLine
from favmcp.registry.context import ToolContext

FIND = "Find products with list_products."


async def load(ctx: ToolContext, product_id: str, *, lock: bool = False) -> Product:
    product = await ctx.db.get(Product, product_id, lock=lock, fresh=True)
    if product is None:
        raise not_found("product", product_id, hint=FIND)
    return product


def ensure_active(product: Product) -> None:
    if product.status != ProductStatus.active:
        raise invalid_state(
            f"Product {product.id} ({product.name}) is archived: it cannot be ordered or changed.",
            current=product.status,
            hint="Create a new product (create_product) to sell it again.",
            product_id=product.id,
        )


def insufficient(product_id: str, name: str, available: int, wanted: int) -> FavError:
    return conflict(
        f"Not enough stock of {name} ({product_id}): {available} available, {wanted} needed.",
        hint="Order less, or add stock with adjust_stock.",
        details={"reason": "insufficient_stock", "product_id": product_id, "available": available, "requested": wanted},
    )


async def move_stock(
    ctx: ToolContext,
    product: Product,
    delta: int,
    kind: MovementKind,
    reason: str,
    order_id: str | None = None,
) -> StockMovement:
    """Add `delta` to the product's stock and append the ledger entry, in one go; refuses to go below zero,
    naming the stock available (read after the refused UPDATE, so it is the current figure)."""
    moved = await ctx.db.update_returning(
        Product,
        col(Product.id) == product.id,
        col(Product.stock_on_hand) + delta >= 0,
        values={"stock_on_hand": col(Product.stock_on_hand) + delta},
    )
    if not moved:
        current = await load(ctx, product.id)
        raise insufficient(product.id, product.name, current.stock_on_hand, -delta)
    entry = StockMovement(
        id=new_id("stk"),
        workspace_id=ctx.workspace_id,
        product_id=product.id,
        delta=delta,
        kind=kind,
        reason=reason,
        order_id=order_id,
        actor_user_id=ctx.caller.user_id,
        created_at=ctx.now,
    )
    ctx.db.add(entry)
    await ctx.db.flush()
    await ctx.db.refresh(product)
    return entry


async def save(ctx: ToolContext, product: Product) -> None:
    """Write a product inside a savepoint: a concurrent writer who took the SKU first gets a conflict naming it."""
    sku = product.sku
    try:
        async with ctx.db.savepoint():
            ctx.db.add(product)
            await ctx.db.flush()
    except IntegrityError:
        await ensure_sku_free(ctx, sku, product.id)
        raise


async def ensure_sku_free(ctx: ToolContext, sku: str | None, exclude_id: str | None) -> None:
    if sku is None:
        return
    stmt = ctx.db.select(Product, col(Product.sku) == sku, col(Product.status) == ProductStatus.active)
    if exclude_id:
        stmt = stmt.where(col(Product.id) != exclude_id)
    existing = await ctx.db.first(stmt)
    if existing is not None:
        raise conflict(
            f"An active product already has the SKU {sku}: {existing.id} ({existing.name}).",
            hint="Use another SKU, or update or archive the existing product.",
            details={"existing_product_id": existing.id, "field": "sku"},
        )


async def for_order(ctx: ToolContext, quantities: dict[str, int], *, lock: bool = False) -> dict[str, Product]:
    """The products of a basket (product id -> quantity), each existing and active, all in one currency. lock:
    their rows locked, in id order (an archive or a price change waits for the order, never half-way)."""
    products: dict[str, Product] = {}
    for product_id in sorted(quantities):
        product = await load(ctx, product_id, lock=lock)
        ensure_active(product)
        products[product_id] = product
    currencies = {p.currency for p in products.values()}
    if len(currencies) > 1:
        raise validation_failed(
            f"One order is in one currency; these products are priced in {', '.join(sorted(currencies))}.",
            [FieldError(field="lines", message="products of one currency")],
        )
    return products


def quantities(lines: Iterable[BasketLine]) -> dict[str, int]:
    """Units per product (a product on two lines counts once, with both quantities)."""
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.product_id] = wanted.get(line.product_id, 0) + line.quantity
    return wanted


def basket_subtotal(products: dict[str, Product], lines: Iterable[BasketLine]) -> Money:
    """The basket at list prices (quantity x price per line, as the prices are entered), before any discount."""
    lines = list(lines)
    currency = next(iter(products.values())).currency
    return total((Money(line.quantity * products[line.product_id].unit_amount, currency) for line in lines), currency)
