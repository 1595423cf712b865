"""A campaign's audience as where-clauses over Member: the filter, then the messaging rules that depend on the
member (messaging.rules.check_reachable), written once as SQL so that a preview counts what a send reaches.

Inactive means `last_activity_at` older than N days: it moves on a completed booking, a payment, a paid order and
an inbound message (domain-rules.md, Customers), as search_members' inactive_days and the inactive-members report.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_, true
from sqlmodel import col

from favmcp.core.contact import Channel
from favmcp.domains.campaigns.schemas import CampaignAudience
from favmcp.domains.loyalty.models import LoyaltyAccount
from favmcp.domains.members.models import ConsentEvent, Member, MemberStatus, MemberTag
from favmcp.domains.messaging.models import Suppression
from favmcp.domains.messaging.rules import Rule
from favmcp.domains.tiers.standing import in_effect
from favmcp.registry.context import ToolContext

REACHABLE = "reachable"


def address_column(channel: Channel) -> Any:
    return col(Member.email) if channel is Channel.email else col(Member.phone)


def matching(ctx: ToolContext, audience: CampaignAudience, as_of: datetime) -> list[ColumnElement[bool]]:
    """The filter: members who existed at `as_of` (when the campaign started) and match every given criterion."""
    clauses: list[ColumnElement[bool]] = [col(Member.created_at) <= as_of]
    if audience.tags:
        clauses.append(
            ctx.db.exists(MemberTag, col(MemberTag.member_id) == col(Member.id), col(MemberTag.tag).in_(audience.tags))
        )
    if audience.lifecycle:
        clauses.append(col(Member.lifecycle).in_(audience.lifecycle))
    if audience.tier_id:
        clauses.append(
            ctx.db.exists(
                LoyaltyAccount, col(LoyaltyAccount.member_id) == col(Member.id), in_effect() == audience.tier_id
            )
        )
    if audience.inactive_days:
        clauses.append(col(Member.last_activity_at) < as_of - timedelta(days=audience.inactive_days))
    if audience.min_spend is not None:
        clauses.append(col(Member.lifetime_spend) >= audience.min_spend)
    if audience.max_spend is not None:
        clauses.append(col(Member.lifetime_spend) <= audience.max_spend)
    return clauses


def latest_consent(ctx: ToolContext, channel: Channel) -> Any:
    """The member's latest consent on the channel (True, False, or NULL when never asked), as rules reads it."""
    return (
        ctx.db.select_columns(ConsentEvent, col(ConsentEvent.granted))
        .where(col(ConsentEvent.member_id) == col(Member.id), col(ConsentEvent.channel) == channel)
        .order_by(col(ConsentEvent.recorded_at).desc(), col(ConsentEvent.id).desc())
        .limit(1)
        .scalar_subquery()
    )


def suppressed(ctx: ToolContext, channel: Channel) -> ColumnElement[bool]:
    return ctx.db.exists(
        Suppression, col(Suppression.channel) == channel, col(Suppression.address) == address_column(channel)
    )


def reachable(ctx: ToolContext, channel: Channel) -> list[ColumnElement[bool]]:
    """What messaging.rules.check_reachable asks of a member: active, an address, consent, no suppression."""
    address = address_column(channel)
    return [
        col(Member.status) == MemberStatus.active,
        address.is_not(None),
        address != "",
        latest_consent(ctx, channel) == true(),
        ~suppressed(ctx, channel),
    ]


def reason(ctx: ToolContext, channel: Channel) -> Any:
    """Why a matching member would not be messaged (the first rule that refuses), or REACHABLE."""
    address = address_column(channel)
    consent = latest_consent(ctx, channel)
    return case(
        (col(Member.status) != MemberStatus.active, Rule.member_unreachable),
        (or_(address.is_(None), address == ""), Rule.no_address),
        (consent.is_(None), Rule.no_consent),
        (consent != true(), Rule.opted_out),
        (suppressed(ctx, channel), Rule.suppressed),
        else_=REACHABLE,
    )


def everyone(ctx: ToolContext, audience: CampaignAudience, channel: Channel, as_of: datetime) -> ColumnElement[bool]:
    """The members a send reaches, as one clause."""
    return and_(*matching(ctx, audience, as_of), *reachable(ctx, channel))
