"""The loyalty program, each customer's points account, the points ledger and its lots, rewards and vouchers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, UniqueConstraint, text
from sqlmodel import Field

from favmcp.db.types import Table, amount_field, enum_field, json_field, utc_field, workspace_fk


def points_field(*, default: Any = ...) -> Any:
    return Field(default=default, sa_column=Column(BigInteger, nullable=False))


class TierBasis(StrEnum):
    points_12_months = "points_12_months"  # points earned (less reversals) in the last 12 months
    lifetime_spend = "lifetime_spend"  # payments less refunds, in the workspace's currency


class LoyaltyProgram(Table, table=True):
    """The workspace's program (one row, the defaults until first saved). earn_rules is a list of EarnRule dicts
    (see loyalty.program)."""

    __tablename__ = "loyalty_programs"
    __table_args__ = (
        CheckConstraint("expiry_days IS NULL OR expiry_days > 0", name="ck_loyalty_programs_expiry"),
        CheckConstraint("min_redeem_points > 0", name="ck_loyalty_programs_min_redeem"),
    )

    workspace_id: str = Field(foreign_key="workspaces.id", primary_key=True, max_length=40, ondelete="CASCADE")
    enabled: bool = True
    earn_rules: list[dict[str, Any]] = json_field(list)
    expiry_days: int | None = 365
    min_redeem_points: int = 1
    tier_basis: TierBasis = enum_field(TierBasis, TierBasis.points_12_months)
    updated_at: datetime = utc_field()


class LoyaltyAccount(Table, table=True):
    """A customer's points: the row every change of their points locks first (changes of one customer take
    turns). `balance` always equals the sum of their ledger entries and the database keeps it from going below
    zero. The tier: `tier_id` is the automatic level, `manual_tier_id` one set by hand that wins until cleared."""

    __tablename__ = "loyalty_accounts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "member_id", name="uq_loyalty_accounts_member"),
        CheckConstraint("balance >= 0", name="ck_loyalty_accounts_balance_not_negative"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    member_id: str = Field(foreign_key="members.id", max_length=40)
    balance: int = points_field(default=0)
    tier_id: str | None = Field(default=None, foreign_key="membership_tiers.id", max_length=40)
    manual_tier_id: str | None = Field(default=None, foreign_key="membership_tiers.id", max_length=40)
    tier_since: datetime | None = utc_field(nullable=True)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class EntryKind(StrEnum):
    earn = "earn"  # +points for a source (a booking, a payment, an order, a person's grant)
    redeem = "redeem"  # -points spent (on a reward, or directly)
    adjust = "adjust"  # +/- a person's correction, with its reason
    expire = "expire"  # -what was left of one lot at its expiry
    reversal = "reversal"  # -points of a refunded payment, or +points of a withdrawn voucher


# Entries that happen at most once per source: an earn per booking or payment, an expiry per lot, a reversal per
# refund, a redemption per voucher.
ONCE_PER_SOURCE = text("source IS NOT NULL")


class PointsEntry(Table, table=True):
    """The ledger: append-only, never updated or deleted. `points` is signed; the balance is their sum.

    source says what the entry is for ("booking:<id>", "payment:<id>", "order:<id>", "lot:<id>", "refund:<id>",
    "voucher:<id>"); one entry per (kind, source). A reversal that could not take all it should (the balance was
    spent) records what it could not take in `shortfall`."""

    __tablename__ = "loyalty_entries"
    __table_args__ = (
        Index(
            "uq_loyalty_entries_kind_source",
            "workspace_id",
            "kind",
            "source",
            unique=True,
            sqlite_where=ONCE_PER_SOURCE,
            postgresql_where=ONCE_PER_SOURCE,
        ),
        Index("ix_loyalty_entries_workspace_member", "workspace_id", "member_id", "id"),
        Index("ix_loyalty_entries_workspace_keyset", "workspace_id", "id"),
        CheckConstraint("shortfall >= 0", name="ck_loyalty_entries_shortfall"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    member_id: str = Field(foreign_key="members.id", max_length=40)
    kind: EntryKind = enum_field(EntryKind)
    points: int = points_field()
    source: str | None = Field(default=None, max_length=80)
    reason: str | None = Field(default=None, max_length=500)
    lot_id: str | None = Field(default=None, max_length=40)  # the lot an earn made or an expiry wrote off
    expires_at: datetime | None = utc_field(nullable=True)  # an earn's expiry
    shortfall: int = points_field(default=0)
    actor: str = Field(max_length=40)  # a user id, or "system" for the worker and events
    created_at: datetime = utc_field()


class PointsLot(Table, table=True):
    """The points one credit (an earn, an upward adjustment, a returned voucher) added, and what is left of them:
    redemptions take from the soonest-expiring lots first and expiry writes off what a lot has left. The sum of
    `remaining` over a member's lots is their balance."""

    __tablename__ = "loyalty_lots"
    __table_args__ = (
        Index("ix_loyalty_lots_member_expiry", "workspace_id", "member_id", "expires_at"),
        Index("ix_loyalty_lots_expiry", "workspace_id", "expires_at"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="ck_loyalty_lots_remaining"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    member_id: str = Field(foreign_key="members.id", max_length=40)
    entry_id: str = Field(max_length=40)
    points: int = points_field()
    remaining: int = points_field()
    expires_at: datetime | None = utc_field(nullable=True)  # None: never
    created_at: datetime = utc_field()


class RewardKind(StrEnum):
    free_service = "free_service"  # a voucher worth the service's price
    free_product = "free_product"  # a voucher worth the product's price
    discount = "discount"  # a voucher for a percentage or a fixed amount off


class RewardStatus(StrEnum):
    active = "active"
    archived = "archived"


class Reward(Table, table=True):
    """Something points buy. `stock` (None: unlimited) counts what is left; the database keeps it from going below
    zero, so concurrent redemptions of the last one cannot both succeed."""

    __tablename__ = "loyalty_rewards"
    __table_args__ = (
        Index("ix_loyalty_rewards_workspace_keyset", "workspace_id", "id"),
        CheckConstraint("points_cost > 0", name="ck_loyalty_rewards_cost"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="ck_loyalty_rewards_stock"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    kind: RewardKind = enum_field(RewardKind)
    service_id: str | None = Field(default=None, foreign_key="services.id", max_length=40)
    product_id: str | None = Field(default=None, foreign_key="products.id", max_length=40)
    percent_off: str | None = Field(default=None, max_length=12)
    amount_off: int | None = amount_field(nullable=True)
    currency: str = Field(max_length=3)
    points_cost: int = points_field()
    stock: int | None = None
    voucher_valid_days: int | None = None  # None: a voucher never expires
    status: RewardStatus = enum_field(RewardStatus, RewardStatus.active)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    archived_at: datetime | None = utc_field(nullable=True)


class VoucherStatus(StrEnum):
    issued = "issued"  # usable (once) while its code's promotion is active; "used" once redeemed on a document
    withdrawn = "withdrawn"  # taken back unused when its reward was archived; its points returned


class Voucher(Table, table=True):
    """A reward redeemed by a customer: a single-use promotion code for that customer only (see promotions), and
    the points it cost. Whether it was used is its promotion's redemption count; a used voucher is final."""

    __tablename__ = "loyalty_vouchers"
    __table_args__ = (
        Index("ix_loyalty_vouchers_workspace_reward", "workspace_id", "reward_id"),
        Index("ix_loyalty_vouchers_workspace_member", "workspace_id", "member_id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    member_id: str = Field(foreign_key="members.id", max_length=40)
    reward_id: str = Field(foreign_key="loyalty_rewards.id", max_length=40)
    promotion_id: str = Field(foreign_key="promotions.id", max_length=40)
    code: str = Field(max_length=40)
    points: int = points_field()
    status: VoucherStatus = enum_field(VoucherStatus, VoucherStatus.issued)
    expires_at: datetime | None = utc_field(nullable=True)
    created_at: datetime = utc_field()
    withdrawn_at: datetime | None = utc_field(nullable=True)
