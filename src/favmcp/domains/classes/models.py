"""Class sessions (one-off or in a weekly series) and their waitlists."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field

from favmcp.db.types import Table, enum_field, utc_field, workspace_fk


class SessionStatus(StrEnum):
    scheduled = "scheduled"
    cancelled = "cancelled"


class ClassSession(Table, table=True):
    """One occurrence of a class. `booked` counts the seats held (bookings pending, confirmed, checked in,
    completed or no-show); it moves only by conditional UPDATEs, so it never passes `capacity`."""

    __tablename__ = "class_sessions"
    __table_args__ = (
        Index("ix_class_sessions_workspace_keyset", "workspace_id", "id"),
        Index("ix_class_sessions_workspace_time", "workspace_id", "starts_at"),
        Index("ix_class_sessions_workspace_staff_time", "workspace_id", "staff_user_id", "starts_at"),
        CheckConstraint("ends_at > starts_at", name="ck_class_sessions_ends_after_start"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_class_sessions_booked_within_capacity"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    service_id: str = Field(foreign_key="services.id", max_length=40)
    staff_user_id: str = Field(foreign_key="users.id", max_length=40)
    series_id: str | None = Field(default=None, max_length=40)  # sessions scheduled together as a weekly series
    status: SessionStatus = enum_field(SessionStatus, SessionStatus.scheduled)
    starts_at: datetime = utc_field()
    ends_at: datetime = utc_field()
    # The instructor's time taken, the session widened by the service's buffers.
    blocked_from: datetime = utc_field()
    blocked_until: datetime = utc_field()
    capacity: int
    booked: int = 0
    created_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    cancelled_at: datetime | None = utc_field(nullable=True)
    cancel_reason: str | None = Field(default=None, max_length=300)


class WaitlistStatus(StrEnum):
    waiting = "waiting"
    promoted = "promoted"  # booked into a freed seat (booking_id)
    left = "left"  # leave_waitlist
    closed = "closed"  # the session was cancelled or started


class WaitlistEntry(Table, table=True):
    """A customer waiting for a seat; promoted in order of joining (ids sort by creation), once."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        Index("ix_waitlist_entries_workspace_session", "workspace_id", "class_session_id", "id"),
        Index(
            "uq_waitlist_entries_waiting",
            "workspace_id",
            "class_session_id",
            "member_id",
            unique=True,
            sqlite_where=text("status = 'waiting'"),
            postgresql_where=text("status = 'waiting'"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    class_session_id: str = Field(foreign_key="class_sessions.id", max_length=40)
    member_id: str = Field(foreign_key="members.id", max_length=40)
    status: WaitlistStatus = enum_field(WaitlistStatus, WaitlistStatus.waiting)
    booking_id: str | None = Field(default=None, max_length=40)
    # Why the last promotion passed over this entry (e.g. an overlapping booking); it keeps its place.
    skipped_reason: str | None = Field(default=None, max_length=300)
    created_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    promoted_at: datetime | None = utc_field(nullable=True)
    left_at: datetime | None = utc_field(nullable=True)
