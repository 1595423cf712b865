"""Subscriptions: membership plans and class packs, subscribing customers, pause, resume, cancel, plan changes,
and the billing run that renews them with one invoice per period."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col

from favmcp.core.errors import FieldError, conflict, invalid_state, validation_failed
from favmcp.core.ids import new_id
from favmcp.core.links import MemberLink, OnErase, OnMerge, export_row
from favmcp.core.money import CurrencyMismatchError
from favmcp.domains.invoices import service as invoices
from favmcp.domains.invoices.events import InvoicePaid, InvoiceVoided
from favmcp.domains.members import service as members
from favmcp.domains.members.events import MemberErased
from favmcp.domains.subscriptions import credits, service
from favmcp.domains.subscriptions.events import EVENTS, SubscriptionCreated
from favmcp.domains.subscriptions.lifecycle import LIVE, SUBSCRIBED
from favmcp.domains.subscriptions.models import (
    CreditEntry,
    CreditLot,
    PauseReason,
    Plan,
    PlanKind,
    PlanStatus,
    Subscription,
    SubscriptionPeriod,
    SubscriptionStatus,
)
from favmcp.domains.subscriptions.schemas import (
    ArchivePlanInput,
    BillingResult,
    CancelPreview,
    CancelResult,
    CancelSubscriptionInput,
    ChangeSubscriptionPlanInput,
    CreatePlanInput,
    CreditLotPublic,
    GetSubscriptionInput,
    ListPlansInput,
    ListSubscriptionsInput,
    PauseSubscriptionInput,
    PlanPage,
    PlanPublic,
    ResumeSubscriptionInput,
    RunBillingInput,
    SubscribeMemberInput,
    SubscriptionDetail,
    SubscriptionInvoice,
    SubscriptionPage,
    SubscriptionPublic,
    UpdatePlanInput,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain, Job
from favmcp.registry.spec import tool

DOMAIN_NAME = "subscriptions"
S = SubscriptionStatus
RECENT_INVOICES = 12


def _plan_public(plan: Plan, subscribers: int) -> PlanPublic:
    return PlanPublic.model_validate({**plan.model_dump(), "active_subscribers": subscribers})


def _public(sub: Subscription, plan_name: str, credits_left: int | None, now: datetime) -> SubscriptionPublic:
    ended = sub.cancel_at_period_end and sub.current_period_end is not None and sub.current_period_end <= now
    return SubscriptionPublic.model_validate(
        {
            **sub.model_dump(),
            "plan_name": plan_name,
            "has_access": sub.status in (S.active, S.trialing) and not ended,
            "credits_left": credits_left if sub.kind == PlanKind.pack else None,
        }
    )


async def _view(ctx: ToolContext, sub: Subscription) -> SubscriptionPublic:
    await ctx.db.refresh(sub)
    names = await service.plan_names(ctx, {sub.plan_id})
    left = (await credits.credits_left(ctx, [sub.id])).get(sub.id, 0)
    return _public(sub, names.get(sub.plan_id, ""), left, ctx.now)


# Plans


@tool(domain=DOMAIN_NAME, title="Create plan", hints="W", scope="subscriptions:admin", route="POST /v1/plans")
async def create_plan(ctx: ToolContext, args: CreatePlanInput) -> PlanPublic:
    """Create a membership (price every interval_count intervals, optional trial_days) or a class pack (price,
    credits, validity_days from payment). Sell it with subscribe_member."""
    currency = args.currency or (await ctx.db.workspace()).currency
    plan = ctx.db.add(
        Plan(
            id=new_id("pln"),
            workspace_id=ctx.workspace_id,
            kind=args.kind,
            name=args.name,
            unit_amount=args.unit_amount,
            currency=currency,
            tax_rate=str(args.tax_rate),
            interval=args.interval,
            interval_count=args.interval_count if args.kind == PlanKind.membership else None,
            credits=args.credits,
            validity_days=args.validity_days,
            trial_days=args.trial_days,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    )
    await ctx.db.flush()
    ctx.record_change(plan_id=plan.id)
    return _plan_public(plan, 0)


@tool(domain=DOMAIN_NAME, title="List plans", hints="R I", scope="subscriptions:read", route="GET /v1/plans")
async def list_plans(ctx: ToolContext, args: ListPlansInput) -> PlanPage:
    """Plans and packs, newest first, with price and active subscriber counts."""
    stmt = ctx.db.select(Plan)
    if args.status is not None:
        stmt = stmt.where(col(Plan.status) == args.status)
    if args.kind is not None:
        stmt = stmt.where(col(Plan.kind) == args.kind)
    rows, cursor = await ctx.db.page(stmt, col(Plan.id), args)
    counts = await service.subscriber_counts(ctx, [p.id for p in rows], SUBSCRIBED)
    items = [_plan_public(p, counts.get(p.id, 0)) for p in rows]
    return PlanPage(items=items, next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME, title="Update plan", hints="W I", scope="subscriptions:admin", route="PATCH /v1/plans/{plan_id}"
)
async def update_plan(ctx: ToolContext, args: UpdatePlanInput) -> PlanPublic:
    """Change a plan's name, price or terms: new sales and each subscription's next renewal take them; the
    current period keeps its price."""
    plan = await service.load_plan(ctx, args.plan_id, lock=True)
    if args.currency is not None and args.currency != plan.currency:
        raise CurrencyMismatchError(plan.currency, args.currency)
    given = args.model_fields_set - {"plan_id", "idempotency_key", "currency"}
    foreign = given & ({"credits", "validity_days"} if plan.kind == PlanKind.membership else {"trial_days"})
    if foreign:
        raise validation_failed(
            f"A {plan.kind} plan has no {', '.join(sorted(foreign))}.",
            [FieldError(field=name, message=f"not a term of a {plan.kind}") for name in sorted(foreign)],
        )
    changes = {name: getattr(args, name) for name in given}
    if "tax_rate" in changes:
        changes["tax_rate"] = str(changes["tax_rate"])
    changed = sorted(name for name, value in changes.items() if getattr(plan, name) != value)
    if changed:
        for name in changed:
            setattr(plan, name, changes[name])
        plan.updated_at = ctx.now
        await ctx.db.flush()
        ctx.record_change(plan_id=plan.id, fields=changed)
    counts = await service.subscriber_counts(ctx, [plan.id], SUBSCRIBED)
    return _plan_public(plan, counts.get(plan.id, 0))


@tool(
    domain=DOMAIN_NAME,
    title="Archive plan",
    hints="D I",
    scope="subscriptions:admin",
    route="DELETE /v1/plans/{plan_id}",
)
async def archive_plan(ctx: ToolContext, args: ArchivePlanInput) -> PlanPublic:
    """Stop selling a plan; existing subscriptions continue and renew."""
    plan = await service.load_plan(ctx, args.plan_id, lock=True)
    if plan.status != PlanStatus.archived:
        plan.status, plan.archived_at, plan.updated_at = PlanStatus.archived, ctx.now, ctx.now
        await ctx.db.flush()
        ctx.record_change(plan_id=plan.id, fields=["status"])
    counts = await service.subscriber_counts(ctx, [plan.id], SUBSCRIBED)
    return _plan_public(plan, counts.get(plan.id, 0))


# Subscriptions


def _refuse_archived(plan: Plan) -> None:
    if plan.status == PlanStatus.archived:
        raise invalid_state(
            f"Plan {plan.id} ({plan.name}) is archived and no longer sold.",
            current="archived",
            hint="Choose an active plan (list_plans with status active).",
            id=plan.id,
        )


@tool(
    domain=DOMAIN_NAME, title="Subscribe member", hints="W", scope="subscriptions:write", route="POST /v1/subscriptions"
)
async def subscribe_member(ctx: ToolContext, args: SubscribeMemberInput) -> SubscriptionPublic:
    """Start a membership or sell a pack: issues the first invoice (latest_invoice_id) and turns active when it
    is paid (a pack then grants its credits); with a trial, the invoice comes at the trial's end. One live
    subscription per member and membership plan."""
    plan = await service.load_plan(ctx, args.plan_id)
    _refuse_archived(plan)
    member = await members.load_for_write(ctx, args.member_id)  # locks the member: their subscribes take turns
    trial_days = plan.trial_days if args.trial_days is None else args.trial_days
    if plan.kind == PlanKind.pack and args.trial_days:
        raise validation_failed(
            "A pack has no trial.", [FieldError(field="trial_days", message="leave it out for a pack")]
        )
    if plan.kind == PlanKind.membership:
        existing = await ctx.db.first(
            ctx.db.select(
                Subscription,
                col(Subscription.member_id) == member.id,
                col(Subscription.plan_id) == plan.id,
                col(Subscription.status).in_(LIVE),
            )
        )
        if existing is not None:
            raise conflict(
                f"Member {member.id} already has a {existing.status} subscription to {plan.name}: {existing.id}.",
                hint="See it with get_subscription; resume or change it instead of subscribing again.",
                details={"existing_subscription_id": existing.id},
            )
    sub = Subscription(
        id=new_id("sub"),
        workspace_id=ctx.workspace_id,
        member_id=member.id,
        plan_id=plan.id,
        kind=plan.kind,
        status=S.incomplete,
        unit_amount=plan.unit_amount,
        currency=plan.currency,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    service.take_plan_terms(sub, plan)
    tz = await service.zone(ctx)
    if plan.kind == PlanKind.membership and trial_days:
        sub.status, sub.trial_end = S.trialing, ctx.now + timedelta(days=trial_days)
        sub.anchor_at, sub.period_index = sub.trial_end, -1
        sub.current_period_start, sub.current_period_end = ctx.now, sub.trial_end
    elif plan.kind == PlanKind.membership:
        sub.anchor_at = ctx.now
        sub.current_period_start, sub.current_period_end = service.period_bounds(sub, 0, tz)
    ctx.db.add(sub)
    await ctx.db.flush()
    if sub.status == S.incomplete:
        await service.open_period(ctx, sub, plan, ctx.now, sub.current_period_end)
    ctx.emit(SubscriptionCreated(subscription_id=sub.id, member_id=member.id, plan_id=plan.id))
    ctx.record_change(subscription_id=sub.id, member_id=member.id, plan_id=plan.id)
    return await _view(ctx, sub)


@tool(
    domain=DOMAIN_NAME,
    title="Get subscription",
    hints="R I",
    scope="subscriptions:read",
    route="GET /v1/subscriptions/{subscription_id}",
)
async def get_subscription(ctx: ToolContext, args: GetSubscriptionInput) -> SubscriptionDetail:
    """One subscription: status, period, access, scheduled changes, credits and invoices."""
    sub = await service.load(ctx, args.subscription_id)
    periods = await ctx.db.all(
        ctx.db.select(
            SubscriptionPeriod,
            col(SubscriptionPeriod.subscription_id) == sub.id,
            col(SubscriptionPeriod.invoice_id).is_not(None),
        )
        .order_by(col(SubscriptionPeriod.period_start).desc())
        .limit(RECENT_INVOICES)
    )
    count = await ctx.db.count(
        SubscriptionPeriod,
        col(SubscriptionPeriod.subscription_id) == sub.id,
        col(SubscriptionPeriod.invoice_id).is_not(None),
    )
    bills = []
    for period in periods:
        assert period.invoice_id is not None
        summary = await invoices.invoice_summary(ctx, period.invoice_id)
        bills.append(
            SubscriptionInvoice(
                invoice_id=summary.id,
                number=summary.number,
                status=summary.status,
                period_start=period.period_start,
                period_end=period.period_end,
                total=summary.total,
                amount_remaining=summary.amount_remaining,
                currency=summary.currency,
                due_date=summary.due_date,
            )
        )
    lots = await ctx.db.all(
        ctx.db.select(CreditLot, col(CreditLot.subscription_id) == sub.id).order_by(col(CreditLot.expires_at))
    )
    base = await _view(ctx, sub)
    return SubscriptionDetail(
        **base.model_dump(),
        trial_end=sub.trial_end,
        paused_reason=sub.pause_reason,
        cancelled_at=sub.cancelled_at,
        cancellation_reason=sub.cancellation_reason,
        created_at=sub.created_at,
        invoices=bills,
        invoice_count=count,
        credit_lots=[
            CreditLotPublic(
                lot_id=lot.id,
                granted=lot.granted,
                left=lot.remaining if lot.expires_at > ctx.now else 0,
                expires_at=lot.expires_at,
                expired=lot.expires_at <= ctx.now,
            )
            for lot in lots
        ],
    )


@tool(
    domain=DOMAIN_NAME,
    title="List subscriptions",
    hints="R I",
    scope="subscriptions:read",
    route="GET /v1/subscriptions",
)
async def list_subscriptions(ctx: ToolContext, args: ListSubscriptionsInput) -> SubscriptionPage:
    """Subscriptions, newest first, filtered by status, plan or customer."""
    stmt = ctx.db.select(Subscription)
    if args.status is not None:
        stmt = stmt.where(col(Subscription.status) == args.status)
    if args.plan_id is not None:
        stmt = stmt.where(col(Subscription.plan_id) == args.plan_id)
    if args.member_id is not None:
        stmt = stmt.where(col(Subscription.member_id) == args.member_id)
    rows, cursor = await ctx.db.page(stmt, col(Subscription.id), args)
    names = await service.plan_names(ctx, {s.plan_id for s in rows})
    left = await credits.credits_left(ctx, [s.id for s in rows if s.kind == PlanKind.pack])
    items = [_public(s, names.get(s.plan_id, ""), left.get(s.id, 0), ctx.now) for s in rows]
    return SubscriptionPage(items=items, next_cursor=cursor, has_more=cursor is not None)


def _awaiting_first_payment(sub: Subscription, doing: str) -> None:
    if sub.status == S.paused and sub.pause_reason == PauseReason.trial_ended:
        raise invalid_state(
            f"Subscription {sub.id} is paused because its trial ended unpaid; it resumes when invoice "
            f"{sub.latest_invoice_id} is paid, so it cannot {doing}.",
            current=sub.status,
            allowed=[S.active.value, S.cancelled.value],
            hint="Record the payment of that invoice (record_payment) or cancel_subscription.",
            id=sub.id,
            invoice_id=sub.latest_invoice_id,
        )


@tool(
    domain=DOMAIN_NAME,
    title="Pause subscription",
    hints="W I",
    scope="subscriptions:write",
    route="POST /v1/subscriptions/{subscription_id}/pause",
)
async def pause_subscription(ctx: ToolContext, args: PauseSubscriptionInput) -> SubscriptionPublic:
    """Pause billing and bookings until resume_on (billing resumes it) or resume_subscription. On a paused
    subscription it sets the resume date."""
    sub = await service.load(ctx, args.subscription_id, lock=True)
    tz = await service.zone(ctx)
    resume_at = None
    if args.resume_on is not None:
        if args.resume_on <= ctx.now.astimezone(tz).date():
            raise validation_failed(
                "The resume date must be after today.",
                [FieldError(field="resume_on", message="a later date (workspace timezone)")],
            )
        resume_at = service.local_day_start(args.resume_on, tz)
    if sub.status == S.paused:
        _awaiting_first_payment(sub, "get a resume date")
        if sub.resume_at != resume_at:
            await ctx.db.update(
                Subscription, col(Subscription.id) == sub.id, values={"resume_at": resume_at, "updated_at": ctx.now}
            )
            ctx.record_change(subscription_id=sub.id, fields=["resume_at"])
        return await _view(ctx, sub)
    service.ensure_state(
        sub, (S.trialing, S.active, S.past_due), "be paused", "Only live subscriptions pause; see get_subscription."
    )
    await service.move(ctx, sub, S.paused, pause_reason=PauseReason.requested, paused_at=ctx.now, resume_at=resume_at)
    return await _view(ctx, sub)


@tool(
    domain=DOMAIN_NAME,
    title="Resume subscription",
    hints="W I",
    scope="subscriptions:write",
    route="POST /v1/subscriptions/{subscription_id}/resume",
)
async def resume_subscription(ctx: ToolContext, args: ResumeSubscriptionInput) -> SubscriptionPublic:
    """Resume a paused subscription now; if its period ran out meanwhile a new one starts with its invoice. One
    paused by an unpaid trial end resumes only when paid."""
    sub = await service.load_to_bill(ctx, args.subscription_id)  # a new period invoices the customer
    if sub.status == S.active:
        return await _view(ctx, sub)
    service.ensure_state(sub, (S.paused,), "be resumed", "Pause it first with pause_subscription.")
    _awaiting_first_payment(sub, "be resumed by hand")
    await service.resume(ctx, sub, ctx.now)
    return await _view(ctx, sub)


async def _cancel_target(ctx: ToolContext, args: CancelSubscriptionInput, *, lock: bool) -> Subscription:
    sub = await service.load(ctx, args.subscription_id, lock=lock)
    if args.at_period_end and sub.status == S.incomplete:
        raise invalid_state(
            f"Subscription {sub.id} has not started (its first invoice is unpaid); there is no period to end.",
            current=sub.status,
            allowed=[S.active.value, S.cancelled.value],
            hint="Cancel it now (at_period_end false).",
            id=sub.id,
        )
    return sub


async def _preview_cancel(ctx: ToolContext, args: CancelSubscriptionInput) -> CancelPreview:
    sub = await _cancel_target(ctx, args, lock=False)
    view = await _view(ctx, sub)
    if sub.status == S.cancelled or (args.at_period_end and sub.cancel_at_period_end):
        summary = f"Subscription {sub.id} is already {'cancelled' if sub.status == S.cancelled else 'ending'}."
        return CancelPreview(
            summary=summary, nothing_to_do=True, subscription=view, ends_at=sub.ended_at, credits_forfeited=0
        )
    if args.at_period_end:
        ends = sub.current_period_end
        summary = (
            f"Cancel {view.plan_name} ({sub.id}) at its period end {ends}: access and credits stay until then, no "
            "renewal invoice follows."
        )
        return CancelPreview(summary=summary, subscription=view, ends_at=ends, credits_forfeited=0)
    lost = await credits.unused(ctx, sub.id) if sub.kind == PlanKind.pack else 0
    summary = f"Cancel {view.plan_name} ({sub.id}) now: access ends at once" + (
        f" and {lost} unused credit(s) are forfeited." if lost else "."
    )
    return CancelPreview(summary=summary, subscription=view, ends_at=ctx.now, credits_forfeited=lost)


@tool(
    domain=DOMAIN_NAME, title="Cancel subscription", hints="D I", scope="subscriptions:write",
    gate="confirm", preview=_preview_cancel,
    route="POST /v1/subscriptions/{subscription_id}/cancel",
)  # fmt: skip
async def cancel_subscription(ctx: ToolContext, args: CancelSubscriptionInput) -> CancelResult:
    """Cancel now (access ends; a pack's unused credits are forfeited) or at_period_end (access and credits stay
    until then; no renewal)."""
    sub = await _cancel_target(ctx, args, lock=True)
    if sub.status == S.cancelled:
        return await _cancelled(ctx, sub, 0)
    if args.at_period_end:
        if not sub.cancel_at_period_end:
            await ctx.db.update(
                Subscription,
                col(Subscription.id) == sub.id,
                values={"cancel_at_period_end": True, "cancelled_at": ctx.now, "pending_plan_id": None,
                        "updated_at": ctx.now},
            )  # fmt: skip
            ctx.record_change(subscription_id=sub.id, fields=["cancel_at_period_end"])
        return await _cancelled(ctx, sub, 0)
    return await _cancelled(ctx, sub, await service.cancel_now(ctx, sub, "requested"))


async def _cancelled(ctx: ToolContext, sub: Subscription, lost: int) -> CancelResult:
    return CancelResult(**(await _view(ctx, sub)).model_dump(), credits_forfeited=lost)


@tool(
    domain=DOMAIN_NAME,
    title="Change subscription plan",
    hints="W I",
    scope="subscriptions:write",
    route="POST /v1/subscriptions/{subscription_id}/change-plan",
)
async def change_subscription_plan(ctx: ToolContext, args: ChangeSubscriptionPlanInput) -> SubscriptionPublic:
    """Move a membership to another membership plan (same currency) from its next period."""
    sub = await service.load(ctx, args.subscription_id, lock=True)
    if sub.kind == PlanKind.pack:
        raise invalid_state(
            f"Subscription {sub.id} is a pack; packs do not renew.",
            current=sub.status,
            hint="Sell another pack with subscribe_member.",
            id=sub.id,
        )
    service.ensure_state(sub, (S.trialing, S.active, S.past_due, S.paused), "change plan", "Subscribe the member anew.")
    if sub.cancel_at_period_end:
        raise invalid_state(
            f"Subscription {sub.id} ends at its period end; there is no next period to change.",
            current=sub.status,
            hint="Subscribe the member to the new plan with subscribe_member.",
            id=sub.id,
        )
    plan = await service.load_plan(ctx, args.plan_id)
    if plan.kind != PlanKind.membership or plan.currency != sub.currency:
        raise validation_failed(
            f"Plan {plan.id} is a {plan.kind} in {plan.currency}; this subscription needs a membership in "
            f"{sub.currency}.",
            [FieldError(field="plan_id", message=f"a membership plan in {sub.currency}")],
        )
    pending = None if plan.id == sub.plan_id else plan.id
    if pending is not None:
        _refuse_archived(plan)
    if pending != sub.pending_plan_id:
        await ctx.db.update(
            Subscription, col(Subscription.id) == sub.id, values={"pending_plan_id": pending, "updated_at": ctx.now}
        )
        ctx.record_change(subscription_id=sub.id, fields=["pending_plan_id"])
    return await _view(ctx, sub)


@tool(
    domain=DOMAIN_NAME,
    title="Run subscription billing",
    hints="W I",
    scope="subscriptions:admin",
    route="POST /v1/subscriptions/billing-runs",
)
async def run_subscription_billing(ctx: ToolContext, args: RunBillingInput) -> BillingResult:
    """Do what is due up to now or an earlier moment: renewals (one invoice per period, at the plan's current
    price), trial ends, cancels at period end, resume dates, past due (unpaid after the due date), credit expiry.
    Runs hourly by itself; repeats never bill twice."""
    up_to = args.up_to or ctx.now
    counts = await service.run_billing(ctx, up_to)
    return BillingResult(up_to=up_to, **counts.__dict__)


async def _hourly_billing(ctx: ToolContext) -> None:
    await service.run_billing(ctx, ctx.now)


async def _member_money(ctx: ToolContext, member_id: str) -> dict[str, Any]:
    """The customer's live subscriptions (newest first) and the pack credits usable now, for get_member_profile."""
    live = await ctx.db.all(
        ctx.db.select(
            Subscription, col(Subscription.member_id) == member_id, col(Subscription.status).in_(LIVE)
        ).order_by(col(Subscription.id).desc())
    )
    names = await service.plan_names(ctx, {s.plan_id for s in live})
    left = await credits.credits_left(ctx, [s.id for s in live if s.kind == PlanKind.pack])
    return {
        "subscriptions": [
            {
                "id": s.id,
                "plan_id": s.plan_id,
                "plan_name": names.get(s.plan_id, ""),
                "status": s.status,
                "current_period_end": s.current_period_end,
                "credits_left": left.get(s.id, 0) if s.kind == PlanKind.pack else None,
            }
            for s in live
        ],
        "credits_left": sum(left.get(s.id, 0) for s in live if s.status == S.active),
    }


MEMBER_LINKS = [
    MemberLink("subscriptions", Subscription, "member_id", OnMerge.move, OnErase.keep, export=export_row),
    MemberLink("subscription_periods", SubscriptionPeriod, "member_id", OnMerge.move, OnErase.keep, export=export_row),
    MemberLink("credit_lots", CreditLot, "member_id", OnMerge.move, OnErase.keep, export=export_row),
    MemberLink("credit_entries", CreditEntry, "member_id", OnMerge.move, OnErase.keep, export=export_row),
]

DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[
        create_plan,
        list_plans,
        update_plan,
        archive_plan,
        subscribe_member,
        get_subscription,
        list_subscriptions,
        pause_subscription,
        resume_subscription,
        cancel_subscription,
        change_subscription_plan,
        run_subscription_billing,
    ],
    member_links=MEMBER_LINKS,
    events=EVENTS,
    subscribers={
        InvoicePaid: [service.on_invoice_paid],
        InvoiceVoided: [service.on_invoice_voided],
        MemberErased: [service.on_member_erased],
    },
    jobs=[Job("subscription_billing", timedelta(hours=1), _hourly_billing)],
    member_money=_member_money,
)
