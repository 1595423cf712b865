"""The booking lifecycle as data.

pending -> confirmed | declined | cancelled; confirmed -> checked_in | cancelled | no_show;
checked_in -> completed | no_show. completed, cancelled, declined and no_show are final.
The events carry the member and the service, so the code that makes each move emits them (the table's events
stay empty).
"""

from __future__ import annotations

from favmcp.core.lifecycle import Lifecycle
from favmcp.domains.bookings.models import BookingStatus

BOOKING_LIFECYCLE = Lifecycle(
    entity="booking",
    states=BookingStatus,
    transitions={
        BookingStatus.pending: {
            BookingStatus.confirmed: "confirm_booking",
            BookingStatus.declined: "confirm_booking",
            BookingStatus.cancelled: "cancel_booking",
        },
        BookingStatus.confirmed: {
            BookingStatus.checked_in: "check_in_booking",
            BookingStatus.cancelled: "cancel_booking",
            BookingStatus.no_show: "mark_no_show",
        },
        BookingStatus.checked_in: {
            BookingStatus.completed: "complete_booking",
            BookingStatus.no_show: "mark_no_show",
        },
    },
    events={},
)
