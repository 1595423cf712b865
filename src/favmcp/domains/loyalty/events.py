"""What happens to points, rewards and tiers, for messaging and webhooks to react to."""

from __future__ import annotations

from favmcp.core.events import DomainEvent


class PointsEvent(DomainEvent):
    member_id: str
    entry_id: str
    points: int  # signed, as in the ledger
    balance: int  # after the entry


class PointsEarned(PointsEvent):
    name = "points.earned"

    source: str | None


class PointsRedeemed(PointsEvent):
    name = "points.redeemed"


class PointsAdjusted(PointsEvent):
    name = "points.adjusted"


class PointsExpired(PointsEvent):
    name = "points.expired"

    lot_id: str


class PointsReversed(PointsEvent):
    name = "points.reversed"

    source: str
    shortfall: int


class RewardRedeemed(DomainEvent):
    name = "reward.redeemed"

    member_id: str
    reward_id: str
    voucher_id: str
    points: int


class VoucherWithdrawn(DomainEvent):
    name = "voucher.withdrawn"

    member_id: str
    reward_id: str
    voucher_id: str
    points: int  # returned to the customer


EVENTS: list[type[DomainEvent]] = [
    PointsEarned,
    PointsRedeemed,
    PointsAdjusted,
    PointsExpired,
    PointsReversed,
    RewardRedeemed,
    VoucherWithdrawn,
]
