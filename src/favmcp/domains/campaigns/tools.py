"""Campaigns: one approved marketing template sent to the customers a filter chooses, now or at a set time, after
a person approves it; fanned out through the outbox at the channel's rate, and measured afterwards."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col

from favmcp.auth.models import User, UserStatus
from favmcp.core.contact import Channel, mask_email
from favmcp.core.errors import FieldError, conflict, invalid_state, not_found, validation_failed
from favmcp.core.ids import new_id
from favmcp.domains.campaigns import audience, fanout, stats
from favmcp.domains.campaigns import models as _models  # noqa: F401
from favmcp.domains.campaigns.lifecycle import CAMPAIGN_LIFECYCLE
from favmcp.domains.campaigns.models import Campaign, CampaignStatus
from favmcp.domains.campaigns.schemas import (
    AudiencePreview,
    AudienceSample,
    CampaignAudience,
    CampaignInput,
    CampaignPage,
    CampaignPublic,
    CampaignSent,
    CampaignStats,
    CampaignSummary,
    CampaignWriteInput,
    CreateCampaignInput,
    Excluded,
    ListCampaignsInput,
    SendTestInput,
    SentTest,
)
from favmcp.domains.members.models import Member
from favmcp.domains.members.tools import ensure_spend_visible
from favmcp.domains.messaging import rules, sending
from favmcp.domains.messaging.models import Direction, Message, MessageStatus, MessageTemplate
from favmcp.domains.tiers.models import MembershipTier
from favmcp.effects.approvals import ApprovalAsk, ApprovalRequest, SendKind
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain, Job
from favmcp.registry.spec import tool

DOMAIN_NAME = "campaigns"
SAMPLE_ROWS = 3


async def _public(ctx: ToolContext, campaign: Campaign) -> CampaignPublic:
    counts = (await stats.counts_of(ctx, [campaign.id]))[campaign.id]
    template = await ctx.db.get(MessageTemplate, campaign.template_id)
    return CampaignPublic.model_validate(
        {
            **campaign.model_dump(),
            "recipients": stats.total(counts),
            "counts": counts,
            "sample": fanout.sample(template, campaign.variables) if template else None,
        }
    )


@tool(domain=DOMAIN_NAME, title="Create campaign", hints="W", scope="messaging:write", route="POST /v1/campaigns")
async def create_campaign(ctx: ToolContext, args: CreateCampaignInput) -> CampaignPublic:
    """Draft a campaign of a marketing template to the customers matching every criterion given (none: all).
    Then preview_campaign_audience, send_test_campaign, send_campaign."""
    template = await ctx.db.get(MessageTemplate, args.template_id)
    if template is None:
        raise not_found("message template", args.template_id, hint="list_message_templates shows them.")
    problems = []
    if template.channel is not args.channel:
        problems.append(FieldError(field="template_id", message=f"a {template.channel.value} template"))
    if template.kind is not SendKind.marketing:
        problems.append(FieldError(field="template_id", message=f"a {template.kind.value} template, not marketing"))
    if problems:
        raise validation_failed("A campaign sends a marketing template of its own channel.", problems)
    # Every variable the template declares has a value, and every value a declared variable.
    rules.render(template, Member(id="sample", name="Sample Customer"), args.variables)
    aud = args.audience()
    if aud.min_spend is not None or aud.max_spend is not None:
        await ensure_spend_visible(ctx, aud.currency)
        aud = aud.model_copy(update={"currency": (await ctx.db.workspace()).currency})
    if aud.tier_id and await ctx.db.get(MembershipTier, aud.tier_id) is None:
        raise not_found("tier", aud.tier_id, hint="list_membership_tiers shows the tiers.")
    if args.scheduled_at is not None and args.scheduled_at <= ctx.now:
        raise validation_failed(
            "scheduled_at is not in the future; leave it out to send once approved.",
            [FieldError(field="scheduled_at", message="a future time")],
        )
    campaign = ctx.db.add(
        Campaign(
            id=new_id("cmp"),
            workspace_id=ctx.workspace_id,
            name=args.name,
            channel=args.channel,
            template_id=template.id,
            variables=args.variables,
            audience=aud.model_dump(mode="json", exclude_defaults=True),
            scheduled_at=args.scheduled_at,
            attribution_days=args.attribution_days,
            created_by_user_id=ctx.caller.user_id,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    )
    await ctx.db.flush()
    ctx.record_change(campaign_id=campaign.id)
    return await _public(ctx, campaign)


@tool(domain=DOMAIN_NAME, title="List campaigns", hints="R I", scope="messaging:read", route="GET /v1/campaigns")
async def list_campaigns(ctx: ToolContext, args: ListCampaignsInput) -> CampaignPage:
    """Campaigns newest first, by status, with their messages counted by status."""
    where = [col(Campaign.status) == args.status] if args.status else []
    rows, cursor = await ctx.db.page(ctx.db.select(Campaign, *where), col(Campaign.id), args)
    counts = await stats.counts_of(ctx, [c.id for c in rows])
    items = [
        CampaignSummary.model_validate(
            {**c.model_dump(), "counts": counts[c.id], "recipients": stats.total(counts[c.id])}
        )
        for c in rows
    ]
    return CampaignPage(items=items, next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Get campaign",
    hints="R I",
    scope="messaging:read",
    route="GET /v1/campaigns/{campaign_id}",
)
async def get_campaign(ctx: ToolContext, args: CampaignInput) -> CampaignPublic:
    """One campaign in full: filter, schedule, message counts and the message as sent ({{name}} per customer)."""
    return await _public(ctx, await fanout.load(ctx, args.campaign_id))


def _masked(channel: Channel, address: str) -> str:
    return mask_email(address) if channel is Channel.email else f"{address[:3]}***{address[-2:]}"


@tool(
    domain=DOMAIN_NAME,
    title="Preview campaign audience",
    hints="R I",
    scope="messaging:read",
    route="GET /v1/campaigns/{campaign_id}/audience",
)
async def preview_campaign_audience(ctx: ToolContext, args: CampaignInput) -> AudiencePreview:
    """How many customers the campaign would reach now: those its filter matches, less those without an address
    on the channel, without consent, opted out, suppressed, merged or erased (counted apart), with a sample."""
    campaign = await fanout.load(ctx, args.campaign_id)
    aud = CampaignAudience.model_validate(campaign.audience)
    as_of = campaign.started_at or ctx.now
    why = audience.reason(ctx, campaign.channel)
    grouped = ctx.db.select_columns(Member, why, func.count()).where(*audience.matching(ctx, aud, as_of))
    counts = {str(reason): int(n) for reason, n in await ctx.db.rows(grouped.group_by(why))}
    reached = ctx.db.select(Member, audience.everyone(ctx, aud, campaign.channel, as_of))
    sample = await ctx.db.all(reached.order_by(col(Member.id)).limit(SAMPLE_ROWS))
    return AudiencePreview(
        campaign_id=campaign.id,
        channel=campaign.channel,
        matched=sum(counts.values()),
        count=counts.get(audience.REACHABLE, 0),
        excluded=Excluded(
            unreachable=counts.get(rules.Rule.member_unreachable, 0),
            no_address=counts.get(rules.Rule.no_address, 0),
            no_consent=counts.get(rules.Rule.no_consent, 0),
            opted_out=counts.get(rules.Rule.opted_out, 0),
            suppressed=counts.get(rules.Rule.suppressed, 0),
        ),
        sample=[
            AudienceSample(
                member_id=m.id,
                name=m.name,
                address=_masked(campaign.channel, rules.address_of(m, campaign.channel) or ""),
            )
            for m in sample
        ],
    )


@tool(
    domain=DOMAIN_NAME,
    title="Send test campaign",
    hints="W O",
    scope="messaging:send",
    route="POST /v1/campaigns/{campaign_id}/test",
)
async def send_test_campaign(ctx: ToolContext, args: SendTestInput) -> SentTest:
    """Email the campaign's message to one team member (default: you) to check it. SMS and WhatsApp tests are
    refused: team members have no phone number here."""
    campaign = await fanout.load(ctx, args.campaign_id)
    template = await fanout.template_of(ctx, campaign)
    user_id = args.user_id or ctx.caller.user_id
    user = await ctx.db.get(User, user_id) if user_id else None
    if user is None or user.status is not UserStatus.active:
        raise not_found("team member", user_id or "", hint="list_team_members shows them.")
    if campaign.channel is not Channel.email:
        raise rules.refuse(
            rules.Rule.no_address,
            f"Team members have no phone number on file, so a {campaign.channel.value} test cannot reach one.",
            hint="Check the message with get_campaign (sample), or test an email campaign.",
        )
    await fanout.ensure_sendable(ctx, campaign, template)
    subject, body, values = rules.render(template, Member(id=user.id, name=user.name), dict(campaign.variables))
    message = await _test_message(ctx, campaign, user.email, subject, body, values)
    ctx.record_change(campaign_id=campaign.id, message_id=message.id, user_id=user.id)
    return SentTest(message_id=message.id, campaign_id=campaign.id, recipient=user.email, subject=subject, body=body)


async def _test_message(
    ctx: ToolContext, campaign: Campaign, address: str, subject: str | None, body: str, values: dict[str, str]
) -> Message:
    """The message to a team member (no member) with its outbox row; the message channel delivers it."""
    message = Message(
        id=new_id("msg"),
        workspace_id=ctx.workspace_id,
        member_id=None,
        channel=campaign.channel,
        direction=Direction.outbound,
        kind=SendKind.marketing,
        status=MessageStatus.queued,
        address=address,
        template_id=campaign.template_id,
        campaign_id=campaign.id,
        subject=subject,
        body=body,
        variables={**values, "_test": True},
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    return await sending.write(ctx, message, send_at=ctx.now)


def _ensure_draft(campaign: Campaign) -> None:
    if campaign.status is not CampaignStatus.draft:
        raise invalid_state(
            f"The campaign {campaign.id} is {campaign.status.value}; only a draft campaign is sent.",
            current=campaign.status.value,
            allowed=[s.value for s in CAMPAIGN_LIFECYCLE.allowed_from(campaign.status)],
            hint="get_campaign_stats shows how it went; create_campaign drafts another.",
        )


async def _ask_send(ctx: ToolContext, args: CampaignWriteInput) -> ApprovalAsk:
    """The exact message and how many customers it would reach, refused now if the campaign cannot go."""
    campaign = await fanout.load(ctx, args.campaign_id)
    _ensure_draft(campaign)
    template = await fanout.template_of(ctx, campaign)
    await fanout.ensure_sendable(ctx, campaign, template)
    reach = await fanout.audience_count(ctx, campaign, ctx.now)
    when = f"at {campaign.scheduled_at.isoformat()}" if campaign.scheduled_at else "now"
    return ApprovalAsk(
        channel=campaign.channel,
        kind=SendKind.marketing,
        recipient=f"{reach} customers (campaign {campaign.name})"[:320],
        summary=f"Send campaign {campaign.name!r} ({campaign.id}) {when} on {campaign.channel.value} to {reach} "
        f"customers (each by name; quiet hours wait). {fanout.content_of(template, campaign.variables)}",
    )


@tool(
    domain=DOMAIN_NAME,
    title="Send campaign",
    hints="W O",
    scope="messaging:send",
    gate="approval",
    ask=_ask_send,
    route="POST /v1/campaigns/{campaign_id}/send",
)
async def send_campaign(ctx: ToolContext, args: CampaignWriteInput) -> CampaignSent:
    """Send a draft campaign to its audience now, or schedule it for its scheduled_at; usually waits for a
    person's approval first. Messages leave at the channel's rate; marketing waits out quiet hours."""
    campaign = await fanout.load(ctx, args.campaign_id, lock=True)
    _ensure_draft(campaign)
    template = await fanout.template_of(ctx, campaign)
    await fanout.ensure_sendable(ctx, campaign, template)
    if ctx.approved_request_id is not None:
        approved = await ctx.db.get(ApprovalRequest, ctx.approved_request_id)
        if approved is None or fanout.content_of(template, campaign.variables) not in approved.summary:
            raise conflict(
                "The campaign's message changed after it was approved (its template was edited); nothing was sent.",
                hint="Ask again with send_campaign, so a person approves the message as it is now.",
            )
    if campaign.scheduled_at is not None and campaign.scheduled_at > ctx.now:
        await ctx.transition(
            CAMPAIGN_LIFECYCLE, Campaign, campaign.id, CampaignStatus.scheduled, values={"updated_at": ctx.now}
        )
        ctx.record_change(campaign_id=campaign.id, status=CampaignStatus.scheduled.value)
        return CampaignSent(status="done", campaign_id=campaign.id, campaign_status=CampaignStatus.scheduled)
    await fanout.start(ctx, campaign)
    batch = await fanout.fan_out(ctx, campaign.id)
    fresh = await fanout.load(ctx, campaign.id)
    return CampaignSent(
        status="done",
        campaign_id=campaign.id,
        campaign_status=fresh.status,
        queued=batch.queued,
        skipped=batch.skipped,
    )


@tool(
    domain=DOMAIN_NAME,
    title="Cancel campaign",
    hints="D I",
    scope="messaging:write",
    route="POST /v1/campaigns/{campaign_id}/cancel",
)
async def cancel_campaign(ctx: ToolContext, args: CampaignWriteInput) -> CampaignPublic:
    """Cancel a draft, scheduled or sending campaign: messages not yet gone are cancelled, those already sent
    stay sent. A cancelled campaign answers as it is; a sent one cannot be cancelled."""
    campaign = await fanout.load(ctx, args.campaign_id, lock=True)
    if campaign.status is not CampaignStatus.cancelled:
        was = campaign.status
        await ctx.transition(
            CAMPAIGN_LIFECYCLE,
            Campaign,
            campaign.id,
            CampaignStatus.cancelled,
            values={"cancelled_at": ctx.now, "updated_at": ctx.now},
        )
        stopped = await fanout.cancel_queued(ctx, campaign.id) if was is CampaignStatus.sending else 0
        ctx.record_change(campaign_id=campaign.id, status=CampaignStatus.cancelled.value, messages_cancelled=stopped)
    return await _public(ctx, await fanout.load(ctx, campaign.id))


@tool(
    domain=DOMAIN_NAME,
    title="Campaign stats",
    hints="R I",
    scope="messaging:read",
    route="GET /v1/campaigns/{campaign_id}/stats",
)
async def get_campaign_stats(ctx: ToolContext, args: CampaignInput) -> CampaignStats:
    """A campaign's messages by status, recipients who opted out or replied after their message, and the bookings
    and payments (less refunds) of recipients within attribution_days after their message was sent."""
    return await stats.stats(ctx, await fanout.load(ctx, args.campaign_id))


DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[
        create_campaign,
        list_campaigns,
        get_campaign,
        preview_campaign_audience,
        send_test_campaign,
        send_campaign,
        cancel_campaign,
        get_campaign_stats,
    ],
    jobs=[Job("campaigns_fan_out", timedelta(minutes=1), fanout.run_due)],
)
