"""Where a customer stands: the tiers' ladder, the customer's standing on the program's basis, the tier it earns.

The contract the loyalty ledger calls: `promote` after every earn (a tier only goes up there), `evaluate` from
the daily job (up or down), `multiplier` for the points an earn gives. A manual tier (enrol_membership) wins
over the automatic one until it is cleared; the automatic one is kept up to date underneath it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import ColumnElement, func
from sqlmodel import col

from favmcp.domains.loyalty.models import EntryKind, LoyaltyAccount, LoyaltyProgram, PointsEntry, TierBasis
from favmcp.domains.members.models import Member, MemberStatus
from favmcp.domains.tiers.events import TierChanged
from favmcp.domains.tiers.models import MembershipTier
from favmcp.registry.context import ToolContext

# "Points earned in a rolling 12 months": the earns (less the reversals of refunds) of the last 365 days.
WINDOW = timedelta(days=365)


async def ladder(ctx: ToolContext) -> list[MembershipTier]:
    """The workspace's tiers, lowest threshold first."""
    return await ctx.db.unfiltered.all(ctx.db.unfiltered.select(MembershipTier).order_by(col(MembershipTier.threshold)))


def _earned_in_window(ctx: ToolContext) -> list[ColumnElement[bool]]:
    """The ledger entries that count as points earned in the window: earns, less the reversals of refunds (a
    returned voucher is a positive reversal: not earned)."""
    return [
        col(PointsEntry.kind).in_([EntryKind.earn, EntryKind.reversal]),
        col(PointsEntry.created_at) > ctx.now - WINDOW,
        (col(PointsEntry.kind) == EntryKind.earn) | (col(PointsEntry.points) < 0),
    ]


async def standing(ctx: ToolContext, member_id: str, program: LoyaltyProgram) -> int:
    """The figure tiers compare with their thresholds: points earned in the window, or lifetime spend."""
    db = ctx.db.unfiltered
    if program.tier_basis == TierBasis.lifetime_spend:
        member = await db.get(Member, member_id)
        return member.lifetime_spend if member is not None else 0
    stmt = db.select_columns(PointsEntry, func.coalesce(func.sum(col(PointsEntry.points)), 0)).where(
        col(PointsEntry.member_id) == member_id, *_earned_in_window(ctx)
    )
    rows = await db.rows(stmt)
    return int(rows[0][0])


async def standings(ctx: ToolContext, program: LoyaltyProgram) -> dict[str, int]:
    """`standing` of every active customer with an account (and, on the spend basis, every active customer who
    has spent), in two queries at most: what the daily evaluation compares before it locks anyone. Merged and
    erased customers are left as they are."""
    db = ctx.db.unfiltered
    active = col(Member.status) == MemberStatus.active
    if program.tier_basis == TierBasis.lifetime_spend:
        has_account = db.exists(LoyaltyAccount, col(LoyaltyAccount.member_id) == col(Member.id))
        stmt = db.select_columns(Member, col(Member.id), col(Member.lifetime_spend)).where(
            active, has_account | (col(Member.lifetime_spend) > 0)
        )
        return {m: int(spend) for m, spend in await db.rows(stmt)}
    earned = (
        db.select_columns(PointsEntry, col(PointsEntry.member_id), func.sum(col(PointsEntry.points)))
        .where(*_earned_in_window(ctx))
        .group_by(col(PointsEntry.member_id))
    )
    figures = {m: int(total) for m, total in await db.rows(earned)}
    accounts = db.select_columns(LoyaltyAccount, col(LoyaltyAccount.member_id)).where(
        db.exists(Member, col(Member.id) == col(LoyaltyAccount.member_id), active)
    )
    return {m: figures.get(m, 0) for (m,) in await db.rows(accounts)}


def qualifying(tiers: list[MembershipTier], figure: int) -> MembershipTier | None:
    """The highest tier whose threshold the figure reaches (reaching it exactly qualifies)."""
    reached = [t for t in tiers if figure >= t.threshold]
    return reached[-1] if reached else None


def effective_tier_id(acct: LoyaltyAccount) -> str | None:
    return acct.manual_tier_id or acct.tier_id


def in_effect() -> ColumnElement[str | None]:
    """effective_tier_id as a column expression over LoyaltyAccount (filters and counts)."""
    return func.coalesce(col(LoyaltyAccount.manual_tier_id), col(LoyaltyAccount.tier_id))


async def _set_automatic(ctx: ToolContext, acct: LoyaltyAccount, tier: MembershipTier | None) -> None:
    new_id = tier.id if tier is not None else None
    if new_id == acct.tier_id:
        return
    before = effective_tier_id(acct)
    acct.tier_id = new_id
    acct.updated_at = ctx.now
    if acct.manual_tier_id is None:
        acct.tier_since = ctx.now
        ctx.emit(TierChanged(member_id=acct.member_id, previous_tier_id=before, tier_id=new_id, manual=False))
    await ctx.db.unfiltered.flush()


async def promote(ctx: ToolContext, acct: LoyaltyAccount, program: LoyaltyProgram) -> None:
    """After an earn (or a payment): move the automatic tier up if the standing now reaches a higher one; never
    down (that is the daily evaluation's). `acct` must be locked."""
    tiers = await ladder(ctx)
    if not tiers:
        return
    reached = qualifying(tiers, await standing(ctx, acct.member_id, program))
    current = next((t for t in tiers if t.id == acct.tier_id), None)
    if reached is not None and (current is None or reached.threshold > current.threshold):
        await _set_automatic(ctx, acct, reached)


async def evaluate(ctx: ToolContext, acct: LoyaltyAccount, program: LoyaltyProgram) -> None:
    """Set the automatic tier to the one the standing earns now, up or down. `acct` must be locked."""
    await _set_automatic(ctx, acct, qualifying(await ladder(ctx), await standing(ctx, acct.member_id, program)))


async def multiplier(ctx: ToolContext, acct: LoyaltyAccount) -> Fraction:
    """The earn multiplier of the tier in effect (1 without one)."""
    tier_id = effective_tier_id(acct)
    if tier_id is None:
        return Fraction(1)
    tier = await ctx.db.unfiltered.get(MembershipTier, tier_id)
    return Fraction(Decimal(tier.earn_multiplier)) if tier is not None else Fraction(1)
