from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from favmcp.core.money import Amount, CurrencyCode, Percent, PositiveAmount
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import UtcDateTime
from favmcp.domains.members.schemas import MemberId
from favmcp.domains.products.schemas import BasketLine
from favmcp.domains.promotions.models import AppliesTo, DiscountKind, PromotionStatus
from favmcp.domains.promotions.service import normalise_code
from favmcp.registry.spec import ToolInput, WriteInput


def code_text(value: str) -> str:
    code = normalise_code(value)
    if not re.fullmatch(r"[A-Z0-9_-]+", code):
        raise ValueError("letters, digits, - or _ only")
    return code


Code = Annotated[
    str,
    Field(min_length=1, max_length=40, description="Letters, digits, - or _; any case."),
    AfterValidator(code_text),
]


Reason = Literal[
    "not_found",
    "inactive",
    "not_started",
    "expired",
    "not_applicable",
    "currency_mismatch",
    "below_minimum",
    "limit_reached",
    "customer_limit_reached",
    "other_customer",
]


class CreatePromotionInput(WriteInput):
    code: Code
    percent_off: Percent | None = None
    amount_off: PositiveAmount | None = None
    currency: CurrencyCode | None = Field(default=None, description="Of the baskets; the workspace's by default.")
    min_subtotal: Amount | None = None
    applies_to: AppliesTo = AppliesTo.both
    starts_at: UtcDateTime | None = None
    ends_at: UtcDateTime | None = Field(default=None, description="Exclusive.")
    max_redemptions: int | None = Field(default=None, ge=1)
    max_per_customer: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_discount(self) -> CreatePromotionInput:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("give exactly one of percent_off and amount_off")
        if self.percent_off is not None and self.percent_off.value <= 0:
            raise ValueError("percent_off is more than 0")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class ListPromotionsInput(ToolInput, PageParams):
    status: PromotionStatus | Literal["all"] = "all"
    vouchers: bool = Field(default=False, description="List loyalty vouchers (one customer's codes) instead.")


class ValidatePromotionInput(ToolInput):
    """The basket: subtotal (and currency), or product lines."""

    code: str = Field(min_length=1, max_length=100)
    member_id: MemberId
    subtotal: Amount | None = None
    currency: CurrencyCode | None = None
    lines: list[BasketLine] | None = Field(default=None, min_length=1, max_length=100)
    applies_to: Literal["orders", "invoices"] = "orders"

    @model_validator(mode="after")
    def _one_basket(self) -> ValidatePromotionInput:
        if (self.subtotal is None) == (self.lines is None):
            raise ValueError("give subtotal or lines")
        if self.lines is not None and self.currency is not None:
            raise ValueError("lines take the products' currency; leave currency out")
        return self


class DeactivatePromotionInput(WriteInput):
    promotion_id: str = Field(min_length=1, max_length=40, description="A promotion id (prm_...).")


class PromotionPublic(Schema):
    id: str
    code: str
    status: PromotionStatus
    kind: DiscountKind
    percent_off: str | None
    amount_off: int | None
    currency: str
    min_subtotal: int | None
    applies_to: AppliesTo
    starts_at: datetime | None
    ends_at: datetime | None
    max_redemptions: int | None
    max_per_customer: int | None
    member_id: str | None = Field(description="A loyalty voucher's customer, the only one who may use it.")
    times_redeemed: int = Field(description="Uses that count (a cancelled order's use is given back).")
    remaining: int | None = Field(description="Uses left; null when unlimited.")
    discount_given: int = Field(description="Sum of the discounts of the uses that count.")


class PromotionPage(Page[PromotionPublic]):
    pass


class PromotionCheck(Schema):
    code: str
    valid: bool
    reason: Reason | None = Field(description="Why the code does not apply; null when it does.")
    message: str
    promotion_id: str | None
    subtotal: int
    discount: int
    currency: str
