"""Earning by itself: points for completed bookings, payments and paid orders, and their reversal on refunds.

The subscribers run in the emitting call's transaction, so the points are earned with the event or not at all;
each source earns once however often its event is delivered (ledger.credit is once per source).
"""

from __future__ import annotations

import math
from fractions import Fraction

from sqlmodel import col

from favmcp.core.money import minor_units, round_half_up
from favmcp.domains.bookings.events import BookingCompleted
from favmcp.domains.loyalty import ledger
from favmcp.domains.loyalty.models import EntryKind, LoyaltyProgram, PointsEntry, TierBasis
from favmcp.domains.loyalty.program import ProductRule, SpendRule, VisitRule, earn_rules, load_program
from favmcp.domains.orders.events import OrderPaid
from favmcp.domains.orders.models import Order, OrderLine
from favmcp.domains.payments.events import PaymentRefunded, PaymentSucceeded
from favmcp.domains.payments.models import Payment, Refund
from favmcp.domains.subscriptions import service as subscriptions
from favmcp.domains.tiers import standing
from favmcp.registry.context import ToolContext


async def earn(
    ctx: ToolContext,
    member_id: str,
    points: int,
    *,
    source: str | None,
    reason: str | None = None,
    multiply: bool = True,
    program: LoyaltyProgram | None = None,
) -> PointsEntry | None:
    """Credit earned points (times the tier's multiplier, rounded down, unless multiply is False), then promote
    the customer's tier if they now reach a higher one. None when the source earned already or nothing is due."""
    program = program or await load_program(ctx)
    acct = await ledger.account(ctx, member_id)
    if multiply:
        points = math.floor(points * await standing.multiplier(ctx, acct))
    entry = None
    if points > 0:
        entry = await ledger.credit(
            ctx,
            acct,
            points,
            kind=EntryKind.earn,
            expires_at=ledger.expiry_from(program, ctx.now),
            source=source,
            reason=reason,
        )
    await standing.promote(ctx, acct, program)
    return entry


async def on_booking_completed(ctx: ToolContext, event: BookingCompleted) -> None:
    """The visit rules for the booking's service (or for any service) earn the sum of their points, once per
    booking, times the tier multiplier. A refund never takes them back: the visit happened."""
    program = await load_program(ctx)
    if not program.enabled:
        return
    points = sum(
        r.points for r in earn_rules(program) if isinstance(r, VisitRule) and r.service_id in (None, event.service_id)
    )
    if points:
        await earn(ctx, event.member_id, points, source=f"booking:{event.booking_id}", program=program)


async def on_payment_succeeded(ctx: ToolContext, event: PaymentSucceeded) -> None:
    """The spend rules in the payment's currency (limited to a plan: the invoice is one of that plan's
    subscription periods) earn floor(amount x points / one currency unit) each, once per payment. A spend-based
    tier moves with payments, so the standing is looked at even when no points are due."""
    program = await load_program(ctx)
    if not program.enabled:
        return
    rules = [r for r in earn_rules(program) if isinstance(r, SpendRule) and r.currency == event.currency]
    plan = None
    if event.invoice_id is not None and any(r.plan_id is not None for r in rules):
        plan = await subscriptions.plan_of_invoice(ctx, event.invoice_id)
    unit = 10 ** minor_units(event.currency)
    points = sum(event.amount * r.points // unit for r in rules if r.plan_id in (None, plan))
    if points or program.tier_basis == TierBasis.lifetime_spend:
        await earn(ctx, event.member_id, points, source=f"payment:{event.payment_id}", program=program)


async def on_order_paid(ctx: ToolContext, event: OrderPaid) -> None:
    """The product rules earn points x quantity over the order's lines (a rule without a product: any), once
    per order."""
    program = await load_program(ctx)
    if not program.enabled:
        return
    rules = [r for r in earn_rules(program) if isinstance(r, ProductRule)]
    if not rules:
        return
    db = ctx.db.unfiltered
    lines = await db.all(db.select(OrderLine, col(OrderLine.order_id) == event.order_id))
    points = sum(r.points * line.quantity for line in lines for r in rules if r.product_id in (None, line.product_id))
    if points:
        await earn(ctx, event.member_id, points, source=f"order:{event.order_id}", program=program)


async def _reversed_before(ctx: ToolContext, sources: list[str]) -> int:
    """What the reversals of these sources were meant to take (taken plus shortfall)."""
    if not sources:
        return 0
    db = ctx.db.unfiltered
    entries = await db.all(
        db.select(PointsEntry, col(PointsEntry.kind) == EntryKind.reversal, col(PointsEntry.source).in_(sources))
    )
    return sum(-e.points + e.shortfall for e in entries)


async def _reverse_share(
    ctx: ToolContext, earned: str, refunded: int, whole: int, *, source: str, earlier: list[str]
) -> None:
    """Take back the refunded share of what `earned` earned. Cumulative, so rounding never drifts: after refunds
    totalling R of a whole W that earned E, round_half_up(E x R / W) has been reversed in all; each refund
    reverses the difference with what the earlier ones meant to (the last full refund reaches exactly E)."""
    found = await ledger.lot_of_source(ctx, earned)
    if found is None or whole <= 0:
        return
    entry, lot_id = found
    acct = await ledger.account(ctx, entry.member_id)
    target = round_half_up(Fraction(entry.points * min(refunded, whole), whole))
    due = target - await _reversed_before(ctx, [s for s in earlier if s != source])
    await ledger.reverse(ctx, acct, due, source=source, first_lot=lot_id, reason="refund")


async def on_payment_refunded(ctx: ToolContext, event: PaymentRefunded) -> None:
    """Reverse in proportion what the payment earned (source refund:<refund id>) and, if it paid an order, the
    order's product points in proportion of the order's refunded share (refund:<refund id>:order). Never below
    zero: what was spent already is recorded as the reversal's shortfall. Done whether or not the program is on."""
    db = ctx.db.unfiltered
    payment = await db.get(Payment, event.payment_id, fresh=True)
    if payment is None:
        return
    refunds = await db.all(db.select(Refund, col(Refund.payment_id) == payment.id))
    await _reverse_share(
        ctx,
        f"payment:{payment.id}",
        payment.amount_refunded,
        payment.amount,
        source=f"refund:{event.refund_id}",
        earlier=[f"refund:{r.id}" for r in refunds],
    )
    if payment.order_id is None:
        return
    order = await db.get(Order, payment.order_id, fresh=True)
    if order is None:
        return
    paid_by = await db.all(db.select(Payment, col(Payment.order_id) == order.id))
    of_order = await db.all(db.select(Refund, col(Refund.payment_id).in_([p.id for p in paid_by])))
    await _reverse_share(
        ctx,
        f"order:{order.id}",
        order.amount_refunded,
        order.total,
        source=f"refund:{event.refund_id}:order",
        earlier=[f"refund:{r.id}:order" for r in of_order],
    )
