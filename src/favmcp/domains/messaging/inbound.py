"""A customer's message to us: recorded as it came (customer text, untrusted: outputs mark it), attached to the
active member with that phone or email, and moving their last activity. On SMS a stop word alone (STOP, STOPALL,
UNSUBSCRIBE, END, QUIT, CANCEL, REVOKE, OPTOUT; any case) suppresses the number and records an opt-out; START or
UNSTOP lifts the stop and records consent again."""

from __future__ import annotations

from sqlmodel import col

from favmcp.core.contact import Channel
from favmcp.core.ids import new_id
from favmcp.domains.members import service as members
from favmcp.domains.members.models import Member, MemberStatus
from favmcp.domains.messaging.delivery import suppress
from favmcp.domains.messaging.models import Direction, Message, MessageStatus, Suppression, SuppressionReason
from favmcp.registry.context import ToolContext

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP"})
MAX_TEXT = 10_000


async def member_at(ctx: ToolContext, channel: Channel, address: str) -> Member | None:
    """The active member with this phone (WhatsApp, SMS) or email."""
    field = col(Member.email) if channel is Channel.email else col(Member.phone)
    stmt = ctx.db.select(Member, field == address, col(Member.status) == MemberStatus.active)
    return await ctx.db.first(stmt.order_by(col(Member.id)).limit(1))


async def record(
    ctx: ToolContext, channel: Channel, address: str, text: str, provider_message_id: str | None
) -> Message:
    member = await member_at(ctx, channel, address)
    message = ctx.db.add(
        Message(
            id=new_id("msg"),
            workspace_id=ctx.workspace_id,
            member_id=member.id if member else None,
            channel=channel,
            direction=Direction.inbound,
            status=MessageStatus.received,
            address=address,
            body=text[:MAX_TEXT],
            provider_message_id=provider_message_id[:120] if provider_message_id else None,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    )
    await ctx.db.flush()
    if member is not None:
        await members.record_activity(ctx, member.id)
    if channel is Channel.sms:
        await _stop_words(ctx, address, text, member)
    ctx.record_change(message_id=message.id, inbound=channel.value)
    return message


async def _stop_words(ctx: ToolContext, address: str, text: str, member: Member | None) -> None:
    word = text.strip().upper()
    if word in STOP_WORDS:
        await suppress(ctx, Channel.sms, address, SuppressionReason.stop)
        if member is not None:
            await members.add_consent(ctx, member.id, Channel.sms.value, False, "sms_stop")
        ctx.record_change(sms_stop=True)
    elif word in START_WORDS:
        await ctx.db.delete(
            Suppression,
            col(Suppression.channel) == Channel.sms,
            col(Suppression.address) == address,
            col(Suppression.reason) == SuppressionReason.stop,
        )
        if member is not None:
            await members.add_consent(ctx, member.id, Channel.sms.value, True, "sms_start")
        ctx.record_change(sms_start=True)
