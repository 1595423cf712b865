"""What happens to bookings, for other domains to react to (classes' waitlists, loyalty, messaging, webhooks)."""

from __future__ import annotations

from datetime import datetime

from favmcp.core.events import DomainEvent


class BookingEvent(DomainEvent):
    booking_id: str
    member_id: str
    service_id: str
    staff_user_id: str
    class_session_id: str | None = None
    starts_at: datetime


class BookingCreated(BookingEvent):
    name = "booking.created"

    status: str  # pending or confirmed


class BookingConfirmed(BookingEvent):
    name = "booking.confirmed"


class BookingDeclined(BookingEvent):
    name = "booking.declined"


class BookingRescheduled(BookingEvent):
    name = "booking.rescheduled"

    previous_starts_at: datetime
    previous_staff_user_id: str


class BookingCancelled(BookingEvent):
    name = "booking.cancelled"

    late: bool  # inside the cancellation window
    fee: int  # the late-cancel fee charged (0: none)
    currency: str


class BookingCheckedIn(BookingEvent):
    name = "booking.checked_in"


class BookingCompleted(BookingEvent):
    name = "booking.completed"

    unit_amount: int  # the booked price
    currency: str


class BookingNoShow(BookingEvent):
    name = "booking.no_show"

    fee: int
    currency: str


EVENTS: list[type[DomainEvent]] = [
    BookingCreated,
    BookingConfirmed,
    BookingDeclined,
    BookingRescheduled,
    BookingCancelled,
    BookingCheckedIn,
    BookingCompleted,
    BookingNoShow,
]
