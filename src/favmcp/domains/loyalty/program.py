"""The workspace's loyalty program: earn rules, expiry, redemption rules and the tier basis."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter

from favmcp.core.money import CurrencyCode
from favmcp.core.schema import Schema
from favmcp.domains.bookings.schemas import ServiceId
from favmcp.domains.loyalty.models import LoyaltyProgram
from favmcp.domains.products.schemas import ProductId
from favmcp.domains.subscriptions.schemas import PlanId
from favmcp.registry.context import ToolContext

RulePoints = Annotated[int, Field(strict=True, ge=1, le=100_000)]


class VisitRule(Schema):
    """Points for each completed booking (of one service, or of any)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["visit"]
    points: RulePoints
    service_id: ServiceId | None = None


class SpendRule(Schema):
    """Points per whole unit of `currency` paid (1 per EUR: 45.99 EUR earns 45), on any payment or only on the
    invoices of one plan's subscriptions."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["spend"]
    points: RulePoints
    currency: CurrencyCode
    plan_id: PlanId | None = None


class ProductRule(Schema):
    """Points per unit of a product (or of any product) in a paid order."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["product"]
    points: RulePoints
    product_id: ProductId | None = None


EarnRule = Annotated[VisitRule | SpendRule | ProductRule, Field(discriminator="kind")]
RULES = TypeAdapter(list[EarnRule])


def earn_rules(program: LoyaltyProgram) -> list[VisitRule | SpendRule | ProductRule]:
    return RULES.validate_python(program.earn_rules)


async def load_program(ctx: ToolContext) -> LoyaltyProgram:
    """The workspace's program; the defaults (enabled, no earn rules, points expire after 365 days, tiers on points
    earned in the last 12 months) until update_loyalty_program first saves it."""
    found = await ctx.db.first(ctx.db.select(LoyaltyProgram))
    if found is not None:
        return found
    return LoyaltyProgram(workspace_id=ctx.workspace_id, updated_at=ctx.now)
