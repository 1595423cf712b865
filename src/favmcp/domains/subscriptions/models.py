"""Plans (memberships and class packs), subscriptions, their billing periods and the credits ledger."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field

from favmcp.db.types import Table, amount_field, enum_field, utc_field, workspace_fk


class PlanKind(StrEnum):
    membership = "membership"  # a recurring price per interval
    pack = "pack"  # a number of class credits, valid for some days from payment


class PlanInterval(StrEnum):
    week = "week"
    month = "month"
    year = "year"


class PlanStatus(StrEnum):
    active = "active"
    archived = "archived"


class Plan(Table, table=True):
    __tablename__ = "subscription_plans"
    __table_args__ = (Index("ix_subscription_plans_workspace_keyset", "workspace_id", "id"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    kind: PlanKind = enum_field(PlanKind)
    name: str = Field(max_length=200)
    status: PlanStatus = enum_field(PlanStatus, PlanStatus.active)
    unit_amount: int = amount_field()
    currency: str = Field(max_length=3)
    tax_rate: str = Field(default="0", max_length=12)
    interval: str | None = Field(default=None, max_length=10)  # a PlanInterval for memberships
    interval_count: int | None = None
    credits: int | None = None
    validity_days: int | None = None
    trial_days: int | None = None
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    archived_at: datetime | None = utc_field(nullable=True)


class SubscriptionStatus(StrEnum):
    incomplete = "incomplete"  # waiting for its first invoice to be paid
    trialing = "trialing"
    active = "active"
    past_due = "past_due"
    paused = "paused"
    cancelled = "cancelled"


class PauseReason(StrEnum):
    requested = "requested"  # pause_subscription
    trial_ended = "trial_ended"  # the trial ended; its first invoice is unpaid


class Subscription(Table, table=True):
    """A member's membership or pack. The price of the current period is kept here: a plan's new price applies
    from the next renewal. Periods run from `anchor_at`, `period_index` intervals on (no drift at month ends)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        Index("ix_subscriptions_workspace_keyset", "workspace_id", "id"),
        Index("ix_subscriptions_workspace_member", "workspace_id", "member_id"),
        Index("ix_subscriptions_workspace_plan_status", "workspace_id", "plan_id", "status"),
        Index("ix_subscriptions_workspace_status_end", "workspace_id", "status", "current_period_end"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    member_id: str = Field(max_length=40)
    plan_id: str = Field(max_length=40)
    kind: PlanKind = enum_field(PlanKind)
    status: SubscriptionStatus = enum_field(SubscriptionStatus)
    unit_amount: int = amount_field()
    currency: str = Field(max_length=3)
    tax_rate: str = Field(default="0", max_length=12)
    interval: str | None = Field(default=None, max_length=10)  # a PlanInterval for memberships
    interval_count: int | None = None
    credits: int | None = None  # a pack's terms as sold
    validity_days: int | None = None
    anchor_at: datetime | None = utc_field(nullable=True)
    period_index: int = 0
    current_period_start: datetime | None = utc_field(nullable=True)
    current_period_end: datetime | None = utc_field(nullable=True)
    trial_end: datetime | None = utc_field(nullable=True)
    cancel_at_period_end: bool = False
    pending_plan_id: str | None = Field(default=None, max_length=40)
    pause_reason: str | None = Field(default=None, max_length=20)  # a PauseReason while paused
    paused_at: datetime | None = utc_field(nullable=True)
    resume_at: datetime | None = utc_field(nullable=True)
    cancelled_at: datetime | None = utc_field(nullable=True)
    ended_at: datetime | None = utc_field(nullable=True)
    cancellation_reason: str | None = Field(default=None, max_length=40)
    latest_invoice_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class SubscriptionPeriod(Table, table=True):
    """One billed period of a subscription and its invoice: unique per (subscription, start), so however often
    and however concurrently billing runs, only the call that inserts the row creates the period's invoice."""

    __tablename__ = "subscription_periods"
    __table_args__ = (
        UniqueConstraint("subscription_id", "period_start", name="uq_subscription_periods_start"),
        Index("ix_subscription_periods_workspace_invoice", "workspace_id", "invoice_id"),
        Index("ix_subscription_periods_workspace_member", "workspace_id", "member_id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    subscription_id: str = Field(max_length=40)
    member_id: str = Field(max_length=40)
    plan_id: str = Field(max_length=40)
    period_start: datetime = utc_field()
    period_end: datetime | None = utc_field(nullable=True)
    unit_amount: int = amount_field()
    currency: str = Field(max_length=3)
    invoice_id: str | None = Field(default=None, max_length=40)
    due_date: date | None = None
    paid_at: datetime | None = utc_field(nullable=True)
    created_at: datetime = utc_field()


class CreditLot(Table, table=True):
    """The credits of one paid pack. `remaining` is the guard that reserves run against (a conditional UPDATE
    that never takes it below zero); the balance people see is the ledger's sum."""

    __tablename__ = "credit_lots"
    __table_args__ = (Index("ix_credit_lots_workspace_member", "workspace_id", "member_id", "expires_at"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    subscription_id: str = Field(max_length=40, index=True)
    member_id: str = Field(max_length=40)
    granted: int
    remaining: int
    expires_at: datetime = utc_field()
    created_at: datetime = utc_field()


class CreditKind(StrEnum):
    grant = "grant"  # +credits of a paid pack
    reserve = "reserve"  # -1, held for a booking
    release = "release"  # +1, the held credit returned (early cancel)
    consume = "consume"  # 0, the held credit used (attended, late cancel, no-show)
    expire = "expire"  # -what was left when the lot expired
    forfeit = "forfeit"  # -what was left when the pack was cancelled at once


BOOKING_KINDS = text("kind IN ('reserve', 'release', 'consume')")


class CreditEntry(Table, table=True):
    """Append-only: never updated or deleted. A booking reserves, releases and consumes at most once each."""

    __tablename__ = "credit_entries"
    __table_args__ = (
        Index(
            "uq_credit_entries_booking_kind",
            "workspace_id",
            "booking_ref",
            "kind",
            unique=True,
            sqlite_where=BOOKING_KINDS,
            postgresql_where=BOOKING_KINDS,
        ),
        Index("ix_credit_entries_workspace_member", "workspace_id", "member_id"),
        Index("ix_credit_entries_workspace_lot", "workspace_id", "lot_id"),
        Index("ix_credit_entries_workspace_subscription", "workspace_id", "subscription_id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    member_id: str = Field(max_length=40)
    subscription_id: str = Field(max_length=40)
    lot_id: str = Field(max_length=40)
    kind: CreditKind = enum_field(CreditKind)
    amount: int
    booking_ref: str | None = Field(default=None, max_length=80)
    expires_at: datetime = utc_field()
    created_at: datetime = utc_field()
