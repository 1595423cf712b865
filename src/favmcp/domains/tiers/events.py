"""What happens to customers' tiers, for messaging and webhooks to react to."""

from __future__ import annotations

from favmcp.core.events import DomainEvent


class TierChanged(DomainEvent):
    name = "tier.changed"

    member_id: str
    previous_tier_id: str | None
    tier_id: str | None  # the tier in effect now (a manual one wins)
    manual: bool  # set by hand (enrol_membership)


EVENTS: list[type[DomainEvent]] = [TierChanged]
