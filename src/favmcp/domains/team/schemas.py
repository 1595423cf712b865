from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from favmcp.auth.models import Role, UserStatus
from favmcp.core.contact import normalise_email
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import CalendarDate, UtcDateTime
from favmcp.domains.workspace.schemas import OpeningInterval, Weekday
from favmcp.registry.domain import Commitment
from favmcp.registry.spec import ConfirmInput, Preview, ToolInput, WriteInput

MAX_SCHEDULE_DAYS = 62
MAX_TIME_OFF = timedelta(days=366)

Email = Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]
UserId = Annotated[str, Field(min_length=1, max_length=40, description="A user id (usr_...) from list_team_members.")]
InviteId = Annotated[
    str, Field(min_length=1, max_length=40, description="An invite id (inv_...), from list_team_invites.")
]
TimeOffId = Annotated[
    str, Field(min_length=1, max_length=40, description="A time-off block id (off_...), from get_staff_schedule.")
]
InvitableRole = Literal["admin", "manager", "staff"]
WeeklyHours = dict[Weekday, Annotated[list[OpeningInterval], Field(max_length=12)]]


# Invites


class InviteState(StrEnum):
    """An invite's state; `expired` is derived: a pending invite past its expires_at."""

    pending = "pending"
    accepted = "accepted"
    expired = "expired"
    revoked = "revoked"


class TeamInvitePublic(Schema):
    id: str
    email: str
    name: str | None
    role: Role
    status: InviteState
    invited_by: str | None = Field(description="User id of the person who sent the invite.")
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    user_id: str | None = Field(description="The team member the invite became, once accepted.")


class CreateTeamMemberInviteInput(WriteInput):
    email: Email
    role: InvitableRole
    name: str | None = Field(default=None, min_length=1, max_length=200)


class InviteSent(Schema):
    invite: TeamInvitePublic
    message: str


class ListTeamInvitesInput(ToolInput, PageParams):
    status: InviteState | None = None


class TeamInvitePage(Page[TeamInvitePublic]):
    pass


class RevokeTeamInviteInput(WriteInput):
    invite_id: InviteId


# Members


class TeamMemberPublic(Schema):
    id: str
    name: str
    email: str
    role: Role
    status: UserStatus
    service_ids: list[str] = Field(default_factory=list, description="Active services this person delivers.")
    created_at: datetime


class ListTeamMembersInput(ToolInput, PageParams):
    role: Role | None = None
    status: UserStatus | None = None


class TeamMemberPage(Page[TeamMemberPublic]):
    pass


class UpdateTeamMemberRoleInput(WriteInput):
    user_id: UserId
    role: Role


class DeactivateTeamMemberInput(ConfirmInput):
    user_id: UserId


class DeactivationResult(Schema):
    member: TeamMemberPublic
    revoked_key_ids: list[str] = Field(description="API keys revoked by this call (empty when nothing changed).")
    message: str


# Working hours and time off


def _no_overlap(weekly: dict[Weekday, list[OpeningInterval]]) -> None:
    for day, intervals in weekly.items():
        for a, b in pairwise(sorted(intervals, key=lambda i: i.open)):
            if b.open < a.close:
                raise ValueError(f"working intervals on {day} overlap")


class SetStaffWorkingHoursInput(WriteInput):
    user_id: UserId
    weekly: WeeklyHours | None = Field(
        default=None,
        description="Intervals per weekday in workspace local time; a weekday left out is a day off. Left out with "
        "rotate_calendar_feed: unchanged.",
    )
    rotate_calendar_feed: bool = Field(default=False, description="New calendar feed URL; the old one stops working.")

    @model_validator(mode="after")
    def _check(self) -> SetStaffWorkingHoursInput:
        if self.weekly is None:
            if not self.rotate_calendar_feed:
                raise ValueError("weekly is required (an empty object clears the hours)")
        else:
            _no_overlap(self.weekly)
        return self


class StaffWorkingHours(Schema):
    user_id: str
    timezone: str = Field(description="The workspace timezone the local times are in.")
    weekly: dict[Weekday, list[OpeningInterval]]
    updated_at: datetime | None = Field(description="Null if never set.")
    calendar_feed_url: str | None = Field(default=None, description="The new feed URL, after rotate_calendar_feed.")


class TimeOffPublic(Schema):
    id: str
    user_id: str
    starts_at: datetime
    ends_at: datetime
    reason: str | None
    created_by: str | None
    created_at: datetime
    removed_at: datetime | None = None


class AddStaffTimeOffInput(WriteInput):
    user_id: UserId
    starts_at: UtcDateTime = Field(description="Start, ISO 8601 with offset, e.g. 2027-03-01T09:00:00+01:00.")
    ends_at: UtcDateTime = Field(description="End (exclusive), after starts_at, at most 366 days later.")
    reason: str | None = Field(default=None, min_length=1, max_length=200)
    list_overlapping_bookings: bool = Field(
        default=False, description="A refusal over confirmed bookings lists them (id, times), to reschedule first."
    )

    @model_validator(mode="after")
    def _check(self) -> AddStaffTimeOffInput:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_TIME_OFF:
            raise ValueError("a time-off block is at most 366 days long")
        return self


class RemoveStaffTimeOffInput(WriteInput):
    time_off_id: TimeOffId


class TimeOffRemoved(Schema):
    removed: TimeOffPublic = Field(description="The block as it was; removed_at says when it was removed.")


class DeactivationPreview(Preview):
    member: TeamMemberPublic
    keys_to_revoke: int


class GetStaffScheduleInput(ToolInput):
    user_id: UserId
    from_date: CalendarDate = Field(description="First local date.")
    to_date: CalendarDate = Field(description="Last local date, included; at most 62 days in all.")

    @model_validator(mode="after")
    def _check(self) -> GetStaffScheduleInput:
        if self.to_date < self.from_date:
            raise ValueError("to_date must not be before from_date")
        if (self.to_date - self.from_date).days + 1 > MAX_SCHEDULE_DAYS:
            raise ValueError(f"the range is at most {MAX_SCHEDULE_DAYS} days")
        return self


class ScheduleDay(Schema):
    date: date
    weekday: Weekday
    working_hours: list[OpeningInterval] = Field(description="Local working intervals of this date (weekly hours).")


class StaffScheduleView(Schema):
    user_id: str
    status: UserStatus
    timezone: str = Field(description="The workspace timezone that local dates and times are in.")
    from_date: date
    to_date: date
    range_starts_at: datetime = Field(description="Start of from_date in local time, as an instant.")
    range_ends_at: datetime = Field(description="End of to_date in local time, as an instant (exclusive).")
    weekly: dict[Weekday, list[OpeningInterval]] = Field(
        description="The weekly working hours; empty when none were set with set_staff_working_hours."
    )
    days: list[ScheduleDay] = Field(description="Every date of the range with its weekly working intervals.")
    time_off: list[TimeOffPublic] = Field(description="Time-off blocks that overlap the range, earliest first.")
    bookings: list[Commitment] = Field(
        default_factory=list, description="Bookings assigned to the person in the range."
    )
    calendar_feed_url: str | None = Field(
        default=None,
        description="Private iCalendar feed; for the person and team admins, else null.",
    )
