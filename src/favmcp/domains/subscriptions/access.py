"""Whether a customer holds a membership that opens member-only services (the contract bookings use).

Access is an active or trialing membership (one cancelled at period end stays active, so it keeps access to the
period's end). Paused, past-due, incomplete and cancelled memberships do not open member-only services.
"""

from __future__ import annotations

from sqlmodel import col

from favmcp.core.errors import FavError, invalid_state
from favmcp.domains.subscriptions.models import PlanKind, Subscription, SubscriptionStatus
from favmcp.registry.context import ToolContext

GIVES_ACCESS = (SubscriptionStatus.active, SubscriptionStatus.trialing)


async def ensure_membership(ctx: ToolContext, member_id: str, service_name: str) -> None:
    """Refuse (`invalid_state`, naming why) unless the customer has an active or trialing membership."""
    states = {
        SubscriptionStatus(row.status)
        for row in await ctx.db.unfiltered.all(
            ctx.db.unfiltered.select(
                Subscription, col(Subscription.member_id) == member_id, col(Subscription.kind) == PlanKind.membership
            )
        )
    }
    if states & set(GIVES_ACCESS):
        return
    raise _no_access(member_id, service_name, states)


def _no_access(member_id: str, service_name: str, states: set[SubscriptionStatus]) -> FavError:
    if not states:
        why = "has no membership"
    else:
        why = "has a membership that is " + " / ".join(sorted(s.value.replace("_", " ") for s in states))
    return invalid_state(
        f"{service_name} is for members only, and customer {member_id} {why}; paused, past-due and cancelled "
        "memberships do not book member-only services.",
        hint="Check get_member_profile; resume_subscription or create_subscription for a membership.",
        current=",".join(sorted(s.value for s in states)) or "none",
        reason="membership_required",
    )
