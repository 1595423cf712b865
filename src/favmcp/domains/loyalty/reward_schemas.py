"""Inputs and answers of the rewards tools. Amounts are minor units beside their currency; points are ints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from favmcp.core.money import CurrencyCode, Percent, PositiveAmount
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.domains.bookings.schemas import ServiceId
from favmcp.domains.loyalty.models import RewardKind, RewardStatus, VoucherStatus
from favmcp.domains.members.schemas import MemberId
from favmcp.domains.products.schemas import ProductId
from favmcp.registry.spec import ToolInput, WriteInput

RewardId = Annotated[str, Field(min_length=1, max_length=40, description="A reward id (rwd_...).")]


class CreateRewardInput(WriteInput):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    kind: RewardKind
    service_id: ServiceId | None = None
    product_id: ProductId | None = None
    percent_off: Percent | None = None
    amount_off: PositiveAmount | None = None
    currency: CurrencyCode | None = Field(default=None, description="A discount's; the workspace's by default.")
    points_cost: int = Field(ge=1, le=10_000_000)
    stock: int | None = Field(default=None, ge=1, le=1_000_000, description="Left out: unlimited.")
    voucher_valid_days: int | None = Field(default=None, ge=1, le=3650, description="Left out: never expire.")


class ListRewardsInput(ToolInput, PageParams):
    status: RewardStatus | Literal["all"] = RewardStatus.active


class ArchiveRewardInput(WriteInput):
    reward_id: RewardId
    withdraw_unused: bool = Field(default=False, description="Also withdraw unused vouchers, returning their points.")


class RedeemRewardInput(WriteInput):
    member_id: MemberId
    reward_id: RewardId


class RewardPublic(Schema):
    id: str
    name: str
    description: str | None
    kind: RewardKind
    service_id: str | None
    product_id: str | None
    percent_off: str | None
    amount_off: int | None
    currency: str
    points_cost: int
    stock: int | None = Field(description="Left; null: unlimited.")
    voucher_valid_days: int | None
    status: RewardStatus
    vouchers_issued: int = Field(description="Not withdrawn.")


class RewardPage(Page[RewardPublic]):
    pass


class ArchivedReward(Schema):
    reward: RewardPublic
    vouchers_withdrawn: int
    points_returned: int


class VoucherPublic(Schema):
    """A single-use promotion code for one customer."""

    id: str
    code: str
    member_id: str
    reward_id: str
    points: int
    percent_off: str | None
    amount_off: int | None
    currency: str
    expires_at: datetime | None
    status: VoucherStatus
    used: bool
