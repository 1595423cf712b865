"""Sending a campaign: its audience, member by member, through messaging.sending.queue (every rule, then the
message and its outbox row), spread over time by the channel's rate, a batch at a time; stopping it; and the job
that starts scheduled campaigns, continues their fan-out and marks them sent once every message has left.

Each member gets one message per campaign: the fan-out locks the campaign row (concurrent runs take turns and the
later one sees the earlier one's messages), and the message's dedupe_key is unique besides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func
from sqlmodel import col

from favmcp.core.clock import utc
from favmcp.core.contact import Channel
from favmcp.core.errors import ErrorCode, FavError, not_found
from favmcp.domains.campaigns import audience
from favmcp.domains.campaigns.lifecycle import CAMPAIGN_LIFECYCLE
from favmcp.domains.campaigns.models import Campaign, CampaignStatus
from favmcp.domains.campaigns.schemas import CampaignAudience, Rendered
from favmcp.domains.members.models import Member
from favmcp.domains.messaging import rules, sending, status
from favmcp.domains.messaging.models import ChannelConfig, Message, MessageStatus, MessageTemplate, TemplateStatus
from favmcp.effects.approvals import SendKind
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.registry.context import ToolContext

# Messages per minute each channel is given, shared by the workspace's campaigns: about the providers' own limits
# for a young account (a Twilio long code takes one SMS a second; WhatsApp's throughput grows with the number's tier).
RATE_PER_MINUTE = {Channel.whatsapp: 60, Channel.sms: 60, Channel.email: 300}
BATCH = 200  # members queued per campaign per run (the job runs every minute)
CANCELLED = "campaign cancelled"


def recipients_of(campaign_id: str) -> list[ColumnElement[bool]]:
    """The campaign's messages to its audience (a test send has no dedupe_key and is not one of them)."""
    return [col(Message.campaign_id) == campaign_id, col(Message.dedupe_key).is_not(None)]


def dedupe_key(campaign_id: str, member_id: str) -> str:
    return f"campaign:{campaign_id}:{member_id}"


async def load(ctx: ToolContext, campaign_id: str, *, lock: bool = False) -> Campaign:
    campaign = await ctx.db.get(Campaign, campaign_id, lock=lock)
    if campaign is None:
        raise not_found("campaign", campaign_id, hint="list_campaigns shows the campaigns.")
    return campaign


async def template_of(ctx: ToolContext, campaign: Campaign) -> MessageTemplate:
    template = await ctx.db.get(MessageTemplate, campaign.template_id)
    if template is None:
        raise not_found("message template", campaign.template_id, hint="Create the campaign again with a template.")
    return template


async def ensure_sendable(ctx: ToolContext, campaign: Campaign, template: MessageTemplate) -> None:
    """The rules that hold for the whole campaign: a configured channel and an approved template."""
    await rules.channel_config(ctx, campaign.channel)
    if template.status is not TemplateStatus.approved:
        raise rules.refuse(
            rules.Rule.template_not_approved,
            f"The template {template.name!r} is {template.status.value}, not approved.",
            hint="Wait for its approval (list_message_templates) or choose another template.",
            template_status=template.status.value,
        )


def sample(template: MessageTemplate, variables: dict[str, str]) -> Rendered:
    """The template filled with the campaign's values; the member's own variables stay as {{name}}."""

    def fill(text: str) -> str:
        return rules.VARIABLE.sub(lambda m: str(variables.get(m.group(1), m.group(0))), text)

    return Rendered(subject=fill(template.subject) if template.subject else None, body=fill(template.body))


def content_of(template: MessageTemplate, variables: dict[str, str]) -> str:
    """The exact message, as an approver reads it (and as send_campaign checks it again when it runs)."""
    rendered = sample(template, variables)
    subject = f"Subject: {rendered.subject}\n" if rendered.subject else ""
    return f"Template {template.name!r} v{template.version} ({template.language}):\n{subject}{rendered.body}"


async def audience_count(ctx: ToolContext, campaign: Campaign, as_of: datetime) -> int:
    aud = CampaignAudience.model_validate(campaign.audience)
    return await ctx.db.count(Member, audience.everyone(ctx, aud, campaign.channel, as_of))


