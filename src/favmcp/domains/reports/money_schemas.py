"""Inputs and answers of the money reports: revenue, dashboard and memberships."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field, model_validator

from favmcp.core.schema import Schema
from favmcp.core.times import CalendarDate
from favmcp.domains.reports.periods import MAX_RANGE_DAYS
from favmcp.registry.spec import ToolInput


class RangeInput(ToolInput):
    from_date: CalendarDate = Field(description="First local date.")
    to_date: CalendarDate = Field(description="Last local date (inclusive); at most 731 days.")
    chart: bool = Field(default=False, description="Also return a PNG chart.")

    @model_validator(mode="after")
    def _range(self) -> RangeInput:
        if self.to_date < self.from_date:
            raise ValueError("to_date must not be before from_date")
        if (self.to_date - self.from_date).days >= MAX_RANGE_DAYS:
            raise ValueError(f"at most {MAX_RANGE_DAYS} days")
        return self


class RevenueInput(RangeInput):
    group_by: Literal["day", "week", "month"] = Field(default="day", description="Weeks are ISO (Monday).")


class RevenueRow(Schema):
    period: date = Field(description="The bucket's first local date (a week's Monday, a month's 1st).")
    paid_amount: int | None
    refunded_amount: int | None
    net_amount: int | None
    currency: str


class RevenueShare(Schema):
    kind: Literal["service", "product", "plan", "other"]
    id: str | None = Field(description="The service, product or plan id; null for other.")
    net_amount: int | None
    currency: str


class RangeBounds(Schema):
    starts_at: datetime = Field(description="from_date's local midnight.")
    ends_at: datetime = Field(description="The local midnight after to_date.")


class RevenueReport(RangeBounds):
    net_amount: int | None
    currency: str
    rows: list[RevenueRow]
    breakdown: list[RevenueShare] = Field(description="Sums to net_amount.")


class DashboardStats(RangeBounds):
    net_revenue_amount: int | None = Field(description="As revenue_report; null without invoices:read.")
    currency: str
    bookings: int = Field(description="Bookings starting in the range, less cancelled and declined.")
    no_shows: int = Field(description="Of those, no-shows.")
    new_customers: int = Field(description="Members created in the range.")
    overdue_invoices: int = Field(description="Now: open invoices past their due date.")
    overdue_amount: int | None
    active_subscriptions: int = Field(description="Now: status active.")


class PlanMembership(Schema):
    plan_id: str | None = Field(description="Null on the total row.")
    active: int
    new: int
    paused: int
    past_due: int
    cancelled: int
    monthly_recurring_amount: int | None
    currency: str


class MembershipReport(RangeBounds):
    plans: list[PlanMembership]
    all_plans: PlanMembership
