"""Promotion codes and their redemptions; the usage counters live in the database, under its locks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field

from favmcp.db.types import Table, amount_field, enum_field, utc_field, workspace_fk


class PromotionStatus(StrEnum):
    active = "active"
    inactive = "inactive"


class DiscountKind(StrEnum):
    percent = "percent"
    fixed = "fixed"


class AppliesTo(StrEnum):
    orders = "orders"
    invoices = "invoices"
    both = "both"


class RedemptionStatus(StrEnum):
    redeemed = "redeemed"
    released = "released"


ACTIVE = text("status = 'active'")
REDEEMED = text("status = 'redeemed'")


class Promotion(Table, table=True):
    """A code (upper case), unique per workspace among active promotions. times_redeemed counts the redemptions
    not released; the database keeps it within max_redemptions."""

    __tablename__ = "promotions"
    __table_args__ = (
        Index(
            "uq_promotions_active_code",
            "workspace_id",
            "code",
            unique=True,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        ),
        Index("ix_promotions_workspace_code", "workspace_id", "code"),
        CheckConstraint("times_redeemed >= 0", name="ck_promotions_redeemed_not_negative"),
        CheckConstraint(
            "max_redemptions IS NULL OR times_redeemed <= max_redemptions", name="ck_promotions_within_limit"
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    status: PromotionStatus = enum_field(PromotionStatus, PromotionStatus.active)
    code: str = Field(max_length=40)
    kind: DiscountKind = enum_field(DiscountKind)
    percent_off: str | None = Field(default=None, max_length=12)
    amount_off: int | None = amount_field(nullable=True)
    currency: str = Field(max_length=3)
    min_subtotal: int | None = amount_field(nullable=True)
    applies_to: AppliesTo = enum_field(AppliesTo, AppliesTo.both)
    starts_at: datetime | None = utc_field(nullable=True)
    ends_at: datetime | None = utc_field(nullable=True)
    max_redemptions: int | None = None
    max_per_customer: int | None = None
    times_redeemed: int = Field(default=0)
    # Set on a loyalty voucher: the one customer who may use the code.
    member_id: str | None = Field(default=None, foreign_key="members.id", max_length=40)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    deactivated_at: datetime | None = utc_field(nullable=True)


class Redemption(Table, table=True):
    """One use of a promotion on one target ("order:<id>" or "invoice:<id>"); released ones no longer count."""

    __tablename__ = "promotion_redemptions"
    __table_args__: Any = (
        Index(
            "uq_redemptions_target",
            "workspace_id",
            "promotion_id",
            "target",
            unique=True,
            sqlite_where=REDEEMED,
            postgresql_where=REDEEMED,
        ),
        Index("ix_redemptions_member", "workspace_id", "promotion_id", "member_id"),
        Index("ix_redemptions_target", "workspace_id", "target"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    promotion_id: str = Field(foreign_key="promotions.id", max_length=40, ondelete="CASCADE")
    member_id: str = Field(foreign_key="members.id", max_length=40, index=True)
    target: str = Field(max_length=60)
    status: RedemptionStatus = enum_field(RedemptionStatus, RedemptionStatus.redeemed)
    amount: int = amount_field()
    currency: str = Field(max_length=3)
    created_at: datetime = utc_field()
    released_at: datetime | None = utc_field(nullable=True)
