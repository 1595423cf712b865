"""The loyalty domain's part of get_member_profile: points and tier."""

from __future__ import annotations

from typing import Any

from favmcp.domains.loyalty import ledger
from favmcp.domains.tiers import standing
from favmcp.domains.tiers.models import MembershipTier
from favmcp.registry.context import ToolContext


async def loyalty_profile(ctx: ToolContext, member_id: str) -> dict[str, Any]:
    """The points balance and the tier in effect (zero and none for a customer who never had points); read
    without making an account."""
    acct = await ledger.find_account(ctx, member_id)
    if acct is None:
        return {"loyalty": {"points": 0, "tier_id": None, "tier_name": None, "manual": False}}
    tier_id = standing.effective_tier_id(acct)
    tier = await ctx.db.get(MembershipTier, tier_id) if tier_id is not None else None
    return {
        "loyalty": {
            "points": acct.balance,
            "tier_id": tier_id,
            "tier_name": tier.name if tier is not None else None,
            "manual": acct.manual_tier_id is not None,
        }
    }
