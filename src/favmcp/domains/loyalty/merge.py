"""A merge of two customers: the ledger, the lots and the vouchers move with the declared links; here the
duplicate's balance joins the survivor's and the survivor keeps the higher tier of the two (automatic and manual
each), then is promoted if the combined points reach a higher one."""

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

    def higher(a: str | None, b: str | None) -> str | None:
        return max((t for t in (a, b) if t is not None), key=lambda t: thresholds.get(t, -1), default=None)

    survivor.balance += duplicate.balance
    survivor.tier_id = higher(survivor.tier_id, duplicate.tier_id)
    survivor.manual_tier_id = higher(survivor.manual_tier_id, duplicate.manual_tier_id)
    survivor.updated_at = ctx.now
    await ctx.db.unfiltered.delete(LoyaltyAccount, col(LoyaltyAccount.id) == duplicate.id)  # folded in: nothing left
    await ctx.db.unfiltered.flush()
    merged = standing.effective_tier_id(survivor)
    if merged != before:
        manual = merged == survivor.manual_tier_id
        ctx.emit(TierChanged(member_id=survivor.member_id, previous_tier_id=before, tier_id=merged, manual=manual))
    await standing.promote(ctx, survivor, await load_program(ctx))
