"""Queueing an outbound message: the rules first (rules.py), then the message row and its outbox row in the
caller's transaction. The outbox delivers it after commit (delivery.py) and the provider's callbacks move its
status (callbacks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from favmcp.core.contact import Channel
from favmcp.core.ids import new_id
from favmcp.core.sealing import seal
from favmcp.domains.members.models import Member
from favmcp.domains.messaging import rules
from favmcp.domains.messaging.models import Direction, Message, MessageStatus, MessageTemplate
from favmcp.effects.approvals import SendKind
from favmcp.effects.models import OutboxKind, OutboxMessage
from favmcp.effects.outbox import SEAL_PURPOSE
from favmcp.registry.context import ToolContext

OUTBOX_CHANNEL = "message"  # outbox rows that deliver a Message; the row's payload names it


@dataclass(frozen=True)
class Outgoing:
    """One message to one member: a template with its variables, or free text (`text`)."""

    member: Member
    channel: Channel
    kind: SendKind
    template: MessageTemplate | None = None
    variables: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    subject: str | None = None  # free-text email only
    campaign_id: str | None = None
    booking_id: str | None = None
    dedupe_key: str | None = None  # the message happens once per key (a booking's reminder, a campaign's member)


@dataclass(frozen=True)
class Prepared:
    address: str
    subject: str | None
    body: str
    variables: dict[str, str]
    send_at: datetime  # now, or the end of the quiet hours for a deferred marketing message


async def prepare(
    ctx: ToolContext, out: Outgoing, *, at: datetime | None = None, defer_quiet: bool = False
) -> Prepared:
    """Check every rule and render the message; nothing is written (also what an approval request shows)."""
    config = await rules.channel_config(ctx, out.channel)
    address = await rules.check_reachable(ctx, out.member, out.channel, out.kind)
    if out.template is not None:
        subject, body, values = rules.render(out.template, out.member, out.variables)
    else:
        subject, body, values = out.subject, out.text or "", {}
    send_at = await rules.check_content(
        ctx, config, out.member, address, out.kind, out.template, at=at or ctx.now, defer_quiet=defer_quiet
    )
    return Prepared(address, subject, body, values, send_at)


async def queue(ctx: ToolContext, out: Outgoing, *, at: datetime | None = None, defer_quiet: bool = False) -> Message:
    """Check the rules, then write the message (queued) and its outbox row; refused messages write nothing."""
    ready = await prepare(ctx, out, at=at, defer_quiet=defer_quiet)
    message = Message(
        id=new_id("msg"),
        workspace_id=ctx.workspace_id,
        member_id=out.member.id,
        channel=out.channel,
        direction=Direction.outbound,
        kind=out.kind,
        status=MessageStatus.queued,
        address=ready.address,
        template_id=out.template.id if out.template else None,
        campaign_id=out.campaign_id,
        booking_id=out.booking_id,
        subject=ready.subject,
        body=ready.body,
        variables=ready.variables,
        dedupe_key=out.dedupe_key,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    return await write(ctx, message, send_at=ready.send_at)


async def write(ctx: ToolContext, message: Message, *, send_at: datetime) -> Message:
    """Add a queued message and the outbox row that delivers it from `send_at`, in the caller's transaction. Only
    for a message whose rules were checked (queue), or one to a team member (a campaign's test send)."""
    outbox = OutboxMessage(
        id=new_id("out"),
        workspace_id=ctx.workspace_id,
        channel=OUTBOX_CHANNEL,
        kind=OutboxKind.customer,
        recipient=message.address,
        subject=(message.subject or "")[:300],
        body=seal(ctx.settings.secret_key, SEAL_PURPOSE, message.body),
        payload={"message_id": message.id},
        next_attempt_at=send_at,
        created_at=ctx.now,
    )
    message.outbox_id = outbox.id
    ctx.db.add(message)
    ctx.db.add(outbox)
    await ctx.db.flush()
    return message
