"""Arguments and answers of the points tools (the program, balances, the ledger, expiry)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import UtcDateTime
from favmcp.domains.loyalty.models import EntryKind, TierBasis
from favmcp.domains.loyalty.program import EarnRule
from favmcp.domains.loyalty.reward_schemas import VoucherPublic
from favmcp.domains.members.schemas import MemberId
from favmcp.registry.spec import ToolInput, UpdateInput, WriteInput

MAX_POINTS = 1_000_000
MAX_RULES = 20
Points = Annotated[int, Field(strict=True, ge=1, le=MAX_POINTS)]


class LoyaltyProgramPublic(Schema):
    enabled: bool = Field(description="False: nothing earns by itself.")
    earn_rules: list[EarnRule]
    expiry_days: int | None = Field(description="Earned points expire after this; null: never.")
    min_redeem_points: int
    tier_basis: TierBasis
    saved: bool = Field(description="False: the defaults, never changed.")
    updated_at: datetime | None


class GetLoyaltyProgramInput(ToolInput):
    pass


class UpdateLoyaltyProgramInput(UpdateInput):
    not_clearable = frozenset({"enabled", "earn_rules", "min_redeem_points", "tier_basis"})

    enabled: bool | None = None
    earn_rules: list[EarnRule] | None = Field(default=None, max_length=MAX_RULES)
    expiry_days: int | None = Field(default=None, ge=1, le=3650, description="Null: never expire.")
    min_redeem_points: int | None = Field(default=None, ge=1, le=MAX_POINTS)
    tier_basis: TierBasis | None = None


class MemberInput(ToolInput):
    member_id: MemberId


class TierProgress(Schema):
    tier_id: str | None = Field(description="The tier in effect; null: none.")
    tier_name: str | None
    manual: bool = Field(description="Set by hand; wins over the automatic tier.")
    basis: TierBasis
    standing: int = Field(description="Points earned in 12 months, or lifetime spend in minor units.")
    next_tier_id: str | None
    next_tier_name: str | None
    needed: int | None = Field(description="Standing still needed for the next tier.")


class PointsBalance(Schema):
    member_id: str
    points: int = Field(description="The balance.")
    points_expiring: int = Field(description="Of them, expiring in the next 30 days.")
    expiring_first_at: datetime | None = Field(description="When the soonest of those expire.")
    tier: TierProgress
    vouchers: list[VoucherPublic] = Field(description="Reward vouchers usable now, newest first.")


class EarnPointsInput(WriteInput):
    member_id: MemberId
    points: Points
    reason: str = Field(min_length=1, max_length=500)


class RedeemPointsInput(WriteInput):
    member_id: MemberId
    points: Points
    reason: str | None = Field(default=None, max_length=500)


class AdjustPointsInput(WriteInput):
    member_id: MemberId
    points: int = Field(strict=True, ge=-MAX_POINTS, le=MAX_POINTS, description="Signed, not 0.")
    reason: str = Field(min_length=3, max_length=500)


class PointsEntryPublic(Schema):
    id: str
    member_id: str
    kind: EntryKind
    points: int = Field(description="Signed.")
    source: str | None = Field(description="e.g. booking:<id>, payment:<id>, refund:<id>")
    reason: str | None
    expires_at: datetime | None = Field(description="An earn's expiry.")
    shortfall: int = Field(description="A reversal's points already spent.")
    actor: str = Field(description="A user id or system.")
    created_at: datetime


class PointsMoved(Schema):
    entry: PointsEntryPublic
    points_after: int = Field(description="The balance after it.")


class ListPointsTransactionsInput(ToolInput, PageParams):
    member_id: MemberId | None = Field(default=None, description="Left out: the whole workspace.")
    kind: EntryKind | None = None
    created_from: UtcDateTime | None = None
    created_before: UtcDateTime | None = None


class PointsEntryPage(Page[PointsEntryPublic]):
    pass


class ExpirePointsInput(WriteInput):
    up_to: UtcDateTime | None = Field(default=None, description="Default now; not later.")
    member_id: MemberId | None = None


class ExpiryCounts(Schema):
    up_to: datetime
    lots: int
    points: int
    members: int
