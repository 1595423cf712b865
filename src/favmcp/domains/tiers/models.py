"""Membership tiers: levels a customer reaches by points earned in 12 months or by lifetime spend."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field

from favmcp.db.types import Table, utc_field, workspace_fk


class MembershipTier(Table, table=True):
    """A level: reached when the customer's standing (on the program's tier_basis) is at least `threshold` (points,
    or minor units of the workspace currency). Thresholds are unique, so the levels are ordered by them."""

    __tablename__ = "membership_tiers"
    __table_args__ = (
        UniqueConstraint("workspace_id", "threshold", name="uq_membership_tiers_threshold"),
        Index("uq_membership_tiers_name", "workspace_id", "name", unique=True),
        CheckConstraint("threshold >= 0", name="ck_membership_tiers_threshold"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    name: str = Field(max_length=80)
    threshold: int = Field(sa_column=Column(BigInteger, nullable=False))
    earn_multiplier: str = Field(default="1", max_length=12)  # a decimal: points earned are multiplied by it
    discount_percent: str | None = Field(default=None, max_length=12)
    benefits: str | None = Field(default=None, max_length=2000)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