async def start(ctx: ToolContext, campaign: Campaign) -> None:
    await ctx.transition(
        CAMPAIGN_LIFECYCLE,
        Campaign,
        campaign.id,
        CampaignStatus.sending,
        values={"started_at": ctx.now, "updated_at": ctx.now},
    )


@dataclass
class FanOut:
    queued: int = 0
    skipped: int = 0
    done: bool = False


@dataclass(frozen=True)
class Pace:
    """When each next message of a channel may go: one every `gap`, after the channel's last campaign message
    still waiting, never before now, and outside the quiet hours (marketing waits them out)."""

    gap: timedelta
    quiet: rules.QuietHours | None
    tz: ZoneInfo

    def allowed(self, at: datetime) -> datetime:
        return at if self.quiet is None else self.quiet.ends_after(at, self.tz)


async def _pace(ctx: ToolContext, channel: Channel) -> tuple[Pace, datetime]:
    """The channel's pace and its next free slot. The channel's row is locked first: fan-outs of campaigns on one
    channel take turns, so two campaigns share the channel's rate rather than each having it whole."""
    config = await rules.channel_config(ctx, channel)
    await ctx.db.get(ChannelConfig, config.id, lock=True)
    tz = ZoneInfo((await ctx.db.workspace()).timezone)
    pace = Pace(timedelta(minutes=1) / RATE_PER_MINUTE[channel], rules.quiet_hours_of(config), tz)
    waiting = ctx.db.select_columns(Message, col(Message.outbox_id)).where(
        col(Message.channel) == channel,
        col(Message.campaign_id).is_not(None),
        col(Message.dedupe_key).is_not(None),
        col(Message.status) == MessageStatus.queued,
    )
    last = (
        await ctx.db.rows(
            ctx.db.select_columns(OutboxMessage, func.max(col(OutboxMessage.next_attempt_at))).where(
                col(OutboxMessage.id).in_(waiting), col(OutboxMessage.status) == OutboxStatus.pending
            )
        )
    )[0][0]
    slot = ctx.now if last is None else max(ctx.now, utc(last) + pace.gap)
    return pace, pace.allowed(slot)


async def fan_out(ctx: ToolContext, campaign_id: str, limit: int = BATCH) -> FanOut:
    """Queue the next `limit` members of a sending campaign that have no message of it yet, each at its turn of
    the channel's rate. A member a rule refuses is skipped (counted). Done when none is left: audience_size is
    then the number of members messaged."""
    result = FanOut()
    campaign = await load(ctx, campaign_id, lock=True)  # concurrent fan-outs of one campaign take turns
    if campaign.status is not CampaignStatus.sending or campaign.audience_size is not None:
        result.done = True
        return result
    template = await template_of(ctx, campaign)
    await ensure_sendable(ctx, campaign, template)
    pace, slot = await _pace(ctx, campaign.channel)
    aud = CampaignAudience.model_validate(campaign.audience)
    not_yet = ~ctx.db.exists(Message, col(Message.campaign_id) == campaign.id, col(Message.member_id) == col(Member.id))
    stmt = ctx.db.select(Member, audience.everyone(ctx, aud, campaign.channel, campaign.started_at or ctx.now), not_yet)
    members = await ctx.db.all(stmt.order_by(col(Member.id)).limit(limit))
    for member in members:
        out = sending.Outgoing(
            member=member,
            channel=campaign.channel,
            kind=SendKind.marketing,
            template=template,
            variables=dict(campaign.variables),
            campaign_id=campaign.id,
            dedupe_key=dedupe_key(campaign.id, member.id),
        )
        try:
            await sending.queue(ctx, out, at=slot, defer_quiet=True)
        except FavError as exc:
            if exc.code is not ErrorCode.conflict or not (exc.body.details or {}).get("rule"):
                raise
            result.skipped += 1
            continue
        result.queued += 1
        slot = pace.allowed(slot + pace.gap)
    if len(members) < limit or result.queued == 0:
        result.done = True
        messaged = await ctx.db.count(Message, *recipients_of(campaign.id))
        await ctx.db.update(
            Campaign, col(Campaign.id) == campaign.id, values={"audience_size": messaged, "updated_at": ctx.now}
        )
    ctx.record_change(campaign_id=campaign.id, queued=result.queued, skipped=result.skipped)
    return result


