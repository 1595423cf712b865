"""The bookings domain's part of get_member_profile: the customer's next bookings."""

from __future__ import annotations

from typing import Any

from sqlmodel import col

from favmcp.domains.bookings.models import ACTIVE, Booking
from favmcp.registry.context import ToolContext

UPCOMING = 5


async def upcoming_bookings(ctx: ToolContext, member_id: str) -> dict[str, Any]:
    """Active bookings starting after now, soonest first (as the caller may see them: staff see their own)."""
    rows = await ctx.db.all(
        ctx.db.select(
            Booking,
            col(Booking.member_id) == member_id,
            col(Booking.status).in_(ACTIVE),
            col(Booking.starts_at) > ctx.now,
        )
        .order_by(col(Booking.starts_at), col(Booking.id))
        .limit(UPCOMING)
    )
    return {
        "upcoming_bookings": [
            {
                "id": b.id,
                "service_id": b.service_id,
                "staff_user_id": b.staff_user_id,
                "starts_at": b.starts_at,
                "status": b.status,
            }
            for b in rows
        ]
    }
