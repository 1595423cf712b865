"""Inputs and answers of the reports about people: no-shows, inactive members, campaigns."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import CalendarDate
from favmcp.domains.reports.periods import MAX_RANGE_DAYS
from favmcp.registry.spec import ToolInput

CHART = "Add a PNG chart (favmcp[charts])."
RATE = 'Percent no_show / (completed + no_show), one decimal rounded half up, e.g. "12.5"; null when both are 0.'


class DateRange(ToolInput):
    from_date: CalendarDate = Field(description="First local date.")
    to_date: CalendarDate = Field(description="Last local date (inclusive).")
    chart: bool = Field(default=False, description=CHART)

    @model_validator(mode="after")
    def _range(self) -> DateRange:
        if self.to_date < self.from_date:
            raise ValueError("to_date must not be before from_date")
        if (self.to_date - self.from_date).days >= MAX_RANGE_DAYS:
            raise ValueError(f"at most {MAX_RANGE_DAYS} days")
        return self


class NoShowReportInput(DateRange):
    top: int = Field(default=20, ge=1, le=100, description="Rows per breakdown.")


class Outcomes(Schema):
    completed: int
    no_show: int
    late_cancelled: int
    no_show_rate: str | None = Field(description=RATE)


class OutcomeRow(Outcomes):
    id: str
    name: str | None


class NoShowReport(Schema):
    starts_from: datetime = Field(description="from_date's local midnight (UTC): list_bookings' starts_from.")
    starts_to: datetime = Field(description="The local midnight after to_date: list_bookings' starts_to.")
    total: Outcomes
    by_customer: list[OutcomeRow] = Field(description="Most no-shows first; only rows with a no-show or late cancel.")
    by_service: list[OutcomeRow]
    by_staff: list[OutcomeRow]


class InactiveMembersInput(ToolInput, PageParams):
    days: int = Field(ge=1, le=3650, description="Days without a completed booking or paid order.")
    tier_id: str | None = Field(default=None, max_length=40, description="Only this tier (in effect now).")
    chart: bool = Field(default=False, description=CHART)


class InactiveMember(Schema):
    member_id: str
    name: str
    last_visit_at: datetime | None = Field(description="Latest completed booking start or paid order; null: never.")
    days_inactive: int | None
    tier_id: str | None
    tier_name: str | None
    lifetime_spend: int | None = Field(description="Null without invoices:read.")
    currency: str | None


class InactiveMembersPage(Page[InactiveMember]):
    inactive_since: datetime = Field(description="Activity before this moment (now less days) counts as inactive.")


class CampaignReportInput(ToolInput):
    from_date: CalendarDate | None = Field(default=None, description="Campaigns sent from this local date.")
    to_date: CalendarDate | None = Field(default=None, description="Up to this local date (inclusive).")
    chart: bool = Field(default=False, description=CHART)

    @model_validator(mode="after")
    def _range(self) -> CampaignReportInput:
        if self.from_date and self.to_date and self.to_date < self.from_date:
            raise ValueError("to_date must not be before from_date")
        return self


class CampaignResult(Schema):
    campaign_id: str
    name: str
    sent_at: datetime | None
    reach: int
    delivered: int
    replies: int
    bookings: int
    revenue: int = Field(description="Paid less refunded by recipients within the attribution window, minor units.")
    currency: str


class CampaignReport(Schema):
    items: list[CampaignResult]
    note: str | None = None
