"""Tiers: membership levels reached by points earned in 12 months or by lifetime spend, or set by hand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.core.errors import conflict, not_found
from favmcp.core.ids import new_id
from favmcp.domains.loyalty import ledger
from favmcp.domains.loyalty.models import LoyaltyAccount
from favmcp.domains.loyalty.program import load_program
from favmcp.domains.members import service as members
from favmcp.domains.members.models import Member, MemberStatus
from favmcp.domains.tiers import standing
from favmcp.domains.tiers.events import EVENTS, TierChanged
from favmcp.domains.tiers.models import MembershipTier
from favmcp.domains.tiers.schemas import (
    CreateTierInput,
    EnrolInput,
    ListTiersInput,
    MemberTier,
    TierLadder,
    TierPublic,
    UpdateTierInput,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain, Job
from favmcp.registry.spec import tool

DOMAIN_NAME = "tiers"
FIND = "See the tiers with list_membership_tiers."


async def _customers(ctx: ToolContext) -> dict[str, int]:
    """Active customers the caller can see, per tier in effect."""
    tier = standing.in_effect()
    stmt = (
        ctx.db.select_columns(LoyaltyAccount, tier, func.count())
        .where(
            tier.is_not(None),
            ctx.db.exists(
                Member, col(Member.id) == col(LoyaltyAccount.member_id), col(Member.status) == MemberStatus.active
            ),
        )
        .group_by(tier)
    )
    return {t: int(n) for t, n in await ctx.db.rows(stmt)}


async def _public(ctx: ToolContext, tier: MembershipTier) -> TierPublic:
    return TierPublic.model_validate({**tier.model_dump(), "customers": (await _customers(ctx)).get(tier.id, 0)})


async def _ensure_free(ctx: ToolContext, name: str | None, threshold: int | None, but: str | None = None) -> None:
    """Refuses a name or a threshold another tier of the workspace has (a conflict naming that tier)."""
    for field, value in (("name", name), ("threshold", threshold)):
        if value is None:
            continue
        stmt = ctx.db.select(MembershipTier, getattr(MembershipTier, field) == value)
        if but is not None:
            stmt = stmt.where(col(MembershipTier.id) != but)
        existing = await ctx.db.first(stmt)
        if existing is not None:
            raise conflict(
                f"The tier {existing.name} ({existing.id}) already has that {field}.",
                hint="Choose another, or update_membership_tier the existing one.",
                details={"existing_tier_id": existing.id, "field": field},
            )


async def _write(ctx: ToolContext, tier: MembershipTier, changes: dict[str, Any]) -> None:
    """Add a new tier or apply `changes` to a loaded one, in a savepoint (checked with _ensure_free first: any
    query flushes what is pending, so nothing is changed before); a concurrent twin that won the unique index
    becomes a conflict naming it."""
    tier_id, new = tier.id, not changes
    unique = changes or {"name": tier.name, "threshold": tier.threshold}
    try:
        async with ctx.db.savepoint():
            if new:
                ctx.db.add(tier)
            for name, value in changes.items():
                setattr(tier, name, value)
            await ctx.db.flush()
    except IntegrityError:
        await _ensure_free(ctx, unique.get("name"), unique.get("threshold"), but=tier_id)
        raise


@tool(domain=DOMAIN_NAME, title="List membership tiers", hints="R I", scope="loyalty:read", route="GET /v1/tiers")
async def list_membership_tiers(ctx: ToolContext, args: ListTiersInput) -> TierLadder:
    """The tiers, lowest threshold first, with their benefits and how many customers are in each now."""
    counts = await _customers(ctx)
    items = [
        TierPublic.model_validate({**t.model_dump(), "customers": counts.get(t.id, 0)})
        for t in await standing.ladder(ctx)
    ]
    basis = (await load_program(ctx)).tier_basis
    return TierLadder(basis=basis, currency=(await ctx.db.workspace()).currency, items=items)


@tool(domain=DOMAIN_NAME, title="Create membership tier", hints="W", scope="loyalty:admin", route="POST /v1/tiers")
async def create_membership_tier(ctx: ToolContext, args: CreateTierInput) -> TierPublic:
    """Create a tier reached at `threshold`: points earned in 12 months, or lifetime spend in minor units of the
    workspace currency (the program's tier_basis). Name and threshold are unique."""
    tier = MembershipTier(
        id=new_id("tie"),
        workspace_id=ctx.workspace_id,
        name=args.name,
        threshold=args.threshold,
        earn_multiplier=args.earn_multiplier,
        discount_percent=None if args.discount_percent is None else str(args.discount_percent),
        benefits=args.benefits,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    await _ensure_free(ctx, tier.name, tier.threshold)
    await _write(ctx, tier, {})
    ctx.record_change(tier_id=tier.id)
    return await _public(ctx, tier)


@tool(
    domain=DOMAIN_NAME,
    title="Update membership tier",
    hints="W I",
    scope="loyalty:admin",
    route="PATCH /v1/tiers/{tier_id}",
)
async def update_membership_tier(ctx: ToolContext, args: UpdateTierInput) -> TierPublic:
    """Change a tier; fields left out stay, null clears discount_percent or benefits. A new threshold re-ranks
    customers at the daily evaluation (up also on their next earn)."""
    tier = await ctx.db.get(MembershipTier, args.tier_id, lock=True)
    if tier is None:
        raise not_found("tier", args.tier_id, hint=FIND)
    given = args.model_dump(exclude_unset=True, exclude={"tier_id", "idempotency_key"})
    if given.get("discount_percent") is not None:
        given["discount_percent"] = str(args.discount_percent)
    changes = {k: v for k, v in given.items() if getattr(tier, k) != v}
    if changes:
        await _ensure_free(ctx, changes.get("name"), changes.get("threshold"), but=tier.id)
        await _write(ctx, tier, {**changes, "updated_at": ctx.now})
        ctx.record_change(tier_id=tier.id, fields=sorted(changes))
    return await _public(ctx, tier)


@tool(
    domain=DOMAIN_NAME,
    title="Enrol membership",
    hints="W I",
    scope="loyalty:write",
    route="PUT /v1/members/{member_id}/tier",
)
async def enrol_membership(ctx: ToolContext, args: EnrolInput) -> MemberTier:
    """Set a customer's tier by hand: it wins over the automatic tier until cleared with tier_id null, which
    re-evaluates the automatic one at once (up or down)."""
    member = await members.load_for_write(ctx, args.member_id)  # the member row first, as merge and payments do
    tier = None
    if args.tier_id is not None:
        tier = await ctx.db.get(MembershipTier, args.tier_id)
        if tier is None:
            raise not_found("tier", args.tier_id, hint=FIND)
    acct = await ledger.account(ctx, member.id)
    before = standing.effective_tier_id(acct)
    if tier is None and acct.manual_tier_id is not None:
        # Brought up to date while the manual tier still holds (no event there); the one change is told below.
        await standing.evaluate(ctx, acct, await load_program(ctx))
    new_manual = tier.id if tier is not None else None
    if acct.manual_tier_id != new_manual:
        acct.manual_tier_id = new_manual
        acct.updated_at = ctx.now
        ctx.record_change(member_id=member.id, manual_tier_id=new_manual)
    after = standing.effective_tier_id(acct)
    if after != before:
        acct.tier_since = ctx.now
        ctx.emit(TierChanged(member_id=member.id, previous_tier_id=before, tier_id=after, manual=True))
    await ctx.db.unfiltered.flush()
    name = tier.name if tier is not None else await _name(ctx, after)
    return MemberTier(
        member_id=member.id,
        tier_id=after,
        tier_name=name,
        manual=acct.manual_tier_id is not None,
        automatic_tier_id=acct.tier_id,
    )


async def _name(ctx: ToolContext, tier_id: str | None) -> str | None:
    tier = await ctx.db.unfiltered.get(MembershipTier, tier_id) if tier_id is not None else None
    return tier.name if tier is not None else None


async def evaluate_all(ctx: ToolContext) -> int:
    """Every customer's automatic tier set to what their standing earns now, up or down (points leave the
    12-month window, refunds lower spend, thresholds change). Only the customers whose tier would change are
    locked (their account, one at a time, in member order) and re-evaluated under the lock. Returns how many
    changed."""
    program = await load_program(ctx)
    tiers = await standing.ladder(ctx)
    db = ctx.db.unfiltered
    accounts = db.select_columns(LoyaltyAccount, col(LoyaltyAccount.member_id), col(LoyaltyAccount.tier_id))
    current: dict[str, str | None] = dict(await db.rows(accounts))
    changed = 0
    for member_id, figure in sorted((await standing.standings(ctx, program)).items()):
        reached = standing.qualifying(tiers, figure)
        if (reached.id if reached is not None else None) == current.get(member_id):
            continue
        if member_id in current:
            # An account read above: locked as it is now, or skipped when a merge folded it away meanwhile.
            acct = await db.first(
                db.select(LoyaltyAccount, col(LoyaltyAccount.member_id) == member_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if acct is None:
                continue
        else:
            acct = await ledger.account(ctx, member_id)  # a customer who spent before loyalty existed
        was = acct.tier_id
        await standing.evaluate(ctx, acct, program)
        changed += acct.tier_id != was
    if changed:
        ctx.record_change(tiers_changed=changed)
    return changed


async def _daily(ctx: ToolContext) -> None:
    await evaluate_all(ctx)


DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[list_membership_tiers, create_membership_tier, update_membership_tier, enrol_membership],
    events=EVENTS,
    jobs=[Job("tier_evaluation", timedelta(days=1), _daily)],
)
