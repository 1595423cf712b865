"""What a campaign did: its messages by status, and what its recipients did after their message.

"After their message" is from when it was sent (when it was queued, for one that has not gone). Attribution is
narrower: bookings created and payments received by a recipient within attribution_days after their message was
sent (a message that never left attributes nothing). Revenue is those payments less what was refunded on them,
per currency. A recipient who replied or opted out counts once however often they did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col

from favmcp.core.clock import utc
from favmcp.domains.bookings.models import Booking
from favmcp.domains.campaigns.fanout import recipients_of
from favmcp.domains.campaigns.models import Campaign
from favmcp.domains.campaigns.schemas import CampaignStats, MessageCounts, Revenue
from favmcp.domains.members.models import ConsentEvent
from favmcp.domains.messaging.models import Direction, Message, Suppression
from favmcp.domains.payments.models import Payment, PaymentStatus
from favmcp.registry.context import ToolContext

PAID = (PaymentStatus.succeeded, PaymentStatus.partially_refunded, PaymentStatus.refunded)


async def counts_of(ctx: ToolContext, campaign_ids: Sequence[str]) -> dict[str, MessageCounts]:
    """Each campaign's messages to its audience by status, in one query."""
    found: dict[str, MessageCounts] = {cid: MessageCounts() for cid in campaign_ids}
    if not campaign_ids:
        return found
    stmt = (
        ctx.db.select_columns(Message, col(Message.campaign_id), col(Message.status), func.count())
        .where(col(Message.campaign_id).in_(campaign_ids), col(Message.dedupe_key).is_not(None))
        .group_by(col(Message.campaign_id), col(Message.status))
    )
    for campaign_id, status, n in await ctx.db.rows(stmt):
        counts = found[campaign_id]
        if status in MessageCounts.model_fields:
            setattr(counts, str(status), int(n))
    return found


def total(counts: MessageCounts) -> int:
    return sum(counts.model_dump().values())


@dataclass
class Recipient:
    member_id: str
    address: str
    since: datetime  # sent, or queued when it has not gone
    sent_at: datetime | None


async def stats(ctx: ToolContext, campaign: Campaign) -> CampaignStats:
    counts = (await counts_of(ctx, [campaign.id]))[campaign.id]
    mine = recipients_of(campaign.id)
    rows = await ctx.db.rows(
        ctx.db.select_columns(
            Message, col(Message.member_id), col(Message.address), col(Message.created_at), col(Message.sent_at)
        ).where(*mine, col(Message.member_id).is_not(None))
    )
    people = {
        member_id: Recipient(member_id, address, utc(sent_at or created_at), utc(sent_at) if sent_at else None)
        for member_id, address, created_at, sent_at in rows
    }
    empty = CampaignStats(
        campaign_id=campaign.id,
        status=campaign.status,
        recipients=total(counts),
        counts=counts,
        opted_out=0,
        replies=0,
        bookings=0,
        revenue=[],
        attribution_days=campaign.attribution_days,
    )
    if not people:
        return empty
    earliest = min(p.since for p in people.values())
    members = ctx.db.select_columns(Message, col(Message.member_id)).where(*mine)
    addresses = ctx.db.select_columns(Message, col(Message.address)).where(*mine)

    opted_out: set[str] = set()
    for member_id, at in await ctx.db.rows(
        ctx.db.select_columns(ConsentEvent, col(ConsentEvent.member_id), col(ConsentEvent.recorded_at)).where(
            col(ConsentEvent.member_id).in_(members),
            col(ConsentEvent.channel) == campaign.channel,
            col(ConsentEvent.granted).is_(False),
            col(ConsentEvent.recorded_at) >= earliest,
        )
    ):
        if member_id in people and utc(at) >= people[member_id].since:
            opted_out.add(member_id)
    by_address = {p.address: p for p in people.values()}
    for address, at in await ctx.db.rows(
        ctx.db.select_columns(Suppression, col(Suppression.address), col(Suppression.created_at)).where(
            col(Suppression.channel) == campaign.channel,
            col(Suppression.address).in_(addresses),
            col(Suppression.created_at) >= earliest,
        )
    ):
        if address in by_address and utc(at) >= by_address[address].since:
            opted_out.add(by_address[address].member_id)

    replied: set[str] = set()
    for member_id, at in await ctx.db.rows(
        ctx.db.select_columns(Message, col(Message.member_id), col(Message.created_at)).where(
            col(Message.direction) == Direction.inbound,
            col(Message.member_id).in_(members),
            col(Message.created_at) >= earliest,
        )
    ):
        if member_id in people and utc(at) >= people[member_id].since:
            replied.add(member_id)

    window = timedelta(days=campaign.attribution_days)

    def attributed(member_id: str, at: datetime) -> bool:
        person = people.get(member_id)
        return person is not None and person.sent_at is not None and person.sent_at <= utc(at) < person.sent_at + window

    sent = [p.sent_at for p in people.values() if p.sent_at is not None]
    bookings = 0
    revenue: dict[str, int] = defaultdict(int)
    if sent:
        start, end = min(sent), max(sent) + window
        for member_id, at in await ctx.db.rows(
            ctx.db.select_columns(Booking, col(Booking.member_id), col(Booking.created_at)).where(
                col(Booking.member_id).in_(members), col(Booking.created_at) >= start, col(Booking.created_at) < end
            )
        ):
            bookings += attributed(member_id, at)
        for member_id, at, currency, kept in await ctx.db.rows(
            ctx.db.select_columns(
                Payment,
                col(Payment.member_id),
                col(Payment.paid_at),
                col(Payment.currency),
                col(Payment.amount) - col(Payment.amount_refunded),
            ).where(
                col(Payment.member_id).in_(members),
                col(Payment.status).in_(PAID),
                col(Payment.paid_at) >= start,
                col(Payment.paid_at) < end,
            )
        ):
            if attributed(member_id, at):
                revenue[currency] += int(kept)
    return empty.model_copy(
        update={
            "opted_out": len(opted_out),
            "replies": len(replied),
            "bookings": bookings,
            "revenue": [Revenue(currency=c, amount=a) for c, a in sorted(revenue.items())],
        }
    )
