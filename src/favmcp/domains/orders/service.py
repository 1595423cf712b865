"""Orders as something a payment settles: the contract the payments domain calls (receivable, apply_payment,
apply_refund). Amounts move by conditional UPDATEs, so an order is never overpaid nor over-refunded."""

from __future__ import annotations

from sqlmodel import col

from favmcp.core.errors import FieldError, conflict, invalid_state, not_found, validation_failed
from favmcp.core.money import CurrencyMismatchError, Money, Receivable
from favmcp.domains.orders.events import OrderPaid
from favmcp.domains.orders.lifecycle import ORDER_LIFECYCLE
from favmcp.domains.orders.models import Order, OrderStatus
from favmcp.registry.context import ToolContext

FIND = "Find orders with list_orders."


async def load(ctx: ToolContext, order_id: str, *, lock: bool = False) -> Order:
    order = await ctx.db.get(Order, order_id, lock=lock, fresh=True)
    if order is None:
        raise not_found("order", order_id, hint=FIND)
    return order


def refund_due(order: Order) -> int:
    """What a cancelled order still owes back: paid less refunded (0 while the order stands)."""
    return order.amount_paid - order.amount_refunded if order.status == OrderStatus.cancelled else 0


def receivable_of(order: Order) -> Receivable:
    return Receivable(
        kind="order",
        id=order.id,
        member_id=order.member_id,
        currency=order.currency,
        total=order.total,
        amount_paid=order.amount_paid,
        amount_remaining=order.total - order.amount_paid,
    )


async def receivable(ctx: ToolContext, order_id: str, *, lock: bool = True) -> Receivable:
    """What is owed on an order, read under its row lock (lock=False: a look before a provider call, checked
    again under the lock); refuses unless the order is open."""
    order = await load(ctx, order_id, lock=lock)
    if order.status != OrderStatus.open:
        raise invalid_state(
            f"Order {order.id} is {order.status}: only an open order takes payments.",
            current=order.status,
            hint="get_order shows what the order owes.",
        )
    return receivable_of(order)


def _positive(amount: Money) -> None:
    if amount.minor <= 0:
        raise validation_failed(
            "An amount applied to an order is positive.", [FieldError(field="amount", message="> 0")]
        )


async def apply_payment(ctx: ToolContext, order_id: str, amount: Money) -> None:
    """Add a payment to an open order, never past its total (one conditional UPDATE); the order becomes paid when
    nothing remains, emitting OrderPaid. Overpaying is a conflict; another currency is refused."""
    _positive(amount)
    order = await load(ctx, order_id)
    if amount.currency != order.currency:
        raise CurrencyMismatchError(order.currency, amount.currency)
    added = await ctx.db.update_returning(
        Order,
        col(Order.id) == order.id,
        col(Order.status) == OrderStatus.open,
        col(Order.amount_paid) + amount.minor <= col(Order.total),
        values={"amount_paid": col(Order.amount_paid) + amount.minor, "updated_at": ctx.now},
    )
    order = await load(ctx, order_id)
    if not added:
        if order.status != OrderStatus.open:
            raise invalid_state(
                f"Order {order.id} is {order.status}: only an open order takes payments.", current=order.status
            )
        remaining = Money(order.total - order.amount_paid, order.currency)
        raise conflict(
            f"A payment of {amount} would overpay order {order.id}: {remaining} remains.",
            hint="Record at most the amount remaining (get_order).",
            details={"reason": "overpayment", "amount_remaining": remaining.minor, "currency": order.currency},
        )
    if order.amount_paid == order.total:
        await mark_paid(ctx, order)


async def mark_paid(ctx: ToolContext, order: Order) -> None:
    moved = await ctx.transition(ORDER_LIFECYCLE, Order, order.id, OrderStatus.paid, values={"paid_at": ctx.now})
    if moved:
        ctx.emit(OrderPaid(order_id=order.id, member_id=order.member_id))


async def apply_refund(ctx: ToolContext, order_id: str, amount: Money) -> None:
    """Add a refund to the order's amount_refunded, never past what was paid (one conditional UPDATE)."""
    _positive(amount)
    order = await load(ctx, order_id)
    if amount.currency != order.currency:
        raise CurrencyMismatchError(order.currency, amount.currency)
    added = await ctx.db.update_returning(
        Order,
        col(Order.id) == order.id,
        col(Order.amount_refunded) + amount.minor <= col(Order.amount_paid),
        values={"amount_refunded": col(Order.amount_refunded) + amount.minor, "updated_at": ctx.now},
    )
    if not added:
        order = await load(ctx, order_id)
        left = Money(order.amount_paid - order.amount_refunded, order.currency)
        raise conflict(
            f"A refund of {amount} is more than order {order.id} has left to refund ({left}).",
            details={"reason": "over_refund", "refundable": left.minor, "currency": order.currency},
        )
