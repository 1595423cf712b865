"""Loyalty: the program, the points ledger (earn, redeem, adjust, expire), rewards and their vouchers."""

from __future__ import annotations

from datetime import timedelta

from favmcp.core.links import MemberLink, OnErase, OnMerge, export_row
from favmcp.domains.bookings.events import BookingCompleted
from favmcp.domains.loyalty import earning, merge, points, profile, rewards
from favmcp.domains.loyalty.events import EVENTS
from favmcp.domains.loyalty.models import LoyaltyAccount, PointsEntry, PointsLot, Voucher
from favmcp.domains.members.events import MemberMerged
from favmcp.domains.orders.events import OrderPaid
from favmcp.domains.payments.events import PaymentRefunded, PaymentSucceeded
from favmcp.registry.domain import Domain, Job

DOMAIN_NAME = "loyalty"


# The account is not moved: the merge subscriber (loyalty.merge) folds the duplicate's balance and tier into the
# survivor's account and removes the duplicate's. The ledger, the lots and the vouchers move. None of them holds
# personal data: an erase keeps them.
MEMBER_LINKS = [
    MemberLink("loyalty_account", LoyaltyAccount, "member_id", OnMerge.keep, OnErase.keep, export=export_row),
    MemberLink("points_entries", PointsEntry, "member_id", OnMerge.move, OnErase.keep, export=export_row),
    MemberLink("points_lots", PointsLot, "member_id", OnMerge.move, OnErase.keep, export=export_row),
    MemberLink("vouchers", Voucher, "member_id", OnMerge.move, OnErase.keep, export=export_row),
]

DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[*points.TOOLS, *rewards.TOOLS],
    member_links=MEMBER_LINKS,
    events=EVENTS,
    subscribers={
        BookingCompleted: [earning.on_booking_completed],
        PaymentSucceeded: [earning.on_payment_succeeded],
        PaymentRefunded: [earning.on_payment_refunded],
        OrderPaid: [earning.on_order_paid],
        MemberMerged: [merge.on_member_merged],
    },
    member_profile=profile.loyalty_profile,
    jobs=[Job("points_expiry", timedelta(hours=1), points.hourly_expiry)],
)
