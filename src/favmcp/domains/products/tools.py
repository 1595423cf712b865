"""Products: retail items with a price, a tax rate, a SKU and stock kept as an append-only ledger."""

from __future__ import annotations

from sqlalchemy import or_
from sqlmodel import col

from favmcp.core.errors import invalid_state
from favmcp.core.ids import new_id
from favmcp.core.text import escape_like
from favmcp.domains.products import service
from favmcp.domains.products.models import MovementKind, Product, ProductStatus, StockMovement
from favmcp.domains.products.schemas import (
    AdjustStockInput,
    ArchiveProductInput,
    CreateProductInput,
    ListProductsInput,
    ProductDetail,
    ProductInput,
    ProductPage,
    ProductPublic,
    StockAdjusted,
    StockMovementPublic,
    UpdateProductInput,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.spec import tool

DOMAIN_NAME = "products"
RECENT = 10


def public(product: Product) -> ProductPublic:
    return ProductPublic.model_validate(product, from_attributes=True)


def movement_public(entry: StockMovement) -> StockMovementPublic:
    return StockMovementPublic.model_validate(entry, from_attributes=True)


@tool(domain=DOMAIN_NAME, title="Create product", hints="W", scope="products:write", route="POST /v1/products")
async def create_product(ctx: ToolContext, args: CreateProductInput) -> ProductPublic:
    """Create a retail product: price (tax-inclusive if the workspace's prices are), tax rate, optional SKU
    (unique among active products) and starting stock."""
    await service.ensure_sku_free(ctx, args.sku, None)
    product = Product(
        id=new_id("prd"),
        workspace_id=ctx.workspace_id,
        name=args.name,
        sku=args.sku,
        description=args.description,
        unit_amount=args.unit_amount,
        currency=args.currency or (await ctx.db.workspace()).currency,
        tax_rate=str(args.tax_rate),
        track_stock=args.track_stock,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    await service.save(ctx, product)
    if args.initial_stock:
        await service.move_stock(ctx, product, args.initial_stock, MovementKind.adjust, "initial stock")
    ctx.record_change(product_id=product.id)
    return public(product)


@tool(domain=DOMAIN_NAME, title="List products", hints="R I", scope="products:read", route="GET /v1/products")
async def list_products(ctx: ToolContext, args: ListProductsInput) -> ProductPage:
    """Products, newest first, with price and stock; active ones unless a status is given."""
    stmt = ctx.db.select(Product)
    if args.status != "all":
        stmt = stmt.where(col(Product.status) == args.status)
    if args.text:
        pattern = f"%{escape_like(args.text.lower())}%"
        stmt = stmt.where(
            or_(
                col(Product.name).ilike(pattern, escape="\\"),
                col(Product.sku).ilike(pattern, escape="\\"),
            )
        )
    rows, cursor = await ctx.db.page(stmt, col(Product.id), args)
    return ProductPage(items=[public(p) for p in rows], next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME, title="Get product", hints="R I", scope="products:read", route="GET /v1/products/{product_id}"
)
async def get_product(ctx: ToolContext, args: ProductInput) -> ProductDetail:
    """One product in full, with its latest stock movements."""
    product = await service.load(ctx, args.product_id)
    of_product = col(StockMovement.product_id) == product.id
    recent = await ctx.db.all(
        ctx.db.select(StockMovement, of_product).order_by(col(StockMovement.id).desc()).limit(RECENT)
    )
    return ProductDetail(
        **public(product).model_dump(),
        recent_movements=[movement_public(m) for m in recent],
        movements_total=await ctx.db.count(StockMovement, of_product),
    )


@tool(
    domain=DOMAIN_NAME,
    title="Update product",
    hints="W I",
    scope="products:write",
    route="PATCH /v1/products/{product_id}",
)
async def update_product(ctx: ToolContext, args: UpdateProductInput) -> ProductPublic:
    """Change an active product; fields left out stay, null clears sku or description. Prices apply to new
    orders. Stock: adjust_stock."""
    product = await service.load(ctx, args.product_id, lock=True)
    service.ensure_active(product)
    given = args.model_dump(exclude_unset=True, exclude={"product_id", "idempotency_key"})
    if "tax_rate" in given:
        given["tax_rate"] = str(args.tax_rate)  # stored as its decimal text
    changes = {k: v for k, v in given.items() if getattr(product, k) != v}
    if changes:
        if "sku" in changes:
            await service.ensure_sku_free(ctx, changes["sku"], product.id)
        for name, value in changes.items():
            setattr(product, name, value)
        product.updated_at = ctx.now
        await service.save(ctx, product)
        ctx.record_change(product_id=product.id, fields=sorted(changes))
    return public(product)


@tool(
    domain=DOMAIN_NAME,
    title="Archive product",
    hints="D I",
    scope="products:write",
    route="DELETE /v1/products/{product_id}",
)
async def archive_product(ctx: ToolContext, args: ArchiveProductInput) -> ProductPublic:
    """Archive a product: no new orders take it and its SKU is free again; existing orders keep it."""
    product = await service.load(ctx, args.product_id)
    archived = await ctx.db.update_returning(
        Product,
        col(Product.id) == product.id,
        col(Product.status) == ProductStatus.active,
        values={"status": ProductStatus.archived, "archived_at": ctx.now, "updated_at": ctx.now},
    )
    if archived:
        ctx.record_change(product_id=product.id)
    return public(await service.load(ctx, product.id))


@tool(
    domain=DOMAIN_NAME,
    title="Adjust stock",
    hints="W",
    scope="products:write",
    route="POST /v1/products/{product_id}/stock-adjustments",
)
async def adjust_stock(ctx: ToolContext, args: AdjustStockInput) -> StockAdjusted:
    """Add or remove stock of a tracked product with a reason, in the stock ledger. Refuses to go below zero,
    naming the units available."""
    product = await service.load(ctx, args.product_id)
    if not product.track_stock:
        raise invalid_state(
            f"Product {product.id} does not track stock.",
            current="untracked",
            hint="Turn stock tracking on with update_product (track_stock) first.",
        )
    entry = await service.move_stock(ctx, product, args.delta, MovementKind.adjust, args.reason)
    ctx.record_change(product_id=product.id, movement_id=entry.id, delta=args.delta)
    return StockAdjusted(product=public(product), movement=movement_public(entry))


DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[create_product, list_products, get_product, update_product, archive_product, adjust_stock],
)
