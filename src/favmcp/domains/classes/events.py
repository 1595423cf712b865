"""What happens to class sessions and waitlists, for other domains to react to (messaging, webhooks)."""

from __future__ import annotations

from datetime import datetime

from favmcp.core.events import DomainEvent


class ClassSessionScheduled(DomainEvent):
    name = "class_session.scheduled"

    class_session_id: str
    service_id: str
    staff_user_id: str
    series_id: str | None
    starts_at: datetime


class ClassSessionCancelled(DomainEvent):
    name = "class_session.cancelled"

    class_session_id: str
    bookings_cancelled: int


class WaitlistPromoted(DomainEvent):
    name = "waitlist.promoted"

    entry_id: str
    class_session_id: str
    member_id: str
    booking_id: str


EVENTS: list[type[DomainEvent]] = [ClassSessionScheduled, ClassSessionCancelled, WaitlistPromoted]
