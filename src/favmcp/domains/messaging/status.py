"""Moving a message's status: only forward (models.REPLACES), so a late or repeated callback changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col

from favmcp.domains.messaging.models import REPLACES, Message, MessageStatus
from favmcp.registry.context import ToolContext

STAMP = {
    MessageStatus.sent: "sent_at",
    MessageStatus.delivered: "delivered_at",
    MessageStatus.read: "read_at",
    MessageStatus.failed: "failed_at",
}


async def advance(ctx: ToolContext, status: MessageStatus, *where: Any, at: datetime, **values: Any) -> list[str]:
    """Set `status` on the messages matching `where` whose current status it may replace, in one conditional
    update (the database decides, so concurrent callbacks cannot move a message backwards); returns their ids.
    `values` are written with it (provider_message_id, error)."""
    stamp = {STAMP[status]: at} if status in STAMP else {}
    return await ctx.db.update_returning(
        Message,
        *where,
        col(Message.status).in_(sorted(REPLACES[status])),
        values={"status": status, "updated_at": at, **stamp, **values},
    )
