"""The money reports: revenue, the dashboard's headline figures and memberships.

Revenue is money that moved: payments (succeeded, also those later refunded) dated paid_at, less succeeded
refunds dated settled_at, over the half-open local range. A void invoice never holds a payment (void_invoice
refuses one with payments); payments naming a void invoice are left out all the same. Money figures need
invoices:read besides reports:read (staff keys get null, like get_member_profile's money).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal_column
from sqlmodel import col

from favmcp.auth import scopes
from favmcp.core.clock import utc
from favmcp.core.money import allocate
from favmcp.domains.bookings.models import Booking, BookingStatus
from favmcp.domains.invoices.models import Invoice, InvoiceLine, InvoiceStatus
from favmcp.domains.members.models import Member
from favmcp.domains.orders.models import OrderLine
from favmcp.domains.payments.models import Payment, PaymentStatus, Refund, RefundStatus
from favmcp.domains.reports import periods
from favmcp.domains.reports.money_schemas import (
    DashboardStats,
    MembershipReport,
    PlanMembership,
    RangeInput,
    RevenueInput,
    RevenueReport,
    RevenueRow,
    RevenueShare,
)
from favmcp.domains.subscriptions.models import PlanKind, Subscription, SubscriptionStatus
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import tool

DOMAIN_NAME = "reports"
SCOPE = "reports:read"
MONEY_SCOPE = "invoices:read"  # as members/tools.py: who may see what customers pay (not staff)
PAID = (PaymentStatus.succeeded, PaymentStatus.partially_refunded, PaymentStatus.refunded)
IN_FORCE = (SubscriptionStatus.active, SubscriptionStatus.trialing, SubscriptionStatus.past_due)
GROUP: Any = literal_column("1")  # GROUP BY the first column: the bucket CASE, which Postgres will not match by text


def sees_money(ctx: ToolContext) -> bool:
    return scopes.grants(ctx.caller.scopes, MONEY_SCOPE)


async def _range(ctx: ToolContext, args: RangeInput) -> tuple[ZoneInfo, datetime, datetime, str]:
    ws = await ctx.db.workspace()
    tz = ZoneInfo(ws.timezone)
    start, end = periods.bounds(args.from_date, args.to_date, tz)
    return tz, start, end, ws.currency


def _payments(ctx: ToolContext, start: datetime, end: datetime, currency: str) -> list[Any]:
    void = ctx.db.select_columns(Invoice, col(Invoice.id)).where(col(Invoice.status) == InvoiceStatus.void)
    return [
        col(Payment.status).in_(PAID),
        col(Payment.paid_at) >= start,
        col(Payment.paid_at) < end,
        col(Payment.currency) == currency,
        ~func.coalesce(col(Payment.invoice_id), "").in_(void),
    ]


def _refunds(start: datetime, end: datetime, currency: str) -> list[Any]:
    return [
        col(Refund.status) == RefundStatus.succeeded,
        col(Refund.settled_at) >= start,
        col(Refund.settled_at) < end,
        col(Refund.currency) == currency,
    ]


async def net_revenue(ctx: ToolContext, start: datetime, end: datetime, currency: str) -> int:
    paid = ctx.db.select_columns(Payment, func.coalesce(func.sum(col(Payment.amount)), 0))
    back = ctx.db.select_columns(Refund, func.coalesce(func.sum(col(Refund.amount)), 0))
    [(p,)] = await ctx.db.rows(paid.where(*_payments(ctx, start, end, currency)))
    [(r,)] = await ctx.db.rows(back.where(*_refunds(start, end, currency)))
    return int(p) - int(r)


async def _by_bucket(ctx: ToolContext, model: Any, moment: Any, where: list[Any], items: list[Any]) -> list[int]:
    out = [0] * len(items)
    stmt = ctx.db.select_columns(model, periods.bucket_index(moment, items), func.sum(col(model.amount)))
    for index, amount in await ctx.db.rows(stmt.where(*where).group_by(GROUP)):
        out[int(index)] += int(amount)
    return out


def _key(*ids: str | None) -> tuple[str, str | None]:
    """What a line earns for: its service, plan or product (an order line: its product), else other."""
    if len(ids) == 1:
        return ("product", ids[0]) if ids[0] else ("other", None)
    service_id, product_id, plan_id = ids
    if service_id:
        return "service", service_id
    if plan_id:
        return "plan", plan_id
    if product_id:
        return "product", product_id
    return "other", None


async def _breakdown(ctx: ToolContext, start: datetime, end: datetime, currency: str) -> dict[Any, int]:
    """Each document's payments (and, apart, refunds) in the range split over its lines by their gross, with
    core.money.allocate: whole minor units that add up to the document's money exactly. A one-line document's
    money all goes to its line, so those are summed in SQL by line key; longer documents are split here."""
    shares: dict[Any, int] = defaultdict(int)
    for model, where, sign in (
        (Payment, _payments(ctx, start, end, currency), 1),
        (Refund, _refunds(start, end, currency), -1),
    ):
        for line, line_doc, doc, keys, weight in (
            (InvoiceLine, InvoiceLine.invoice_id, model.invoice_id,
             (InvoiceLine.service_id, InvoiceLine.product_id, InvoiceLine.plan_id), InvoiceLine.gross),
            (OrderLine, OrderLine.order_id, model.order_id, (OrderLine.product_id,), OrderLine.total),
        ):  # fmt: skip
            longer = ctx.db.select_columns(line, col(line_doc)).group_by(col(line_doc)).having(func.count() > 1)
            if model is Refund:  # few documents: look at theirs only (for payments, one pass over all is quicker)
                longer = longer.where(col(line_doc).in_(ctx.db.select_columns(model, col(doc)).where(*where)))
            single = (
                ctx.db.select_columns(model, *map(col, keys), func.sum(col(model.amount)))
                .join(line, col(line_doc) == col(doc))
                .where(ctx.db.owns(line), *where, col(doc).not_in(longer))
                .group_by(*map(col, keys))
            )
            for *ids, amount in await ctx.db.rows(single):
                shares[_key(*ids)] += sign * int(amount)
            per_doc = ctx.db.select_columns(model, col(doc), func.sum(col(model.amount)))
            money = dict(await ctx.db.rows(per_doc.where(*where, col(doc).in_(longer)).group_by(col(doc))))
            for chunk in _chunks(list(money)):
                stmt = ctx.db.select_columns(line, col(line_doc), col(weight), *map(col, keys))
                lines: dict[str, list[Any]] = defaultdict(list)
                for doc_id, *rest in await ctx.db.rows(
                    stmt.where(col(line_doc).in_(chunk)).order_by(col(line_doc), col(line.position))
                ):
                    lines[doc_id].append(rest)
                for doc_id, rows in lines.items():
                    weights = [max(int(r[0]), 0) for r in rows]
                    parts = allocate(int(money[doc_id]), weights if sum(weights) else [1] * len(rows))
                    for r, part in zip(rows, parts, strict=True):
                        shares[_key(*r[1:])] += sign * part
    return shares


def _chunks(ids: list[str], size: int = 5000) -> Iterable[list[str]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _chart(ctx: ToolContext, title: str, labels: list[str], series: dict[str, list[Any]], unit: str | None) -> None:
    from favmcp.domains.reports import charts  # lazily: matplotlib is an optional extra

    ctx.attach_image(charts.render(title, labels, series, unit=unit))


@tool(domain=DOMAIN_NAME, title="Revenue report", hints="R I", scope=SCOPE, route="GET /v1/reports/revenue")
async def revenue_report(ctx: ToolContext, args: RevenueInput) -> RevenueReport:
    """Payments less refunds by local day, ISO week or month, dated when money moved (void invoices never count),
    and by service, plan, product and other (each payment split over its document's lines). Money needs
    invoices:read."""
    tz, start, end, currency = await _range(ctx, args)
    items = periods.buckets(args.from_date, args.to_date, args.group_by, tz)
    money = sees_money(ctx)
    rows = [
        RevenueRow(period=b.label, paid_amount=None, refunded_amount=None, net_amount=None, currency=currency)
        for b in items
    ]
    shares: list[RevenueShare] = []
    net: int | None = None
    if money:
        paid = await _by_bucket(ctx, Payment, col(Payment.paid_at), _payments(ctx, start, end, currency), items)
        back = await _by_bucket(ctx, Refund, col(Refund.settled_at), _refunds(start, end, currency), items)
        for row, p, r in zip(rows, paid, back, strict=True):
            row.paid_amount, row.refunded_amount, row.net_amount = p, r, p - r
        net = sum(paid) - sum(back)
        order = {"service": 0, "plan": 1, "product": 2, "other": 3}
        split = await _breakdown(ctx, start, end, currency)
        split[("other", None)] += net - sum(split.values())  # money on no document, or on one without lines
        shares = [
            RevenueShare(kind=kind, id=ident, net_amount=amount, currency=currency)
            for (kind, ident), amount in sorted(split.items(), key=lambda kv: (order[kv[0][0]], kv[0][1] or ""))
            if amount
        ]
    if args.chart and money:
        labels = [r.period.isoformat() for r in rows]
        _chart(ctx, "Net revenue", labels, {"net": [r.net_amount for r in rows]}, currency)
    return RevenueReport(starts_at=start, ends_at=end, net_amount=net, currency=currency, rows=rows, breakdown=shares)


@tool(domain=DOMAIN_NAME, title="Get dashboard stats", hints="R I", scope=SCOPE, route="GET /v1/reports/dashboard")
async def get_dashboard_stats(ctx: ToolContext, args: RangeInput) -> DashboardStats:
    """Headline figures for local dates from_date..to_date: net revenue (as revenue_report), bookings starting then
    and their no-shows, new customers; and now: overdue invoices and active subscriptions. Money needs
    invoices:read."""
    tz, start, end, currency = await _range(ctx, args)
    money = sees_money(ctx)
    starting = (col(Booking.starts_at) >= start, col(Booking.starts_at) < end)
    counted = ctx.db.select_columns(Booking, col(Booking.status), func.count()).where(*starting)
    by_status = {BookingStatus(s): int(n) for s, n in await ctx.db.rows(counted.group_by(col(Booking.status)))}
    bookings = sum(n for s, n in by_status.items() if s not in (BookingStatus.cancelled, BookingStatus.declined))
    today = ctx.now.astimezone(tz).date()
    overdue = ctx.db.select_columns(Invoice, func.count(), func.coalesce(func.sum(col(Invoice.amount_remaining)), 0))
    [(overdue_count, overdue_amount)] = await ctx.db.rows(
        overdue.where(
            col(Invoice.status) == InvoiceStatus.open,
            col(Invoice.due_date) < today,
            col(Invoice.currency) == currency,
        )
    )
    stats = DashboardStats(
        starts_at=start,
        ends_at=end,
        net_revenue_amount=await net_revenue(ctx, start, end, currency) if money else None,
        currency=currency,
        bookings=bookings,
        no_shows=by_status.get(BookingStatus.no_show, 0),
        new_customers=await ctx.db.count(Member, col(Member.created_at) >= start, col(Member.created_at) < end),
        overdue_invoices=int(overdue_count),
        overdue_amount=int(overdue_amount) if money else None,
        active_subscriptions=await ctx.db.count(Subscription, col(Subscription.status) == SubscriptionStatus.active),
    )
    if args.chart:
        figures = {"bookings": stats.bookings, "no-shows": stats.no_shows, "new customers": stats.new_customers}
        _chart(ctx, "Dashboard", list(figures), {"count": list(figures.values())}, None)
    return stats


MONTHS_PER = {"week": Fraction(12, 52), "month": Fraction(1), "year": Fraction(12)}


def monthly(unit_amount: int, interval: str | None, count: int | None) -> Fraction:
    """A membership's price as a month's worth: per week x 52 / 12, per month as is, per year / 12, each divided
    by the interval count."""
    months = MONTHS_PER.get(interval or "month", Fraction(1)) * (count or 1)
    return Fraction(unit_amount) / months


def round_half_up(value: Fraction) -> int:
    return int((Decimal(value.numerator) / Decimal(value.denominator)).to_integral_value(rounding=ROUND_HALF_UP))


@tool(domain=DOMAIN_NAME, title="Membership report", hints="R I", scope=SCOPE, route="GET /v1/reports/membership")
async def membership_report(ctx: ToolContext, args: RangeInput) -> MembershipReport:
    """Memberships per plan and in all: in force (active, trialing, past due) at the range's end, new and
    cancelled in it, paused and past due now, monthly recurring revenue (week x52/12, year /12, rounded half up
    per plan). Money needs invoices:read."""
    _, start, end, currency = await _range(ctx, args)
    money = sees_money(ctx)
    stmt = ctx.db.select_columns(
        Subscription,
        col(Subscription.plan_id),
        col(Subscription.status),
        col(Subscription.created_at),
        col(Subscription.cancelled_at),
        col(Subscription.ended_at),
        col(Subscription.unit_amount),
        col(Subscription.interval),
        col(Subscription.interval_count),
    ).where(
        col(Subscription.kind) == PlanKind.membership,
        col(Subscription.status) != SubscriptionStatus.incomplete,
        col(Subscription.created_at) < end,
    )
    plans: dict[str, dict[str, Any]] = {}
    for plan_id, status, created, cancelled, ended, amount, interval, count in await ctx.db.rows(stmt):
        p = plans.setdefault(
            plan_id, {"active": 0, "new": 0, "paused": 0, "past_due": 0, "cancelled": 0, "mrr": Fraction(0)}
        )
        # In force until it ended (a cancellation at period end keeps it running until then).
        gone = ended if ended is not None or status != SubscriptionStatus.cancelled else cancelled
        if (gone is None or _utc(gone) >= end) and status != SubscriptionStatus.paused:
            p["active"] += 1
            p["mrr"] += monthly(int(amount), interval, count)
        if _utc(created) >= start:
            p["new"] += 1
        if status == SubscriptionStatus.paused:
            p["paused"] += 1
        if status == SubscriptionStatus.past_due:
            p["past_due"] += 1
        if cancelled is not None and start <= _utc(cancelled) < end:
            p["cancelled"] += 1
    rows = [
        PlanMembership(
            plan_id=plan_id,
            active=p["active"],
            new=p["new"],
            paused=p["paused"],
            past_due=p["past_due"],
            cancelled=p["cancelled"],
            monthly_recurring_amount=round_half_up(p["mrr"]) if money else None,
            currency=currency,
        )
        for plan_id, p in sorted(plans.items())
    ]
    fields = ("active", "new", "paused", "past_due", "cancelled")
    total = PlanMembership(
        plan_id=None,
        **{f: sum(getattr(r, f) for r in rows) for f in fields},
        monthly_recurring_amount=sum(r.monthly_recurring_amount or 0 for r in rows) if money else None,
        currency=currency,
    )
    if args.chart:
        _chart(ctx, "Memberships in force", [r.plan_id or "" for r in rows], {"active": [r.active for r in rows]}, None)
    return MembershipReport(starts_at=start, ends_at=end, plans=rows, all_plans=total)


def _utc(moment: datetime) -> datetime:
    return utc(moment)


TOOLS = [get_dashboard_stats, revenue_report, membership_report]
