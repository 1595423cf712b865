"""Inputs and answers of the classes tools."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import CalendarDate, UtcDateTime
from favmcp.domains.bookings.models import BookingStatus
from favmcp.domains.bookings.schemas import ServiceId, SessionId, StaffId
from favmcp.domains.classes.models import SessionStatus
from favmcp.domains.members.schemas import MemberId
from favmcp.registry.spec import ConfirmInput, Preview, ToolInput, WriteInput

EntryId = Annotated[str, Field(min_length=1, max_length=40, description="A waitlist entry id (wle_...).")]
MAX_WEEKS = 52


class Weekday(StrEnum):
    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"
    sun = "sun"

    @property
    def number(self) -> int:
        return list(Weekday).index(self)


class WeeklySeries(Schema):
    first_date: CalendarDate = Field(description="Local date (workspace timezone).")
    local_time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Local HH:MM.")
    weekdays: list[Weekday] = Field(min_length=1, max_length=7)
    weeks: int | None = Field(default=None, ge=1, le=MAX_WEEKS, description="Or until.")
    until: CalendarDate | None = Field(default=None, description="Last local date, inclusive; or weeks.")

    @model_validator(mode="after")
    def _end(self) -> WeeklySeries:
        if (self.weeks is None) == (self.until is None):
            raise ValueError("give exactly one of weeks or until")
        if self.until is not None:
            if self.until < self.first_date:
                raise ValueError("until must not be before first_date")
            if self.until - self.first_date >= timedelta(weeks=MAX_WEEKS):
                raise ValueError(f"a series spans at most {MAX_WEEKS} weeks")
        return self


class ScheduleClassSessionInput(WriteInput):
    service_id: ServiceId
    staff_id: StaffId = Field(description="Instructor; must deliver the service.")
    capacity: int | None = Field(default=None, ge=1, le=1000, description="Default: the service's.")
    starts_at: UtcDateTime | None = Field(default=None, description="One session; or series.")
    series: WeeklySeries | None = Field(default=None, description="Weekly; or starts_at.")

    @model_validator(mode="after")
    def _one(self) -> ScheduleClassSessionInput:
        if (self.starts_at is None) == (self.series is None):
            raise ValueError("give exactly one of starts_at or series")
        return self


class ClassSessionPublic(Schema):
    id: str
    service_id: str
    staff_user_id: str
    series_id: str | None
    status: SessionStatus
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int = Field(description="Seats held (pending, confirmed, checked in, completed, no-show).")
    seats_left: int
    waiting: int = Field(description="Customers on the waitlist.")
    cancelled_at: datetime | None


class ScheduledSessions(Schema):
    series_id: str | None
    sessions: list[ClassSessionPublic] = Field(description="Earliest first.")


class ListClassSessionsInput(ToolInput, PageParams):
    starts_from: UtcDateTime | None = Field(default=None, description="Starting at or after.")
    starts_to: UtcDateTime | None = Field(default=None, description="Starting before (exclusive).")
    service_id: ServiceId | None = None
    staff_id: StaffId | None = None
    status: SessionStatus | None = None

    @model_validator(mode="after")
    def _range(self) -> ListClassSessionsInput:
        if self.starts_from and self.starts_to and self.starts_to <= self.starts_from:
            raise ValueError("starts_to must be after starts_from")
        return self


class ClassSessionPage(Page[ClassSessionPublic]):
    pass


class SessionInput(ToolInput):
    class_session_id: SessionId


class RosterAttendee(Schema):
    booking_id: str
    member_id: str
    name: str
    status: BookingStatus


class RosterWaiting(Schema):
    entry_id: str
    position: int = Field(description="1 is promoted first.")
    member_id: str
    name: str
    joined_at: datetime
    skipped_reason: str | None = Field(description="Why the last promotion passed this entry over.")


class ClassRoster(Schema):
    session: ClassSessionPublic
    attendees: list[RosterAttendee] = Field(description="Bookings of the session, oldest first.")
    waitlist: list[RosterWaiting] = Field(description="Waiting customers in promotion order.")


class CancelClassSessionInput(ConfirmInput):
    class_session_id: SessionId
    reason: str | None = Field(default=None, max_length=300, description="Given to each cancelled booking.")


class CancelSessionPreview(Preview):
    class_session_id: str
    bookings_cancelled: int = Field(description="Active bookings that will be cancelled without fee.")
    credits_returned: int = Field(description="Class-pack credits given back.")
    waiting_closed: int = Field(description="Waitlist entries closed.")


class CancelledSession(Schema):
    session: ClassSessionPublic
    bookings_cancelled: int = Field(description="Bookings of the session cancelled with it.")


class JoinWaitlistInput(WriteInput):
    member_id: MemberId
    class_session_id: SessionId


class LeaveWaitlistInput(WriteInput):
    entry_id: EntryId | None = Field(default=None, description="Or member_id + class_session_id.")
    member_id: MemberId | None = None
    class_session_id: SessionId | None = None

    @model_validator(mode="after")
    def _which(self) -> LeaveWaitlistInput:
        by_pair = self.member_id is not None and self.class_session_id is not None
        if (self.entry_id is not None) == by_pair or (not by_pair and (self.member_id or self.class_session_id)):
            raise ValueError("give entry_id, or member_id with class_session_id")
        return self


class WaitlistPlace(Schema):
    entry_id: str | None = Field(description="None when the customer already holds a seat (booking_id).")
    class_session_id: str
    member_id: str
    status: Literal["waiting", "promoted", "left", "closed", "booked"]
    position: int | None = Field(description="Place in line while waiting; 1 is next.")
    booking_id: str | None = Field(description="The seat: booked directly, or by promotion.")
    joined_at: datetime | None
    skipped_reason: str | None
