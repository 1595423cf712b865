"""Promotion codes: percent or fixed discounts with a validity window and usage limits counted in the database."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.core.errors import FieldError, conflict, not_found, validation_failed
from favmcp.core.ids import new_id
from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.core.money import Money
from favmcp.domains.members import service as members
from favmcp.domains.products import service as products
from favmcp.domains.promotions import service
from favmcp.domains.promotions.lifecycle import PROMOTION_LIFECYCLE
from favmcp.domains.promotions.models import AppliesTo, DiscountKind, Promotion, PromotionStatus, Redemption
from favmcp.domains.promotions.schemas import (
    CreatePromotionInput,
    DeactivatePromotionInput,
    ListPromotionsInput,
    PromotionCheck,
    PromotionPage,
    PromotionPublic,
    ValidatePromotionInput,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.spec import tool

DOMAIN_NAME = "promotions"


async def public(ctx: ToolContext, promotion: Promotion) -> PromotionPublic:
    return (await public_many(ctx, [promotion]))[0]


async def public_many(ctx: ToolContext, promotions: list[Promotion]) -> list[PromotionPublic]:
    usage = await service.usage(ctx, [p.id for p in promotions])
    out = []
    for p in promotions:
        used = usage[p.id]
        out.append(
            PromotionPublic.model_validate(
                {
                    **p.model_dump(),
                    "remaining": None if p.max_redemptions is None else max(0, p.max_redemptions - p.times_redeemed),
                    "discount_given": used["discount"],
                }
            )
        )
    return out


@tool(domain=DOMAIN_NAME, title="Create promotion", hints="W", scope="orders:write", route="POST /v1/promotions")
async def create_promotion(ctx: ToolContext, args: CreatePromotionInput) -> PromotionPublic:
    """Create a promotion code (any case, unique among active codes): percent_off or amount_off, for orders,
    invoices or both, with optional validity window, minimum subtotal, total and per-customer limits."""
    if args.ends_at is not None and args.ends_at <= ctx.now:
        raise validation_failed("ends_at is in the past.", [FieldError(field="ends_at", message="a future time")])
    promotion = Promotion(
        id=new_id("prm"),
        workspace_id=ctx.workspace_id,
        code=args.code,
        kind=DiscountKind.percent if args.percent_off is not None else DiscountKind.fixed,
        percent_off=None if args.percent_off is None else str(args.percent_off),
        amount_off=args.amount_off,
        currency=args.currency or (await ctx.db.workspace()).currency,
        min_subtotal=args.min_subtotal,
        applies_to=args.applies_to,
        starts_at=args.starts_at,
        ends_at=args.ends_at,
        max_redemptions=args.max_redemptions,
        max_per_customer=args.max_per_customer,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    await _ensure_code_free(ctx, promotion.code)
    try:
        async with ctx.db.savepoint():
            ctx.db.add(promotion)
            await ctx.db.flush()
    except IntegrityError:
        await _ensure_code_free(ctx, args.code)
        raise
    ctx.record_change(promotion_id=promotion.id)
    return await public(ctx, promotion)


async def _ensure_code_free(ctx: ToolContext, code: str) -> None:
    db = ctx.db.unfiltered
    stmt = db.select(Promotion, col(Promotion.code) == code, col(Promotion.status) == PromotionStatus.active)
    existing = await db.first(stmt)
    if existing is not None:
        raise conflict(
            f"The code {code} is already an active promotion: {existing.id}.",
            hint="Choose another code, or deactivate_promotion the existing one first.",
            details={"existing_promotion_id": existing.id, "field": "code"},
        )


@tool(domain=DOMAIN_NAME, title="List promotions", hints="R I", scope="orders:read", route="GET /v1/promotions")
async def list_promotions(ctx: ToolContext, args: ListPromotionsInput) -> PromotionPage:
    """Promotion codes, newest first, with their terms, uses, uses left and discount given."""
    # Marketing codes are the workspace's; a voucher is its customer's (a staff user sees their customers' only).
    if args.vouchers:
        stmt = ctx.db.select(Promotion, col(Promotion.member_id).is_not(None))
    else:
        stmt = ctx.db.unfiltered.select(Promotion, col(Promotion.member_id).is_(None))
    if args.status != "all":
        stmt = stmt.where(col(Promotion.status) == args.status)
    rows, cursor = await ctx.db.page(stmt, col(Promotion.id), args)
    return PromotionPage(items=await public_many(ctx, rows), next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Validate promotion",
    hints="R I",
    scope="orders:read",
    route="POST /v1/promotions/validate",
)
async def validate_promotion(ctx: ToolContext, args: ValidatePromotionInput) -> PromotionCheck:
    """Check a code for a customer and basket without using it: the discount it would give now, or the reason
    it does not apply."""
    member, _ = await members.load(ctx, args.member_id)
    if args.lines is not None:
        basket = await products.for_order(ctx, products.quantities(args.lines))
        subtotal = products.basket_subtotal(basket, args.lines)
    else:
        subtotal = Money(args.subtotal or 0, args.currency or (await ctx.db.workspace()).currency)
    applies_to = AppliesTo.orders if args.applies_to == "orders" else AppliesTo.invoices
    promotion, discount, why = await service.evaluate(
        ctx, code=args.code, member_id=member.id, subtotal=subtotal, applies_to=applies_to
    )
    off = discount.minor if discount is not None else 0
    code = promotion.code if promotion is not None else service.normalise_code(args.code)
    return PromotionCheck(
        code=code,
        valid=why is None,
        reason=None if why is None else why.reason,
        message=why.message if why is not None else f"The code {code} takes {Money(off, subtotal.currency)} off.",
        promotion_id=promotion.id if promotion is not None else None,
        subtotal=subtotal.minor,
        discount=off,
        currency=subtotal.currency,
    )


@tool(
    domain=DOMAIN_NAME,
    title="Deactivate promotion",
    hints="D I",
    scope="orders:write",
    route="POST /v1/promotions/{promotion_id}/deactivate",
)
async def deactivate_promotion(ctx: ToolContext, args: DeactivatePromotionInput) -> PromotionPublic:
    """Stop a promotion code: later orders and invoices cannot use it; discounts given stay. The code is free
    for a new promotion."""
    db = ctx.db.unfiltered
    promotion = await db.get(Promotion, args.promotion_id)
    if promotion is None:
        raise not_found("promotion", args.promotion_id, hint=service.FIND)
    moved = await ctx.transition(
        PROMOTION_LIFECYCLE,
        Promotion,
        promotion.id,
        PromotionStatus.inactive,
        values={"deactivated_at": ctx.now, "updated_at": ctx.now},
        db=db,
    )
    if moved:
        ctx.record_change(promotion_id=promotion.id)
    await db.refresh(promotion)
    return await public(ctx, promotion)


def _redemption(row: Redemption) -> dict[str, object]:
    return {
        "id": row.id,
        "promotion_id": row.promotion_id,
        "target": row.target,
        "status": row.status,
        "amount": row.amount,
        "currency": row.currency,
        "created_at": row.created_at.isoformat(),
        "released_at": row.released_at.isoformat() if row.released_at else None,
    }


MEMBER_LINKS = [
    # A loyalty voucher's code follows its customer: a merged customer keeps their vouchers (no personal data).
    MemberLink("voucher_codes", Promotion, "member_id", OnMerge.move, OnErase.keep),
    # No personal data on a redemption: erase keeps it as it is, under the pseudonymous member id.
    MemberLink("promotion_redemptions", Redemption, "member_id", OnMerge.move, OnErase.keep, export=_redemption),
]

DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[create_promotion, list_promotions, validate_promotion, deactivate_promotion],
    member_links=MEMBER_LINKS,
)
