"""Bookings, the workspace's booking rules and the staff calendar feeds."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field

from favmcp.db.types import Table, amount_field, enum_field, utc_field, workspace_fk


class BookingStatus(StrEnum):
    pending = "pending"  # waiting for the business to confirm (requires-confirmation mode)
    confirmed = "confirmed"
    declined = "declined"
    cancelled = "cancelled"
    checked_in = "checked_in"
    completed = "completed"
    no_show = "no_show"


# States in which a booking holds its time (and its class seat).
ACTIVE = (BookingStatus.pending, BookingStatus.confirmed, BookingStatus.checked_in)


class BookingPayment(StrEnum):
    none = "none"  # paid outside favmcp (at the desk, on an invoice made by hand)
    credit = "credit"  # one class-pack credit, reserved when booked


class Booking(Table, table=True):
    """A customer's appointment with a staff member, or their seat in a class session.

    Price, duration and buffers are copied from the service when booked. `blocked_from`/`blocked_until` is the
    time the booking takes from its staff member: its time widened by the buffers. Two active appointments of one
    staff member never block overlapping time (on Postgres also an exclusion constraint, see the migration)."""

    __tablename__ = "bookings"
    __table_args__ = (
        Index("ix_bookings_workspace_keyset", "workspace_id", "id"),
        Index("ix_bookings_workspace_staff_time", "workspace_id", "staff_user_id", "blocked_from"),
        Index("ix_bookings_workspace_member_time", "workspace_id", "member_id", "starts_at"),
        Index("ix_bookings_workspace_time", "workspace_id", "starts_at"),
        Index("ix_bookings_workspace_session", "workspace_id", "class_session_id"),
        CheckConstraint("ends_at > starts_at", name="ck_bookings_ends_after_start"),
        CheckConstraint("blocked_from <= starts_at AND blocked_until >= ends_at", name="ck_bookings_blocked_span"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    member_id: str = Field(foreign_key="members.id", max_length=40)
    service_id: str = Field(foreign_key="services.id", max_length=40)
    # The staff member delivering it (for a class seat: the session's instructor).
    staff_user_id: str = Field(foreign_key="users.id", max_length=40)
    class_session_id: str | None = Field(default=None, foreign_key="class_sessions.id", max_length=40)
    status: BookingStatus = enum_field(BookingStatus)
    starts_at: datetime = utc_field()
    ends_at: datetime = utc_field()
    blocked_from: datetime = utc_field()
    blocked_until: datetime = utc_field()
    unit_amount: int = amount_field()  # the booked price
    currency: str = Field(max_length=3)
    tax_rate: str = Field(default="0", max_length=12)
    payment: BookingPayment = enum_field(BookingPayment, BookingPayment.none)
    credit_reservation_id: str | None = Field(default=None, max_length=40)
    # The draft invoice a late-cancel or no-show fee was put on (set once, by the transition that charged it).
    fee_invoice_id: str | None = Field(default=None, max_length=40)
    fee_amount: int | None = amount_field(nullable=True)
    # Customer-provided text: untrusted; cleared when the customer is erased.
    customer_note: str | None = Field(default=None, max_length=500)
    cancel_reason: str | None = Field(default=None, max_length=300)
    late_cancel: bool = False
    created_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    confirmed_at: datetime | None = utc_field(nullable=True)
    cancelled_at: datetime | None = utc_field(nullable=True)
    checked_in_at: datetime | None = utc_field(nullable=True)
    completed_at: datetime | None = utc_field(nullable=True)
    no_show_at: datetime | None = utc_field(nullable=True)
    reschedule_count: int = 0


class BookingSettings(Table, table=True):
    """The workspace's booking rules (one row, made with the defaults on first use)."""

    __tablename__ = "booking_settings"
    __table_args__ = (
        CheckConstraint("late_cancel_fee >= 0 AND no_show_fee >= 0", name="ck_booking_settings_fees"),
        CheckConstraint("slot_step_minutes > 0", name="ck_booking_settings_step"),
    )

    workspace_id: str = Field(foreign_key="workspaces.id", primary_key=True, max_length=40, ondelete="CASCADE")
    min_notice_minutes: int = 60
    max_advance_days: int = 90
    slot_step_minutes: int = 15
    requires_confirmation: bool = False
    cancellation_window_hours: int = 24
    late_cancel_fee: int = amount_field(default=0)
    no_show_fee: int = amount_field(default=0)
    fee_currency: str | None = Field(default=None, max_length=3)  # None: the workspace currency
    fee_tax_rate: str = Field(default="0", max_length=12)
    updated_at: datetime = utc_field()


class CalendarFeed(Table, table=True):
    """A staff member's private iCalendar feed. Its URL carries an HMAC of (workspace, user, generation) under the
    server secret, so it can be shown again to those allowed and nothing secret is stored; rotating bumps the
    generation and the old URL stops working."""

    __tablename__ = "calendar_feeds"

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=40, ondelete="CASCADE")
    workspace_id: str = workspace_fk()
    generation: int = 1
    rotated_at: datetime = utc_field()
