"""The workspace's booking rules: minimum notice, maximum advance, slot step, confirmation, cancellation window,
fees. (Tools being written.)"""

from __future__ import annotations

from favmcp.domains.bookings.models import BookingSettings
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import ToolSpec


async def load_settings(ctx: ToolContext) -> BookingSettings:
    """The workspace's booking rules; the defaults until update_booking_settings first saves them."""
    found = await ctx.db.first(ctx.db.select(BookingSettings))
    if found is not None:
        return found
    return BookingSettings(workspace_id=ctx.workspace_id, updated_at=ctx.now)


TOOLS: list[ToolSpec] = []
