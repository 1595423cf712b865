"""Orders: a customer's products at the prices of the moment, stock reserved, paid, fulfilled or cancelled."""

from __future__ import annotations

from typing import Any

from sqlmodel import col

from favmcp.core.errors import FieldError, validation_failed
from favmcp.core.ids import new_id
from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.core.money import MAX_AMOUNT, Line, LineAmounts, Money, Percent, allocate, price_line, totals
from favmcp.domains.members import service as members
from favmcp.domains.orders import service
from favmcp.domains.orders.events import EVENTS, OrderCancelled, OrderCreated, OrderFulfilled
from favmcp.domains.orders.lifecycle import ORDER_LIFECYCLE
from favmcp.domains.orders.models import Order, OrderLine, OrderStatus
from favmcp.domains.orders.schemas import (
    CancelOrderInput,
    CancelPreview,
    CreateOrderInput,
    FulfilOrderInput,
    ListOrdersInput,
    OrderInput,
    OrderLinePublic,
    OrderPage,
    OrderPublic,
    OrderSummary,
    StockRelease,
)
from favmcp.domains.products import service as products
from favmcp.domains.products.models import MovementKind
from favmcp.domains.promotions import service as promotions
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.spec import tool

DOMAIN_NAME = "orders"


async def lines_of(ctx: ToolContext, order_id: str) -> list[OrderLine]:
    stmt = ctx.db.select(OrderLine, col(OrderLine.order_id) == order_id).order_by(col(OrderLine.position))
    return await ctx.db.all(stmt)


def summary(order: Order) -> OrderSummary:
    return OrderSummary(
        **order.model_dump(include=set(OrderSummary.model_fields) - {"amount_remaining", "refund_due"}),
        amount_remaining=remaining(order),
        refund_due=service.refund_due(order),
    )


def remaining(order: Order) -> int:
    return order.total - order.amount_paid if order.status == OrderStatus.open else 0


async def public(ctx: ToolContext, order: Order) -> OrderPublic:
    lines = [OrderLinePublic.model_validate(line, from_attributes=True) for line in await lines_of(ctx, order.id)]
    return OrderPublic(
        **order.model_dump(include=set(OrderPublic.model_fields) - {"lines", "amount_remaining", "refund_due"}),
        lines=lines,
        amount_remaining=remaining(order),
        refund_due=service.refund_due(order),
    )


