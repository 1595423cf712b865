"""Inputs and answers of the subscriptions tools. Amounts are minor units beside their currency."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Self

from pydantic import Field, model_validator

from favmcp.core.money import CurrencyCode, Percent, PositiveAmount
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import CalendarDate, UtcDateTime
from favmcp.domains.subscriptions.models import PlanInterval, PlanKind, PlanStatus, SubscriptionStatus
from favmcp.registry.spec import ConfirmInput, Preview, ToolInput, UpdateInput, WriteInput

PlanId = Annotated[str, Field(min_length=1, max_length=40, description="A plan id (pln_...).")]
SubscriptionId = Annotated[str, Field(min_length=1, max_length=40, description="A subscription id (sub_...).")]
MemberId = Annotated[str, Field(min_length=1, max_length=40, description="A member id (mem_...).")]
Credits = Annotated[int, Field(ge=1, le=10_000)]
ValidityDays = Annotated[int, Field(ge=1, le=3650, description="Days credits stay usable after payment.")]
TrialDays = Annotated[int, Field(ge=1, le=365)]


# -- plans ---------------------------------------------------------------------------------------------------------


class CreatePlanInput(WriteInput):
    kind: PlanKind
    name: str = Field(min_length=1, max_length=200)
    unit_amount: PositiveAmount = Field(description="Price per interval or per pack, minor units.")
    currency: CurrencyCode | None = Field(default=None, description="Default: the workspace's.")
    tax_rate: Percent = Field(default="0", validate_default=True)
    interval: PlanInterval | None = None
    interval_count: int = Field(default=1, ge=1, le=52)
    credits: Credits | None = None
    validity_days: ValidityDays | None = None
    trial_days: TrialDays | None = None

    @model_validator(mode="after")
    def _terms_fit_the_kind(self) -> Self:
        if self.kind == PlanKind.membership:
            if self.interval is None:
                raise ValueError("a membership needs an interval (week, month or year)")
            if self.credits is not None or self.validity_days is not None:
                raise ValueError("credits and validity_days are for packs; a membership has an interval")
        else:
            if self.credits is None or self.validity_days is None:
                raise ValueError("a pack needs credits and validity_days")
            if self.interval is not None or self.interval_count != 1 or self.trial_days is not None:
                raise ValueError("interval, interval_count and trial_days are for memberships, not packs")
        return self


class PlanPublic(Schema):
    id: str
    kind: PlanKind
    name: str
    status: PlanStatus
    unit_amount: int
    currency: str
    tax_rate: Percent
    interval: PlanInterval | None
    interval_count: int | None
    credits: int | None
    validity_days: int | None
    trial_days: int | None
    active_subscribers: int = Field(description="Subscriptions trialing, active or past due.")


class ListPlansInput(ToolInput, PageParams):
    status: PlanStatus | None = None
    kind: PlanKind | None = None


class PlanPage(Page[PlanPublic]):
    pass


class UpdatePlanInput(UpdateInput):
    not_clearable = frozenset({"name", "unit_amount", "currency", "tax_rate", "credits", "validity_days"})

    plan_id: PlanId
    name: str | None = Field(default=None, min_length=1, max_length=200)
    unit_amount: PositiveAmount | None = None
    currency: CurrencyCode | None = Field(default=None, description="Of unit_amount: the plan's, which stays.")
    tax_rate: Percent | None = None
    trial_days: TrialDays | None = None
    credits: Credits | None = None
    validity_days: ValidityDays | None = None


class ArchivePlanInput(WriteInput):
    plan_id: PlanId


# -- subscriptions -------------------------------------------------------------------------------------------------


class SubscribeMemberInput(WriteInput):
    member_id: MemberId
    plan_id: PlanId
    trial_days: int | None = Field(default=None, ge=0, le=365, description="Overrides the plan's; 0: none.")


class SubscriptionPublic(Schema):
    id: str
    member_id: str
    plan_id: str
    plan_name: str
    kind: PlanKind
    status: SubscriptionStatus
    unit_amount: int = Field(description="The price of the current period; renewals take the plan's price then.")
    currency: str
    current_period_start: datetime | None
    current_period_end: datetime | None = Field(description="In a trial: the trial's end.")
    has_access: bool = Field(description="May use the membership or its credits now (trialing or active).")
    cancel_at_period_end: bool
    pending_plan_id: str | None = Field(description="Plan taking over at the next renewal.")
    resume_at: datetime | None
    ended_at: datetime | None
    credits_left: int | None = Field(description="Packs: usable credits (not held, used or expired).")
    latest_invoice_id: str | None


class SubscriptionInvoice(Schema):
    invoice_id: str
    number: str | None
    status: str
    period_start: datetime
    period_end: datetime | None
    total: int
    amount_remaining: int
    currency: str
    due_date: date | None


class CreditLotPublic(Schema):
    lot_id: str
    granted: int
    left: int
    expires_at: datetime
    expired: bool


class SubscriptionDetail(SubscriptionPublic):
    trial_end: datetime | None
    paused_reason: str | None = Field(description="requested, or trial_ended (resumes when its invoice is paid).")
    cancelled_at: datetime | None
    cancellation_reason: str | None
    created_at: datetime
    invoices: list[SubscriptionInvoice] = Field(description="Newest first, at most 12.")
    invoice_count: int
    credit_lots: list[CreditLotPublic]


class GetSubscriptionInput(ToolInput):
    subscription_id: SubscriptionId


class ListSubscriptionsInput(ToolInput, PageParams):
    status: SubscriptionStatus | None = None
    plan_id: PlanId | None = None
    member_id: MemberId | None = None


class SubscriptionPage(Page[SubscriptionPublic]):
    pass


class PauseSubscriptionInput(WriteInput):
    subscription_id: SubscriptionId
    resume_on: CalendarDate | None = Field(default=None, description="Date billing resumes it.")


class ResumeSubscriptionInput(WriteInput):
    subscription_id: SubscriptionId


class CancelSubscriptionInput(ConfirmInput):
    subscription_id: SubscriptionId
    at_period_end: bool = False


class CancelPreview(Preview):
    subscription: SubscriptionPublic
    ends_at: datetime | None
    credits_forfeited: int


class CancelResult(SubscriptionPublic):
    credits_forfeited: int


class ChangeSubscriptionPlanInput(WriteInput):
    subscription_id: SubscriptionId
    plan_id: PlanId = Field(description="The new plan; the current one withdraws a change.")


class RunBillingInput(WriteInput):
    up_to: UtcDateTime | None = Field(default=None, description="Default: now.")


class BillingResult(Schema):
    up_to: datetime
    renewed: int
    trials_ended: int
    past_due: int
    cancelled: int
    resumed: int
    credits_expired: int
