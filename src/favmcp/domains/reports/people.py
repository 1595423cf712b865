"""Reports about people: no-shows and late cancellations, members gone quiet, campaign results.

Every figure is one a caller can count again with the list tools: bookings by their start in the range
(list_bookings over the answer's starts_from/starts_to), members with their bookings and orders.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_
from sqlmodel import SQLModel, col

from favmcp.auth import scopes
from favmcp.auth.models import User
from favmcp.core.pagination import decode_cursor, encode_cursor
from favmcp.db.scoped import column
from favmcp.domains.bookings.models import Booking, BookingStatus
from favmcp.domains.bookings.tools import percent
from favmcp.domains.campaigns import stats as campaign_stats
from favmcp.domains.campaigns.models import Campaign
from favmcp.domains.loyalty.models import LoyaltyAccount
from favmcp.domains.members.models import Member, MemberStatus
from favmcp.domains.members.tools import MONEY_SCOPE
from favmcp.domains.orders.models import Order, OrderStatus
from favmcp.domains.reports import periods
from favmcp.domains.reports.charts import render
from favmcp.domains.reports.people_schemas import (
    CampaignReport,
    CampaignReportInput,
    CampaignResult,
    InactiveMember,
    InactiveMembersInput,
    InactiveMembersPage,
    NoShowReport,
    NoShowReportInput,
    OutcomeRow,
    Outcomes,
)
from favmcp.domains.services.models import Service
from favmcp.domains.tiers.models import MembershipTier
from favmcp.domains.tiers.standing import in_effect
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import ToolSpec, tool

DOMAIN_NAME = "reports"
SCOPE = "reports:read"
PAID = (OrderStatus.paid, OrderStatus.fulfilled)  # a paid order later cancelled (refund due) is no visit


# -- no-shows --------------------------------------------------------------------------------------------------------


def _tally() -> tuple[Any, Any, Any]:
    """Completed, no-show and late-cancelled bookings, as sums over the selected rows."""

    def count_of(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return (
        count_of(col(Booking.status) == BookingStatus.completed),
        count_of(col(Booking.status) == BookingStatus.no_show),
        count_of(and_(col(Booking.status) == BookingStatus.cancelled, col(Booking.late_cancel).is_(True))),
    )


def _outcomes(completed: int, no_show: int, late: int) -> dict[str, Any]:
    completed, no_show, late = int(completed), int(no_show), int(late)
    return {
        "completed": completed,
        "no_show": no_show,
        "late_cancelled": late,
        "no_show_rate": percent(no_show, completed + no_show),
    }


async def _names(ctx: ToolContext, model: type[SQLModel], ids: list[str]) -> dict[str, str]:
    everyone = ctx.db.unfiltered
    ident = col(column(model, "id"))
    return dict(await everyone.rows(everyone.select_columns(model, ident, column(model, "name")).where(ident.in_(ids))))


def _worst(tallies: dict[str, list[int]], top: int) -> list[tuple[str, list[int]]]:
    """The `top` keys with the most no-shows, then late cancellations (then by id); none without either."""
    kept = [(key, t) for key, t in tallies.items() if t[1] + t[2]]
    return sorted(kept, key=lambda kt: (-kt[1][1], -kt[1][2], kt[0]))[:top]


async def _rows(ctx: ToolContext, model: type[SQLModel], chosen: list[tuple[str, list[int]]]) -> list[OutcomeRow]:
    names = await _names(ctx, model, [key for key, _ in chosen])
    return [OutcomeRow(id=key, name=names.get(key), **_outcomes(*t)) for key, t in chosen]


@tool(domain=DOMAIN_NAME, title="No-show report", hints="R I", scope=SCOPE, route="GET /v1/reports/no-shows")
async def no_show_report(ctx: ToolContext, args: NoShowReportInput) -> NoShowReport:
    """No-shows, late cancellations and completed bookings starting in local dates from_date..to_date: totals and
    the top customers, services and staff, with no-show rates. Counts match list_bookings."""
    tz = ZoneInfo((await ctx.db.workspace()).timezone)
    start, end = periods.bounds(args.from_date, args.to_date, tz)
    in_range = (col(Booking.starts_at) >= start, col(Booking.starts_at) < end)
    completed, no_show, late = _tally()
    # Two passes over the range: by (service, staff), few pairs, which also give the totals; and the customers with
    # a no-show or late cancellation, the worst first, in SQL (there may be many).
    pairs = ctx.db.select_columns(
        Booking, col(Booking.service_id), col(Booking.staff_user_id), completed, no_show, late
    ).where(*in_range)
    total = [0, 0, 0]
    by_service: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_staff: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for service_id, staff_id, *counts in await ctx.db.rows(
        pairs.group_by(col(Booking.service_id), col(Booking.staff_user_id))
    ):
        for tally in (total, by_service[service_id], by_staff[staff_id]):
            for i, n in enumerate(counts):
                tally[i] += int(n)
    customers = (
        ctx.db.select_columns(Booking, col(Booking.member_id), completed, no_show, late)
        .where(*in_range)
        .group_by(col(Booking.member_id))
        .having((no_show + late) > 0)
        .order_by(no_show.desc(), late.desc(), col(Booking.member_id))
        .limit(args.top)
    )
    worst = [(member_id, [int(c), int(n), int(lc)]) for member_id, c, n, lc in await ctx.db.rows(customers)]
    report = NoShowReport(
        starts_from=start,
        starts_to=end,
        total=Outcomes(**_outcomes(*total)),
        by_customer=await _rows(ctx, Member, worst),
        by_service=await _rows(ctx, Service, _worst(by_service, args.top)),
        by_staff=await _rows(ctx, User, _worst(by_staff, args.top)),
    )
    if args.chart:
        rows = report.by_service
        ctx.attach_image(
            render(
                f"No-shows and late cancellations by service, {args.from_date} to {args.to_date}",
                [r.name or r.id for r in rows],
                {"no-shows": [r.no_show for r in rows], "late cancellations": [r.late_cancelled for r in rows]},
                unit="bookings",
            )
        )
    return report


# -- inactive members ------------------------------------------------------------------------------------------------


def _latest(a: Any, b: Any) -> Any:
    """The later of two nullable moments (NULL only when both are), the same on SQLite and Postgres."""
    return case((a.is_(None), b), (b.is_(None), a), (a > b, a), else_=b)


# Days-since-last-visit bands of the chart (of the page answered).
BANDS = ((90, "< 90 days"), (180, "90-179"), (365, "180-364"))


@tool(
    domain=DOMAIN_NAME,
    title="Inactive members report",
    hints="R I",
    scope=SCOPE,
    route="GET /v1/reports/inactive-members",
)
async def inactive_members_report(ctx: ToolContext, args: InactiveMembersInput) -> InactiveMembersPage:
    """Active customers with no completed booking or paid order in `days` days, never-seen then longest-quiet
    first, with last visit, tier and lifetime spend (invoices:read)."""
    db = ctx.db
    since = ctx.now - timedelta(days=args.days)
    # Each customer's latest completed booking and latest paid order, aggregated once and joined (a correlated
    # subquery per row would run again wherever `last` appears: in the filter, the order and the answer).
    visits = (
        db.select_columns(Booking, col(Booking.member_id), func.max(col(Booking.starts_at)).label("at"))
        .where(col(Booking.status) == BookingStatus.completed)
        .group_by(col(Booking.member_id))
        .subquery("visits")
    )
    bought = (
        db.select_columns(Order, col(Order.member_id), func.max(col(Order.paid_at)).label("at"))
        .where(col(Order.status).in_(PAID), col(Order.paid_at).is_not(None))
        .group_by(col(Order.member_id))
        .subquery("bought")
    )
    last = _latest(visits.c.at, bought.c.at)
    tier = in_effect()
    stmt = (
        db.select_columns(Member, col(Member.id), col(Member.name), col(Member.lifetime_spend), last, tier)
        .outerjoin(visits, visits.c.member_id == col(Member.id))
        .outerjoin(bought, bought.c.member_id == col(Member.id))
        .outerjoin(LoyaltyAccount, and_(col(LoyaltyAccount.member_id) == col(Member.id), db.owns(LoyaltyAccount)))
        .where(col(Member.status) == MemberStatus.active, or_(last.is_(None), last < since))
    )
    if args.tier_id:
        stmt = stmt.where(tier == args.tier_id)
    if args.cursor:
        after = decode_cursor(args.cursor)
        after_id, after_at = str(after.get("id", "")), str(after.get("at", ""))
        if after_at:
            moment = datetime.fromisoformat(after_at)
            stmt = stmt.where(last.is_not(None), or_(last > moment, and_(last == moment, col(Member.id) > after_id)))
        else:
            stmt = stmt.where(or_(last.is_not(None), col(Member.id) > after_id))
    never_first = case((last.is_(None), 0), else_=1)
    rows = await db.rows(stmt.order_by(never_first, last, col(Member.id)).limit(args.limit + 1))
    cursor = None
    if len(rows) > args.limit:
        rows = rows[: args.limit]
        final = rows[-1]
        cursor = encode_cursor({"id": final[0], "at": final[3].isoformat() if final[3] else ""})
    ladder = db.select_columns(MembershipTier, col(MembershipTier.id), col(MembershipTier.name))
    tier_names = dict(await db.rows(ladder))
    money = scopes.grants(ctx.caller.scopes, MONEY_SCOPE)
    currency = (await db.workspace()).currency if money else None
    items = [
        InactiveMember(
            member_id=member_id,
            name=name,
            last_visit_at=at,
            days_inactive=(ctx.now - at).days if at is not None else None,
            tier_id=tier_id,
            tier_name=tier_names.get(tier_id) if tier_id else None,
            lifetime_spend=int(spend) if money else None,
            currency=currency,
        )
        for member_id, name, spend, at, tier_id in rows
    ]
    if args.chart:
        bands = {label: 0 for _, label in BANDS} | {"365+ days": 0, "never": 0}
        for item in items:
            if item.days_inactive is None:
                bands["never"] += 1
            else:
                bands[next((label for days, label in BANDS if item.days_inactive < days), "365+ days")] += 1
        ctx.attach_image(
            render(
                f"Inactive customers by time since last visit (this page of {len(items)})",
                list(bands),
                {"customers": list(bands.values())},
                unit="customers",
            )
        )
    return InactiveMembersPage(items=items, next_cursor=cursor, has_more=cursor is not None, inactive_since=since)


# -- campaigns -------------------------------------------------------------------------------------------------------


@tool(
    domain=DOMAIN_NAME,
    title="Campaign performance report",
    hints="R I",
    scope=SCOPE,
    route="GET /v1/reports/campaign-performance",
)
async def campaign_performance_report(ctx: ToolContext, args: CampaignReportInput) -> CampaignReport:
    """Campaigns started in the range (local dates), side by side, newest first: reach (messages that left),
    delivered (or read), recipients who replied, and the bookings and revenue attributed as get_campaign_stats
    counts them (revenue in the workspace's currency)."""
    workspace = await ctx.db.workspace()
    tz = ZoneInfo(workspace.timezone)
    where: list[ColumnElement[bool]] = [col(Campaign.started_at).is_not(None)]
    if args.from_date:
        where.append(col(Campaign.started_at) >= periods.local_midnight(args.from_date, tz))
    if args.to_date:
        where.append(col(Campaign.started_at) < periods.local_midnight(args.to_date + timedelta(days=1), tz))
    campaigns = await ctx.db.all(ctx.db.select(Campaign, *where).order_by(col(Campaign.started_at).desc()))
    items = []
    for campaign in campaigns:
        figures = await campaign_stats.stats(ctx, campaign)
        counts = figures.counts
        revenue = {r.currency: r.amount for r in figures.revenue}
        items.append(
            CampaignResult(
                campaign_id=campaign.id,
                name=campaign.name,
                sent_at=campaign.started_at,
                reach=counts.sent + counts.delivered + counts.read,
                delivered=counts.delivered + counts.read,
                replies=figures.replies,
                bookings=figures.bookings,
                revenue=revenue.get(workspace.currency, 0),
                currency=workspace.currency,
            )
        )
    note = None if items else "No campaign started in the range."
    if args.chart:
        labels = [c.name for c in items]
        ctx.attach_image(
            render(
                "Campaign performance",
                labels,
                {"reach": [c.reach for c in items], "bookings": [c.bookings for c in items]},
                unit="people",
            )
        )
    return CampaignReport(items=items, note=note)


TOOLS: list[ToolSpec] = [no_show_report, inactive_members_report, campaign_performance_report]
