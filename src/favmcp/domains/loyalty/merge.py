"""A merge of two customers: the ledger, the lots and the vouchers move with the declared links; here the
duplicate's balance joins the survivor's and the survivor keeps the higher tier of the two in effect (manual if that
one was set by hand) and the higher automatic one, then is promoted if the combined points reach a higher one."""

from __future__ import annotations

from sqlmodel import col

from favmcp.domains.loyalty import ledger
from favmcp.domains.loyalty.models import LoyaltyAccount
from favmcp.domains.loyalty.program import load_program
from favmcp.domains.members.events import MemberMerged
from favmcp.domains.tiers import standing
from favmcp.domains.tiers.events import TierChanged
from favmcp.registry.context import ToolContext


async def on_member_merged(ctx: ToolContext, event: MemberMerged) -> None:
    first, second = sorted([event.survivor_id, event.duplicate_id])  # accounts locked in id order: no deadlock
    accounts = {first: await ledger.account(ctx, first)}
    accounts[second] = await ledger.account(ctx, second)
    survivor, duplicate = accounts[event.survivor_id], accounts[event.duplicate_id]
    before = standing.effective_tier_id(survivor)
    thresholds = {t.id: t.threshold for t in await standing.ladder(ctx)}

    def rank(tier_id: str | None) -> int:
        return -2 if tier_id is None else thresholds.get(tier_id, -1)

    # The tier in effect afterwards is the higher of the two in effect before (a manual one stays manual; a lower
    # manual tier of one never pulls down the other's higher tier); the automatic tier is the higher of the two.
    target, manual = max(
        ((standing.effective_tier_id(a), a.manual_tier_id is not None) for a in (survivor, duplicate)),
        key=lambda c: (rank(c[0]), c[1]),
    )
    survivor.balance += duplicate.balance
    survivor.tier_id = max(survivor.tier_id, duplicate.tier_id, key=rank)
    survivor.manual_tier_id = target if manual else None
    survivor.updated_at = ctx.now
    merged = standing.effective_tier_id(survivor)
    if merged != before:
        survivor.tier_since = ctx.now
    await ctx.db.unfiltered.delete(LoyaltyAccount, col(LoyaltyAccount.id) == duplicate.id)  # folded in: nothing left
    await ctx.db.unfiltered.flush()
    if merged != before:
        ctx.emit(TierChanged(member_id=survivor.member_id, previous_tier_id=before, tier_id=merged, manual=manual))
    await standing.promote(ctx, survivor, await load_program(ctx))