def _in_flight(ctx: ToolContext) -> ColumnElement[bool]:
    """A message whose outbox row has not settled yet (sent or failed for good)."""
    return ctx.db.exists(
        OutboxMessage,
        col(OutboxMessage.id) == col(Message.outbox_id),
        col(OutboxMessage.status) == OutboxStatus.pending,
    )


async def finish_if_done(ctx: ToolContext, campaign: Campaign) -> bool:
    """A sending campaign whose fan-out is over and whose messages have all left becomes sent."""
    if campaign.status is not CampaignStatus.sending or campaign.audience_size is None:
        return False
    waiting = await ctx.db.count(Message, *recipients_of(campaign.id), _in_flight(ctx))
    if waiting:
        return False
    await ctx.transition(
        CAMPAIGN_LIFECYCLE,
        Campaign,
        campaign.id,
        CampaignStatus.sent,
        values={"finished_at": ctx.now, "updated_at": ctx.now},
    )
    ctx.record_change(campaign_id=campaign.id, status=CampaignStatus.sent.value)
    return True


async def cancel_queued(ctx: ToolContext, campaign_id: str) -> int:
    """Stop the campaign's messages that have not gone: their outbox rows still pending and not held by a worker
    right now fail ("campaign cancelled"), so no dispatcher takes them; then those messages become cancelled.
    A message a worker is sending at this moment goes, and its status follows."""
    queued = ctx.db.select_columns(Message, col(Message.outbox_id)).where(
        col(Message.campaign_id) == campaign_id, col(Message.status) == MessageStatus.queued
    )
    free = (col(OutboxMessage.locked_until).is_(None)) | (col(OutboxMessage.locked_until) < ctx.now)
    stopped = await ctx.db.update(
        OutboxMessage,
        col(OutboxMessage.id).in_(queued),
        col(OutboxMessage.status) == OutboxStatus.pending,
        free,
        values={"status": OutboxStatus.failed, "last_error": CANCELLED, "locked_until": None, "locked_by": None},
    )
    if not stopped:
        return 0
    ours = ctx.db.exists(
        OutboxMessage,
        col(OutboxMessage.id) == col(Message.outbox_id),
        col(OutboxMessage.status) == OutboxStatus.failed,
        col(OutboxMessage.last_error) == CANCELLED,
    )
    cancelled = await status.advance(
        ctx, MessageStatus.cancelled, col(Message.campaign_id) == campaign_id, ours, at=ctx.now, error=CANCELLED
    )
    return len(cancelled)


JOB_BUDGET = 1000  # members queued per workspace per run, over all its campaigns


async def run_due(ctx: ToolContext) -> None:
    """The job (every minute): scheduled campaigns whose time has come start sending; sending campaigns queue
    their next batch; those whose messages have all left become sent. A campaign the rules refuse as a whole
    (its template no longer approved, its channel gone) waits, and is tried again next run."""
    due = ctx.db.select(
        Campaign, col(Campaign.status) == CampaignStatus.scheduled, col(Campaign.scheduled_at) <= ctx.now
    )
    for campaign in await ctx.db.all(due.order_by(col(Campaign.scheduled_at)).limit(100)):
        if await _refused(ctx, campaign) is None:
            await start(ctx, campaign)
            ctx.record_change(campaign_id=campaign.id, status=CampaignStatus.sending.value)
    budget = JOB_BUDGET
    sending_ = ctx.db.select(Campaign, col(Campaign.status) == CampaignStatus.sending)
    for campaign in await ctx.db.all(sending_.order_by(col(Campaign.id)).limit(100)):
        if campaign.audience_size is None and budget > 0:
            if await _refused(ctx, campaign) is not None:
                continue
            batch = await fan_out(ctx, campaign.id, min(BATCH, budget))
            budget -= batch.queued + batch.skipped
        fresh = await ctx.db.get(Campaign, campaign.id, fresh=True)
        if fresh is not None:
            await finish_if_done(ctx, fresh)


async def _refused(ctx: ToolContext, campaign: Campaign) -> FavError | None:
    try:
        await ensure_sendable(ctx, campaign, await template_of(ctx, campaign))
    except FavError as exc:
        return exc
    return None
