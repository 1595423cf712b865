"""Tool inputs and outputs of the tiers domain."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from favmcp.core.money import MAX_AMOUNT, Percent
from favmcp.core.schema import Schema
from favmcp.domains.loyalty.models import TierBasis
from favmcp.registry.spec import ToolInput, UpdateInput, WriteInput

TierId = Annotated[str, Field(min_length=1, max_length=40, description="A tier id (tie_...).")]
MemberId = Annotated[str, Field(min_length=1, max_length=40, description="A member id (mem_...).")]
Threshold = Annotated[int, Field(ge=0, le=MAX_AMOUNT)]
_MULTIPLIER = re.compile(r"(10(\.0{1,2})?|[1-9](\.[0-9]{1,2})?)")


def _multiplier(text: str) -> str:
    """1 to 10 with at most two places ("1", "1.5", "2.25", "10"), kept without trailing zeros ("1.50" is 1.5)."""
    if _MULTIPLIER.fullmatch(text) is None:
        raise ValueError('a decimal string from "1" to "10", at most 2 places')
    whole, _, places = text.partition(".")
    return f"{whole}.{places.rstrip('0')}" if places.rstrip("0") else whole


Multiplier = Annotated[str, AfterValidator(_multiplier), Field(description='"1" to "10", e.g. "1.5".')]
TierName = Annotated[str, Field(min_length=1, max_length=80)]
Benefits = Annotated[str, Field(max_length=500)]


class ListTiersInput(ToolInput):
    pass


class CreateTierInput(WriteInput):
    name: TierName
    threshold: Threshold
    earn_multiplier: Multiplier = "1"
    discount_percent: Percent | None = Field(default=None, description="A stated benefit; not applied by itself.")
    benefits: Benefits | None = None


class UpdateTierInput(UpdateInput):
    not_clearable = frozenset({"name", "threshold", "earn_multiplier"})

    tier_id: TierId
    name: TierName | None = None
    threshold: Threshold | None = None
    earn_multiplier: Multiplier | None = None
    discount_percent: Percent | None = None
    benefits: Benefits | None = None


class EnrolInput(WriteInput):
    null_means = frozenset({"tier_id"})

    member_id: MemberId
    tier_id: TierId | None = Field(description="null clears the manual tier: the automatic one applies again.")


class TierPublic(Schema):
    id: str
    name: str
    threshold: int
    earn_multiplier: str
    discount_percent: str | None
    benefits: str | None
    customers: int = Field(description="Customers in it now.")
    created_at: datetime
    updated_at: datetime


class TierLadder(Schema):
    basis: TierBasis = Field(description="What thresholds count (set in the loyalty program).")
    currency: str = Field(description="Of thresholds on lifetime_spend.")
    items: list[TierPublic] = Field(description="Lowest threshold first.")


class MemberTier(Schema):
    member_id: str
    tier_id: str | None = Field(description="The tier in effect.")
    tier_name: str | None
    manual: bool
    automatic_tier_id: str | None = Field(description="What applies once the manual tier is cleared.")
