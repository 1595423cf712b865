"""Earning by itself: points for completed bookings, payments and paid orders, and their reversal on refunds.

The subscribers run in the emitting call's transaction, so the points are earned with the event or not at all;
each source earns once however often its event is delivered (ledger.credit is once per source).
"""

from __future__ import annotations

import math

from favmcp.domains.bookings.events import BookingCompleted
from favmcp.domains.loyalty import ledger
from favmcp.domains.loyalty.models import EntryKind, LoyaltyProgram, PointsEntry
from favmcp.domains.loyalty.program import load_program
from favmcp.domains.orders.events import OrderPaid
from favmcp.domains.payments.events import PaymentRefunded, PaymentSucceeded
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
    """Written by the earning work (see the brief)."""


async def on_payment_succeeded(ctx: ToolContext, event: PaymentSucceeded) -> None:
    """Written by the earning work (see the brief)."""


async def on_payment_refunded(ctx: ToolContext, event: PaymentRefunded) -> None:
    """Written by the earning work (see the brief)."""


async def on_order_paid(ctx: ToolContext, event: OrderPaid) -> None:
    """Written by the earning work (see the brief)."""
