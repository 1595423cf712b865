"""Subscriptions: periods and their invoices, activation on payment, and the billing run.

Billing is safe to run as often and as concurrently as anyone likes: each run locks the subscriptions it will
touch in id order before it creates any invoice, and a period's invoice is made only by the call that inserts its
`subscription_periods` row (unique per subscription and period start).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_
from sqlmodel import col

from favmcp.core.errors import FavError, FieldError, invalid_state, not_found, validation_failed
from favmcp.core.ids import new_id
from favmcp.core.money import Percent
from favmcp.domains.invoices import service as invoices
from favmcp.domains.invoices.events import InvoicePaid, InvoiceVoided
from favmcp.domains.members import service as members
from favmcp.domains.members.events import MemberErased
from favmcp.domains.subscriptions import credits
from favmcp.domains.subscriptions.events import SubscriptionRenewed
from favmcp.domains.subscriptions.lifecycle import LIVE, SUBSCRIPTION_LIFECYCLE
from favmcp.domains.subscriptions.models import (
    PauseReason,
    Plan,
    PlanInterval,
    PlanKind,
    Subscription,
    SubscriptionPeriod,
    SubscriptionStatus,
)
from favmcp.registry.context import ToolContext

S = SubscriptionStatus
PAYMENT_TERMS_DAYS = 7  # a subscription invoice is due a week after its period starts (or after it is made)
OWED = ("open", "uncollectible")
LIST_PLANS = "See plans with list_plans."
LIST_SUBSCRIPTIONS = "Find subscriptions with list_subscriptions."


# -- loading -------------------------------------------------------------------------------------------------------


async def load_plan(ctx: ToolContext, plan_id: str, *, lock: bool = False) -> Plan:
    plan = await ctx.db.get(Plan, plan_id, lock=lock)
    if plan is None:
        raise not_found("plan", plan_id, hint=LIST_PLANS)
    return plan


async def plan_of_invoice(ctx: ToolContext, invoice_id: str) -> str | None:
    """The plan whose subscription billed this invoice (None: not a subscription's invoice). For loyalty's spend
    rules limited to one plan."""
    db = ctx.db.unfiltered
    period = await db.first(db.select(SubscriptionPeriod, col(SubscriptionPeriod.invoice_id) == invoice_id))
    return period.plan_id if period is not None else None


async def load_to_bill(ctx: ToolContext, subscription_id: str) -> Subscription:
    """A subscription locked for work that may invoice its customer: the customer's row first, then the
    subscription's, the order billing and payments take (see run_billing)."""
    sub = await load(ctx, subscription_id)
    await members.load_for_write(ctx, sub.member_id)
    return await load(ctx, subscription_id, lock=True)


async def load(ctx: ToolContext, subscription_id: str, *, lock: bool = False) -> Subscription:
    sub = await ctx.db.get(Subscription, subscription_id, lock=lock)
    if sub is None:
        raise not_found("subscription", subscription_id, hint=LIST_SUBSCRIPTIONS)
    return sub


async def zone(ctx: ToolContext) -> ZoneInfo:
    return ZoneInfo((await ctx.db.workspace()).timezone)


# -- periods -------------------------------------------------------------------------------------------------------


def add_intervals(anchor: datetime, interval: str, count: int, tz: ZoneInfo) -> datetime:
    """`anchor` moved by `count` intervals on the workspace's wall clock; a month end clamps (Jan 31 + 1 month is
    Feb 28 or 29), and every period is counted from the anchor, so later periods do not drift."""
    local = anchor.astimezone(tz)
    if interval == PlanInterval.week:
        moved = local.replace(tzinfo=None) + timedelta(weeks=count)
    else:
        months = count * (12 if interval == PlanInterval.year else 1)
        year, month = divmod(local.month - 1 + months, 12)
        year += local.year
        day = min(local.day, calendar.monthrange(year, month + 1)[1])
        moved = local.replace(tzinfo=None, year=year, month=month + 1, day=day)
    return moved.replace(tzinfo=tz).astimezone(UTC)


def period_bounds(sub: Subscription, index: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    assert sub.anchor_at is not None and sub.interval is not None and sub.interval_count is not None
    start = add_intervals(sub.anchor_at, sub.interval, index * sub.interval_count, tz)
    return start, add_intervals(sub.anchor_at, sub.interval, (index + 1) * sub.interval_count, tz)


async def open_period(
    ctx: ToolContext, sub: Subscription, plan: Plan, start: datetime, end: datetime | None
) -> str | None:
    """Insert the period's row and, only if this call inserted it, make and finalize its invoice; the invoice id,
    or None when the period was billed already."""
    period_id = new_id("sbp")
    added = await ctx.db.insert_or_ignore(
        SubscriptionPeriod,
        [
            {
                "id": period_id,
                "subscription_id": sub.id,
                "member_id": sub.member_id,
                "plan_id": plan.id,
                "period_start": start,
                "period_end": end,
                "unit_amount": sub.unit_amount,
                "currency": sub.currency,
                "created_at": ctx.now,
            }
        ],
    )
    if not added:
        return None
    tz = await zone(ctx)
    due = max(start.astimezone(tz).date(), ctx.now.astimezone(tz).date()) + timedelta(days=PAYMENT_TERMS_DAYS)
    invoice_id = await invoices.create_draft(
        ctx,
        member_id=sub.member_id,
        lines=[
            invoices.DraftLine(
                description=_line_text(plan, sub, start, end, tz),
                quantity=1,
                unit_amount=sub.unit_amount,
                tax_rate=Percent.parse(sub.tax_rate),
                plan_id=plan.id,
            )
        ],
        currency=sub.currency,
        due_date=due,
        memo=f"Subscription {sub.id}",
    )
    await invoices.finalize(ctx, invoice_id)
    await ctx.db.update(
        SubscriptionPeriod, col(SubscriptionPeriod.id) == period_id, values={"invoice_id": invoice_id, "due_date": due}
    )
    await ctx.db.update(
        Subscription, col(Subscription.id) == sub.id, values={"latest_invoice_id": invoice_id, "updated_at": ctx.now}
    )
    return invoice_id


def _line_text(plan: Plan, sub: Subscription, start: datetime, end: datetime | None, tz: ZoneInfo) -> str:
    if sub.kind == PlanKind.pack:
        return f"{plan.name}: {sub.credits} class credits, valid {sub.validity_days} days from payment"
    assert end is not None
    last = (end.astimezone(tz) - timedelta(seconds=1)).date()
    return f"{plan.name}: {start.astimezone(tz).date().isoformat()} to {last.isoformat()}"


def take_plan_terms(sub: Subscription, plan: Plan) -> None:
    """The plan's current price and terms, for a new subscription or a renewal."""
    sub.plan_id = plan.id
    sub.unit_amount = plan.unit_amount
    sub.currency = plan.currency
    sub.tax_rate = plan.tax_rate
    sub.interval = plan.interval
    sub.interval_count = plan.interval_count
    sub.credits = plan.credits
    sub.validity_days = plan.validity_days


# -- moves -----------------------------------------------------------------------------------------------------


async def move(ctx: ToolContext, sub: Subscription, target: S, **values: Any) -> bool:
    moved = await ctx.transition(
        SUBSCRIPTION_LIFECYCLE, Subscription, sub.id, target, values={"updated_at": ctx.now, **values}
    )
    if moved:
        ctx.record_change(subscription_id=sub.id, fields=["status", *values])
    return moved


async def resume(ctx: ToolContext, sub: Subscription, at: datetime) -> None:
    """Paused -> active. A membership whose period ran out while paused starts a new one at `at`, with its
    invoice; one still inside its period carries on."""
    values: dict[str, Any] = {"pause_reason": None, "paused_at": None, "resume_at": None}
    if sub.kind == PlanKind.membership and sub.current_period_end is not None and sub.current_period_end <= at:
        tz = await zone(ctx)
        await apply_pending_plan(ctx, sub)
        sub.anchor_at, sub.period_index = at, 0
        start, end = period_bounds(sub, 0, tz)
        sub.current_period_start, sub.current_period_end = start, end
        await ctx.db.flush()
        await open_period(ctx, sub, await load_plan(ctx, sub.plan_id), start, end)
    await move(ctx, sub, S.active, **values)


async def apply_pending_plan(ctx: ToolContext, sub: Subscription) -> Plan:
    """At a renewal: the scheduled plan (if any) takes over, and the plan's current price applies."""
    plan = await load_plan(ctx, sub.pending_plan_id or sub.plan_id)
    take_plan_terms(sub, plan)
    sub.pending_plan_id = None
    return plan


async def cancel_now(ctx: ToolContext, sub: Subscription, reason: str, at: datetime | None = None) -> int:
    """End at once (or at `at`, a period end passed); a pack cancelled now forfeits its unused credits."""
    when = at or ctx.now
    await move(
        ctx, sub, S.cancelled,
        cancelled_at=sub.cancelled_at or ctx.now, ended_at=when, cancellation_reason=reason,
        pending_plan_id=None, resume_at=None,
    )  # fmt: skip
    return await credits.forfeit(ctx, sub.id) if at is None and sub.kind == PlanKind.pack else 0


# -- payment -------------------------------------------------------------------------------------------------------


async def on_invoice_paid(ctx: ToolContext, event: InvoicePaid) -> None:
    """A subscription's invoice was paid: the first one activates it (a pack grants its credits, valid from now),
    a paid renewal brings a past-due one back, and a trial that ended unpaid resumes. Once per invoice."""
    period = await ctx.db.first(
        ctx.db.select(SubscriptionPeriod, col(SubscriptionPeriod.invoice_id) == event.invoice_id)
    )
    if period is None:
        return
    sub = await load(ctx, period.subscription_id, lock=True)
    marked = await ctx.db.update_returning(
        SubscriptionPeriod,
        col(SubscriptionPeriod.id) == period.id,
        col(SubscriptionPeriod.paid_at).is_(None),
        values={"paid_at": ctx.now},
    )
    if not marked or sub.status == S.cancelled:
        return
    if sub.kind == PlanKind.pack and sub.status == S.incomplete:
        assert sub.credits is not None and sub.validity_days is not None
        ends = ctx.now + timedelta(days=sub.validity_days)
        await credits.grant(ctx, sub, sub.credits, ends)
        await move(ctx, sub, S.active, current_period_start=ctx.now, current_period_end=ends)
    elif sub.status in (S.incomplete, S.trialing):
        await move(ctx, sub, S.active)
    elif sub.status == S.paused and sub.pause_reason == PauseReason.trial_ended:
        await move(ctx, sub, S.active, pause_reason=None, paused_at=None)
    elif sub.status == S.past_due and not await _owes_overdue(ctx, sub, ctx.now):
        await move(ctx, sub, S.active)


async def on_invoice_voided(ctx: ToolContext, event: InvoiceVoided) -> None:
    """A subscription's invoice was voided: nothing is owed for that period. A subscription waiting for that
    invoice to start (unpaid first invoice, or a trial that ended unpaid) ends; a past-due one that owes nothing
    else is active again."""
    period = await ctx.db.first(
        ctx.db.select(SubscriptionPeriod, col(SubscriptionPeriod.invoice_id) == event.invoice_id)
    )
    if period is None:
        return
    sub = await load(ctx, period.subscription_id, lock=True)
    if period.paid_at is not None:
        return
    # Nothing is due on it any more: billing stops looking at it for past-due checks.
    await ctx.db.update(SubscriptionPeriod, col(SubscriptionPeriod.id) == period.id, values={"due_date": None})
    starting = sub.status == S.incomplete or (sub.status == S.paused and sub.pause_reason == PauseReason.trial_ended)
    if starting and sub.latest_invoice_id == event.invoice_id:
        await cancel_now(ctx, sub, "invoice_voided")
    elif sub.status == S.past_due and not await _owes_overdue(ctx, sub, ctx.now):
        await move(ctx, sub, S.active)


async def overdue_periods(ctx: ToolContext, subscription_id: str, at: datetime) -> list[SubscriptionPeriod]:
    """Periods whose invoice is unpaid after its due date (the day after it, in the workspace's timezone)."""
    day = at.astimezone(await zone(ctx)).date()
    return await ctx.db.all(
        ctx.db.select(
            SubscriptionPeriod,
            col(SubscriptionPeriod.subscription_id) == subscription_id,
            col(SubscriptionPeriod.paid_at).is_(None),
            col(SubscriptionPeriod.invoice_id).is_not(None),
            col(SubscriptionPeriod.due_date) < day,
        )
    )


async def on_member_erased(ctx: ToolContext, event: MemberErased) -> None:
    """An erased customer is billed no more: their live subscriptions end now."""
    live = await ctx.db.all(
        ctx.db.select(Subscription, col(Subscription.member_id) == event.member_id, col(Subscription.status).in_(LIVE))
    )
    for sub in sorted(live, key=lambda s: s.id):
        await cancel_now(ctx, await load(ctx, sub.id, lock=True), "member_erased")


# -- billing -------------------------------------------------------------------------------------------------------


@dataclass
class BillingCounts:
    renewed: int = 0
    trials_ended: int = 0
    past_due: int = 0
    cancelled: int = 0
    resumed: int = 0
    credits_expired: int = 0


async def run_billing(ctx: ToolContext, up_to: datetime) -> BillingCounts:
    """Everything due by `up_to`: resumes whose date passed, trials that ended (first invoice, paused until paid),
    period ends (cancel at period end, a pack's end, or a renewal with the plan's current price and one invoice),
    unpaid invoices past their due date (past_due), and expired credits."""
    if up_to > ctx.now:
        raise validation_failed(
            "Billing acts on what is due; up_to cannot be in the future.",
            [FieldError(field="up_to", message="now or earlier; leave it out for now")],
        )
    counts = BillingCounts()
    tz = await zone(ctx)
    due = await _due(ctx, up_to, tz)
    # Lock everything this run will touch before making any invoice, in one global order (the customers, then
    # their subscriptions, each by id), the order a payment takes too (the customer, then on invoice.paid the
    # subscription): concurrent runs and payments queue instead of deadlocking.
    billable = set()
    for member_id in sorted(set(due.values())):
        try:
            await members.load_for_write(ctx, member_id)
        except FavError:
            continue  # merged or erased: their subscriptions moved or ended; nothing to invoice here
        billable.add(member_id)
    subs = [await load(ctx, sub_id, lock=True) for sub_id in sorted(due) if due[sub_id] in billable]
    for sub in subs:
        await _bill(ctx, sub, up_to, tz, counts)
    counts.credits_expired = await credits.expire_due(ctx, up_to)
    return counts


async def _due(ctx: ToolContext, up_to: datetime, tz: ZoneInfo) -> dict[str, str]:
    """The subscriptions with something due, and their customers."""
    ended = col(Subscription.current_period_end) <= up_to
    stmt = ctx.db.select_columns(Subscription, col(Subscription.id), col(Subscription.member_id)).where(
        or_(
            (col(Subscription.status) == S.paused) & (col(Subscription.resume_at) <= up_to),
            (col(Subscription.status) == S.paused) & col(Subscription.cancel_at_period_end) & ended,
            (col(Subscription.status) == S.trialing) & (col(Subscription.trial_end) <= up_to),
            col(Subscription.status).in_([S.active, S.past_due]) & ended,
        )
    )
    due = {sub_id: member_id for sub_id, member_id in await ctx.db.rows(stmt)}
    day = up_to.astimezone(tz).date()
    overdue = (
        ctx.db.select_columns(SubscriptionPeriod, col(Subscription.id), col(Subscription.member_id))
        .join(Subscription, col(Subscription.id) == col(SubscriptionPeriod.subscription_id))
        .where(
            ctx.db.owns(Subscription),
            col(Subscription.status) == S.active,
            col(SubscriptionPeriod.paid_at).is_(None),
            col(SubscriptionPeriod.invoice_id).is_not(None),
            col(SubscriptionPeriod.due_date) < day,
        )
    )
    return due | {sub_id: member_id for sub_id, member_id in await ctx.db.rows(overdue)}


async def _bill(ctx: ToolContext, sub: Subscription, up_to: datetime, tz: ZoneInfo, counts: BillingCounts) -> None:
    """One subscription, locked and read fresh: whatever of its work another run did already is not done again."""
    if sub.status == S.paused:
        end = sub.current_period_end
        if sub.cancel_at_period_end and end is not None and end <= up_to:
            await cancel_now(ctx, sub, "requested", at=end)
            counts.cancelled += 1
            return
        if sub.resume_at is not None and sub.resume_at <= up_to and sub.pause_reason == PauseReason.requested:
            await resume(ctx, sub, sub.resume_at)
            counts.resumed += 1
    if sub.status == S.trialing and sub.trial_end is not None and sub.trial_end <= up_to:
        await _end_trial(ctx, sub, tz)
        counts.trials_ended += 1
    while sub.status in (S.active, S.past_due):
        end = sub.current_period_end
        if end is None or end > up_to:
            break
        if sub.kind == PlanKind.pack or sub.cancel_at_period_end:
            await cancel_now(ctx, sub, "pack_ended" if sub.kind == PlanKind.pack else "requested", at=end)
            counts.cancelled += 1
            return
        await _renew(ctx, sub, tz)
        counts.renewed += 1
    if sub.status == S.active and await _owes_overdue(ctx, sub, up_to):
        await move(ctx, sub, S.past_due)
        counts.past_due += 1


async def _end_trial(ctx: ToolContext, sub: Subscription, tz: ZoneInfo) -> None:
    """The trial is over: cancelled if so asked, else the first paid period opens with its invoice and the
    subscription pauses until that invoice is paid."""
    assert sub.trial_end is not None
    if sub.cancel_at_period_end:
        await cancel_now(ctx, sub, "requested", at=sub.trial_end)
        return
    plan = await apply_pending_plan(ctx, sub)
    sub.anchor_at, sub.period_index = sub.trial_end, 0
    start, end = period_bounds(sub, 0, tz)
    sub.current_period_start, sub.current_period_end, sub.updated_at = start, end, ctx.now
    await ctx.db.flush()
    await open_period(ctx, sub, plan, start, end)
    await move(ctx, sub, S.paused, pause_reason=PauseReason.trial_ended, paused_at=sub.trial_end)


async def _renew(ctx: ToolContext, sub: Subscription, tz: ZoneInfo) -> None:
    plan = await apply_pending_plan(ctx, sub)
    index = sub.period_index + 1
    start, end = period_bounds(sub, index, tz)
    sub.period_index, sub.current_period_start, sub.current_period_end = index, start, end
    sub.updated_at = ctx.now
    await ctx.db.flush()
    invoice_id = await open_period(ctx, sub, plan, start, end)
    ctx.record_change(subscription_id=sub.id, fields=["current_period_start", "current_period_end"])
    if invoice_id is not None:
        ctx.emit(SubscriptionRenewed(subscription_id=sub.id, period_start=start, invoice_id=invoice_id))


async def _owes_overdue(ctx: ToolContext, sub: Subscription, up_to: datetime) -> bool:
    for period in await overdue_periods(ctx, sub.id, up_to):
        assert period.invoice_id is not None
        owed = await invoices.invoice_summary(ctx, period.invoice_id)
        if owed.status in OWED and owed.amount_remaining > 0:
            return True
    return False


# -- reading ---------------------------------------------------------------------------------------------------


async def subscriber_counts(ctx: ToolContext, plan_ids: list[str], states: tuple[S, ...]) -> dict[str, int]:
    if not plan_ids:
        return {}
    stmt = (
        ctx.db.select_columns(Subscription, col(Subscription.plan_id), func.count())
        .where(col(Subscription.plan_id).in_(plan_ids), col(Subscription.status).in_(states))
        .group_by(col(Subscription.plan_id))
    )
    return {plan_id: int(n) for plan_id, n in await ctx.db.rows(stmt)}


async def plan_names(ctx: ToolContext, plan_ids: set[str]) -> dict[str, str]:
    if not plan_ids:
        return {}
    stmt = ctx.db.select_columns(Plan, col(Plan.id), col(Plan.name)).where(col(Plan.id).in_(plan_ids))
    return {plan_id: name for plan_id, name in await ctx.db.rows(stmt)}


def local_day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def ensure_state(sub: Subscription, allowed: tuple[S, ...], doing: str, hint: str) -> None:
    if sub.status not in allowed:
        raise invalid_state(
            f"Subscription {sub.id} is {sub.status}; cannot {doing}.",
            current=sub.status,
            allowed=[s.value for s in SUBSCRIPTION_LIFECYCLE.allowed_from(S(sub.status))],
            hint=hint,
            id=sub.id,
        )