@tool(domain=DOMAIN_NAME, title="Create order", hints="W", scope="orders:write", route="POST /v1/orders")
async def create_order(ctx: ToolContext, args: CreateOrderInput) -> OrderPublic:
    """Create an open order for a customer from product lines and an optional promotion code; the server prices
    it. Reserves stock, all or nothing: a line short of stock, an archived product or a code that does not apply
    refuses the whole order, saying why."""
    ws = await ctx.db.workspace()
    member = await members.load_for_write(ctx, args.member_id)
    wanted = products.quantities(args.lines)
    basket = await products.for_order(ctx, wanted, lock=True)
    currency = next(iter(basket.values())).currency
    order_id = new_id("ord")
    for product_id in sorted(wanted):
        product = basket[product_id]
        if product.track_stock:
            reason = f"reserved by order {order_id}"
            await products.move_stock(ctx, product, -wanted[product_id], MovementKind.order_reserve, reason, order_id)
    discount = None
    if args.promotion_code:
        discount = await promotions.redeem(
            ctx,
            code=args.promotion_code,
            member_id=member.id,
            subtotal=products.basket_subtotal(basket, args.lines),
            target=f"order:{order_id}",
        )
    before = [line.quantity * basket[line.product_id].unit_amount for line in args.lines]
    shares = allocate(discount.amount.minor if discount else 0, before)
    priced: list[LineAmounts] = []
    for line, share in zip(args.lines, shares, strict=True):
        product = basket[line.product_id]
        off = Money(share, currency) if share else None
        item = Line(line.quantity, Money(product.unit_amount, currency), Percent.parse(product.tax_rate), off)
        priced.append(price_line(item, prices_include_tax=ws.prices_include_tax))
    sums = totals(priced, currency)
    if max(sums.total.minor, *(line.before_discount.minor for line in priced)) > MAX_AMOUNT:
        raise validation_failed(
            "The order comes to more than an amount can hold; split it into smaller orders.",
            [FieldError(field="lines", message="smaller quantities")],
        )
    order = Order(
        id=order_id,
        workspace_id=ctx.workspace_id,
        member_id=member.id,
        customer_name=member.name,
        note=args.note,
        currency=currency,
        prices_include_tax=ws.prices_include_tax,
        subtotal=sums.subtotal.minor,
        discount=sums.discount.minor,
        tax=sums.tax.minor,
        total=sums.total.minor,
        amount_paid=0,
        amount_refunded=0,
        promotion_id=discount.promotion_id if discount else None,
        promotion_code=discount.code if discount else None,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    ctx.db.add(order)
    await ctx.db.flush()
    for position, (line, amounts) in enumerate(zip(args.lines, priced, strict=True)):
        product = basket[line.product_id]
        ctx.db.add(
            OrderLine(
                id=new_id("orl"),
                workspace_id=ctx.workspace_id,
                order_id=order.id,
                position=position,
                product_id=product.id,
                name=product.name,
                sku=product.sku,
                quantity=line.quantity,
                unit_amount=product.unit_amount,
                currency=currency,
                tax_rate=product.tax_rate,
                discount=amounts.discount.minor,
                net=amounts.net.minor,
                tax=amounts.tax.minor,
                total=amounts.gross.minor,
                stock_reserved=product.track_stock,
            )
        )
    await ctx.db.flush()
    ctx.record_change(order_id=order.id, member_id=member.id)
    ctx.emit(OrderCreated(order_id=order.id, member_id=member.id, total=order.total, currency=currency))
    if order.total == 0:
        await service.mark_paid(ctx, order)
    return await public(ctx, await service.load(ctx, order.id))


@tool(domain=DOMAIN_NAME, title="Get order", hints="R I", scope="orders:read", route="GET /v1/orders/{order_id}")
async def get_order(ctx: ToolContext, args: OrderInput) -> OrderPublic:
    """One order: lines as ordered, totals, amounts paid, remaining and due back, and status."""
    return await public(ctx, await service.load(ctx, args.order_id))


@tool(domain=DOMAIN_NAME, title="List orders", hints="R I", scope="orders:read", route="GET /v1/orders")
async def list_orders(ctx: ToolContext, args: ListOrdersInput) -> OrderPage:
    """Orders, newest first, by status, customer and creation time [created_from, created_to)."""
    stmt = ctx.db.select(Order)
    if args.status is not None:
        stmt = stmt.where(col(Order.status) == args.status)
    if args.member_id is not None:
        member, _ = await members.load(ctx, args.member_id)  # a merged member's orders are the survivor's
        stmt = stmt.where(col(Order.member_id) == member.id)
    if args.created_from is not None:
        stmt = stmt.where(col(Order.created_at) >= args.created_from)
    if args.created_to is not None:
        stmt = stmt.where(col(Order.created_at) < args.created_to)
    rows, cursor = await ctx.db.page(stmt, col(Order.id), args)
    return OrderPage(items=[summary(o) for o in rows], next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Fulfil order",
    hints="W I",
    scope="orders:write",
    route="POST /v1/orders/{order_id}/fulfil",
)
async def fulfil_order(ctx: ToolContext, args: FulfilOrderInput) -> OrderSummary:
    """Mark a paid order fulfilled (handed over or shipped); an open one is refused."""
    order = await service.load(ctx, args.order_id)
    hint = "Record the payment first (record_payment)." if order.status == OrderStatus.open else None
    moved = await ctx.transition(
        ORDER_LIFECYCLE,
        Order,
        order.id,
        OrderStatus.fulfilled,
        values={"fulfilled_at": ctx.now, "updated_at": ctx.now},
        hint=hint,
    )
    if moved:
        ctx.record_change(order_id=order.id)
        ctx.emit(OrderFulfilled(order_id=order.id, member_id=order.member_id))
    return summary(await service.load(ctx, order.id))


def _reserved(lines: list[OrderLine]) -> dict[str, StockRelease]:
    """Units each product gave to the order, summed over its lines."""
    out: dict[str, StockRelease] = {}
    for line in lines:
        if line.stock_reserved:
            got = out.get(line.product_id)
            quantity = line.quantity + (got.quantity if got else 0)
            out[line.product_id] = StockRelease(product_id=line.product_id, name=line.name, quantity=quantity)
    return out


async def _preview_cancel(ctx: ToolContext, args: CancelOrderInput) -> CancelPreview:
    order = await service.load(ctx, args.order_id)
    facts: dict[str, Any] = {"order_id": order.id, "status": order.status, "currency": order.currency}
    if order.status == OrderStatus.cancelled:
        return CancelPreview(
            summary=f"Order {order.id} is already cancelled; nothing will change.",
            nothing_to_do=True,
            stock_released=[],
            promotion_released=None,
            refund_due=service.refund_due(order),
            **facts,
        )
    if order.status not in ORDER_LIFECYCLE.sources_of(OrderStatus.cancelled):
        raise ORDER_LIFECYCLE.refuse(order.id, order.status, OrderStatus.cancelled)
    stock = sorted(_reserved(await lines_of(ctx, order.id)).values(), key=lambda r: r.product_id)
    due = order.amount_paid - order.amount_refunded
    refund = f" {Money(due, order.currency)} was paid and must be refunded separately." if due else ""
    return CancelPreview(
        summary=f"Cancel order {order.id} ({Money(order.total, order.currency)}): {sum(r.quantity for r in stock)} "
        f"units go back to stock"
        + (f" and the code {order.promotion_code} is given back." if order.promotion_code else ".")
        + refund,
        stock_released=stock,
        promotion_released=order.promotion_code,
        refund_due=due,
        **facts,
    )


@tool(
    domain=DOMAIN_NAME,
    title="Cancel order",
    hints="D I",
    scope="orders:write",
    gate="confirm",
    preview=_preview_cancel,
    route="POST /v1/orders/{order_id}/cancel",
)
async def cancel_order(ctx: ToolContext, args: CancelOrderInput) -> OrderSummary:
    """Cancel an open or paid order (not a fulfilled one): stock and the promotion use go back. Paid money is
    not refunded here: refund_due says what to refund (refund_payment)."""
    order = await service.load(ctx, args.order_id)
    moved = await ctx.transition(
        ORDER_LIFECYCLE,
        Order,
        order.id,
        OrderStatus.cancelled,
        values={"cancelled_at": ctx.now, "updated_at": ctx.now},
    )
    if moved:  # the one caller whose UPDATE cancelled the order gives the stock and the code back
        reserved = _reserved(await lines_of(ctx, order.id))
        for product_id in sorted(reserved):
            product = await products.load(ctx, product_id)
            reason = f"released by cancelled order {order.id}"
            quantity = reserved[product_id].quantity
            await products.move_stock(ctx, product, quantity, MovementKind.order_release, reason, order.id)
        await promotions.release(ctx, f"order:{order.id}")
        order = await service.load(ctx, order.id)
        ctx.record_change(order_id=order.id)
        ctx.emit(
            OrderCancelled(
                order_id=order.id,
                member_id=order.member_id,
                refund_due=service.refund_due(order),
                currency=order.currency,
            )
        )
    return summary(await service.load(ctx, order.id))


def _export(order: Order) -> dict[str, Any]:
    return summary(order).model_dump(mode="json")


MEMBER_LINKS = [
    MemberLink(
        "orders",
        Order,
        "member_id",
        OnMerge.move,
        OnErase.pseudonymise,
        personal_fields={"customer_name": None, "note": None},
        export=_export,
    ),
]


async def _member_money(ctx: ToolContext, member_id: str) -> dict[str, Any]:
    """The customer's unpaid orders, oldest first, for get_member_profile."""
    unpaid = await ctx.db.all(
        ctx.db.select(Order, col(Order.member_id) == member_id, col(Order.status) == OrderStatus.open).order_by(
            col(Order.id)
        )
    )
    return {
        "open_orders": [
            {
                "id": o.id,
                "currency": o.currency,
                "total": o.total,
                "amount_remaining": o.total - o.amount_paid,
                "created_at": o.created_at,
            }
            for o in unpaid
        ]
    }


DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[create_order, get_order, list_orders, fulfil_order, cancel_order],
    member_links=MEMBER_LINKS,
    events=EVENTS,
    member_money=_member_money,
)
