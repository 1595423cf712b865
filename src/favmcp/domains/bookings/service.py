"""Reading bookings, shared by the bookings and classes tools."""

from __future__ import annotations

from favmcp.core.errors import not_found
from favmcp.domains.bookings.models import Booking
from favmcp.domains.bookings.schemas import BookingPublic
from favmcp.registry.context import ToolContext

FIND = "Find bookings with list_bookings."


async def load(ctx: ToolContext, booking_id: str, *, lock: bool = False) -> Booking:
    """The booking, as the caller may see it (another workspace's, or for staff another's, answers as missing)."""
    booking = await ctx.db.get(Booking, booking_id, lock=lock, fresh=True)
    if booking is None:
        raise not_found("booking", booking_id, hint=FIND)
    return booking


def public(booking: Booking) -> BookingPublic:
    return BookingPublic.model_validate(booking, from_attributes=True)
