"""Promotion codes: what a code would give, and redeeming and releasing it for an order or an invoice.

The contract other domains call: `redeem` and `release` (and `Discount`); loyalty issues and withdraws member-only
codes (`issue_member_code`, `withdraw_unused`). Limits are counted in the database: a redemption locks its
promotion row (redeemers of one code take turns, so the per-customer count is exact) and claims a use with a
conditional UPDATE that never passes max_redemptions.

A code with `member_id` (a loyalty voucher) is for that customer only. Promotions are read and written without
the staff viewer's filter (a code is workspace-wide; a voucher's row is linked to its customer for merges).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.core.errors import ErrorCode, FavError, FieldError
from favmcp.core.ids import new_id
from favmcp.core.money import Money, Percent, round_half_up
from favmcp.domains.promotions.lifecycle import PROMOTION_LIFECYCLE
from favmcp.domains.promotions.models import (
    AppliesTo,
    DiscountKind,
    Promotion,
    PromotionStatus,
    Redemption,
    RedemptionStatus,
)
from favmcp.registry.context import ToolContext

FIND = "See the codes with list_promotions."
TARGET_KINDS = {"order": AppliesTo.orders, "invoice": AppliesTo.invoices}

# Why a code does not apply, and the error code a refusal carries.
REASONS: dict[str, ErrorCode] = {
    "not_found": ErrorCode.validation_failed,
    "inactive": ErrorCode.invalid_state,
    "not_started": ErrorCode.invalid_state,
    "expired": ErrorCode.invalid_state,
    "not_applicable": ErrorCode.validation_failed,
    "currency_mismatch": ErrorCode.validation_failed,
    "below_minimum": ErrorCode.validation_failed,
    "limit_reached": ErrorCode.conflict,
    "customer_limit_reached": ErrorCode.conflict,
    "already_redeemed": ErrorCode.conflict,
    "other_customer": ErrorCode.validation_failed,
}

# Member-only codes: a prefix, then characters that cannot be misread (no I, L, O, U; as in the ids).
MEMBER_CODE_PREFIX = "RW-"
MEMBER_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MEMBER_CODE_LENGTH = 10


@dataclass(frozen=True, slots=True)
class Discount:
    """What a redeemed code takes off a subtotal (never more than the subtotal)."""

    promotion_id: str
    code: str
    amount: Money


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    message: str


def normalise_code(code: str) -> str:
    return code.strip().upper()


def refused(refusal: Refusal, code: str, promotion_id: str | None = None) -> FavError:
    """A typed refusal saying why the code does not apply (details.reason is one of REASONS)."""
    return FavError(
        REASONS[refusal.reason],
        refusal.message,
        field_errors=[FieldError(field="promotion_code", message=refusal.reason)],
        hint="Check a code first with validate_promotion; list_promotions shows the codes.",
        details={"reason": refusal.reason, "code": code, "promotion_id": promotion_id},
    )


async def find(ctx: ToolContext, code: str) -> Promotion | None:
    """The newest promotion with this code: the active one if there is one (a code is taken again only after its
    promotion is deactivated), else the latest inactive one (to say it is inactive), else None."""
    db = ctx.db.unfiltered
    stmt = db.select(Promotion, col(Promotion.code) == normalise_code(code))
    return await db.first(stmt.order_by(col(Promotion.id).desc()))


def member_only(promotion: Promotion, member_id: str) -> Refusal | None:
    """A member-only code (a loyalty voucher) refuses every other customer."""
    if promotion.member_id is not None and promotion.member_id != member_id:
        return Refusal("other_customer", f"The code {promotion.code} belongs to another customer.")
    return None


def discount_of(promotion: Promotion, subtotal: Money) -> Money:
    """The discount on `subtotal`: a share rounded half-up, or the fixed amount, never more than the subtotal."""
    if promotion.kind == DiscountKind.percent:
        off = round_half_up(subtotal.minor * Percent.parse(promotion.percent_off or "0").fraction)
    else:
        off = promotion.amount_off or 0
    return Money(max(0, min(off, subtotal.minor)), subtotal.currency)


def check(promotion: Promotion, *, now: datetime, subtotal: Money, applies_to: AppliesTo) -> Refusal | None:
    """Why the promotion does not apply to this basket at this moment, leaving out the usage limits."""
    code = promotion.code
    if promotion.status != PromotionStatus.active:
        return Refusal("inactive", f"The code {code} was deactivated.")
    if promotion.starts_at is not None and now < promotion.starts_at:
        return Refusal("not_started", f"The code {code} is valid from {promotion.starts_at.isoformat()}.")
    if promotion.ends_at is not None and now >= promotion.ends_at:
        return Refusal("expired", f"The code {code} expired at {promotion.ends_at.isoformat()}.")
    if promotion.applies_to not in (AppliesTo.both, applies_to):
        return Refusal("not_applicable", f"The code {code} applies to {promotion.applies_to} only.")
    if subtotal.currency != promotion.currency:
        return Refusal(
            "currency_mismatch", f"The code {code} is for amounts in {promotion.currency}, not {subtotal.currency}."
        )
    if promotion.min_subtotal is not None and subtotal.minor < promotion.min_subtotal:
        least = Money(promotion.min_subtotal, promotion.currency)
        return Refusal(
            "below_minimum", f"The code {code} needs a subtotal of at least {least}; this one is {subtotal}."
        )
    return None


def total_limit(promotion: Promotion) -> Refusal | None:
    if promotion.max_redemptions is not None and promotion.times_redeemed >= promotion.max_redemptions:
        return Refusal(
            "limit_reached", f"The code {promotion.code} has been used its {promotion.max_redemptions} times."
        )
    return None


async def used_by(ctx: ToolContext, promotion_id: str, member_id: str) -> int:
    """Redemptions of the promotion by the member that still count (not released)."""
    return await ctx.db.count(
        Redemption,
        col(Redemption.promotion_id) == promotion_id,
        col(Redemption.member_id) == member_id,
        col(Redemption.status) == RedemptionStatus.redeemed,
    )


def customer_limit(promotion: Promotion, used: int) -> Refusal | None:
    if promotion.max_per_customer is not None and used >= promotion.max_per_customer:
        return Refusal(
            "customer_limit_reached",
            f"This customer has used the code {promotion.code} the {promotion.max_per_customer} time(s) allowed.",
        )
    return None


async def evaluate(
    ctx: ToolContext, *, code: str, member_id: str, subtotal: Money, applies_to: AppliesTo
) -> tuple[Promotion | None, Money | None, Refusal | None]:
    """What the code would give now, without taking it: (promotion, discount, None) or (promotion, None, why not)."""
    promotion = await find(ctx, code)
    if promotion is None:
        return None, None, Refusal("not_found", f"There is no promotion code {normalise_code(code)}.")
    why = member_only(promotion, member_id) or check(promotion, now=ctx.now, subtotal=subtotal, applies_to=applies_to)
    why = why or total_limit(promotion) or customer_limit(promotion, await used_by(ctx, promotion.id, member_id))
    if why is not None:
        return promotion, None, why
    return promotion, discount_of(promotion, subtotal), None


def _applies_to(target: str) -> AppliesTo:
    kind, _, ident = target.partition(":")
    if kind not in TARGET_KINDS or not ident:
        raise ValueError(f"a redemption target is 'order:<id>' or 'invoice:<id>', not {target!r}")
    return TARGET_KINDS[kind]


async def redeem(ctx: ToolContext, *, code: str, member_id: str, subtotal: Money, target: str) -> Discount:
    """Use the code once for `target` ("order:<id>" or "invoice:<id>"): checks the promotion is active, in its
    validity window, for this kind of target, currency and minimum, and within its total and per-customer limits
    (counted under the promotion's row lock), then records the redemption. Refuses with details.reason saying
    why; a refusal writes nothing."""
    applies_to = _applies_to(target)
    found = await find(ctx, code)
    if found is None:
        raise refused(Refusal("not_found", f"There is no promotion code {normalise_code(code)}."), code)
    db = ctx.db.unfiltered
    promotion = await db.get(Promotion, found.id, lock=True)
    if promotion is None:
        raise refused(Refusal("not_found", f"There is no promotion code {normalise_code(code)}."), code)
    why = member_only(promotion, member_id) or check(promotion, now=ctx.now, subtotal=subtotal, applies_to=applies_to)
    if why is None and await _holds(ctx, promotion.id, target):
        why = Refusal("already_redeemed", f"The code {promotion.code} is already applied to {target}.")
    why = why or customer_limit(promotion, await used_by(ctx, promotion.id, member_id))
    if why is not None:
        raise refused(why, promotion.code, promotion.id)
    claimed = await db.update_returning(
        Promotion,
        col(Promotion.id) == promotion.id,
        col(Promotion.status) == PromotionStatus.active,
        or_(col(Promotion.max_redemptions).is_(None), col(Promotion.times_redeemed) < col(Promotion.max_redemptions)),
        values={"times_redeemed": col(Promotion.times_redeemed) + 1},
    )
    if not claimed:
        await db.refresh(promotion)
        raise refused(total_limit(promotion) or Refusal("inactive", "The code is no longer active."), promotion.code)
    amount = discount_of(promotion, subtotal)
    ctx.db.add(
        Redemption(
            id=new_id("red"),
            workspace_id=ctx.workspace_id,
            promotion_id=promotion.id,
            member_id=member_id,
            target=target,
            amount=amount.minor,
            currency=amount.currency,
            created_at=ctx.now,
        )
    )
    await ctx.db.flush()
    return Discount(promotion_id=promotion.id, code=promotion.code, amount=amount)


async def _holds(ctx: ToolContext, promotion_id: str, target: str) -> bool:
    return bool(
        await ctx.db.count(
            Redemption,
            col(Redemption.promotion_id) == promotion_id,
            col(Redemption.target) == target,
            col(Redemption.status) == RedemptionStatus.redeemed,
        )
    )


async def release(ctx: ToolContext, target: str) -> None:
    """Mark the target's redemptions released (nothing is deleted): they no longer count toward the limits. Each
    is released once however often this runs: the conditional UPDATE picks the one caller that gives the use back."""
    stmt = ctx.db.select(
        Redemption, col(Redemption.target) == target, col(Redemption.status) == RedemptionStatus.redeemed
    )
    for redemption in await ctx.db.all(stmt.order_by(col(Redemption.id))):
        won = await ctx.db.update_returning(
            Redemption,
            col(Redemption.id) == redemption.id,
            col(Redemption.status) == RedemptionStatus.redeemed,
            values={"status": RedemptionStatus.released, "released_at": ctx.now},
        )
        if won:
            await ctx.db.unfiltered.update(
                Promotion,
                col(Promotion.id) == redemption.promotion_id,
                col(Promotion.times_redeemed) > 0,
                values={"times_redeemed": col(Promotion.times_redeemed) - 1},
            )


async def usage(ctx: ToolContext, promotion_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per promotion: redemptions that count, released ones, and the discount given by those that count."""
    if not promotion_ids:
        return {}
    stmt = (
        ctx.db.select_columns(
            Redemption,
            col(Redemption.promotion_id),
            col(Redemption.status),
            func.count(),
            func.sum(col(Redemption.amount)),
        )
        .where(col(Redemption.promotion_id).in_(promotion_ids))
        .group_by(col(Redemption.promotion_id), col(Redemption.status))
    )
    out: dict[str, dict[str, Any]] = {pid: {"redeemed": 0, "released": 0, "discount": 0} for pid in promotion_ids}
    for pid, status, n, amount in await ctx.db.rows(stmt):
        key = "redeemed" if status == RedemptionStatus.redeemed else "released"
        out[pid][key] = int(n)
        if key == "redeemed":
            out[pid]["discount"] = int(amount or 0)
    return out


def _member_code(ctx: ToolContext) -> str:
    # 18 random digits (about 60 bits) read as base 32: 10 characters of 50 bits, spread evenly enough.
    n = int(ctx.random.digits(18))
    chars = []
    for _ in range(MEMBER_CODE_LENGTH):
        n, r = divmod(n, len(MEMBER_CODE_ALPHABET))
        chars.append(MEMBER_CODE_ALPHABET[r])
    return MEMBER_CODE_PREFIX + "".join(chars)


async def issue_member_code(
    ctx: ToolContext,
    *,
    member_id: str,
    currency: str,
    percent_off: str | None = None,
    amount_off: int | None = None,
    ends_at: datetime | None = None,
) -> Promotion:
    """A fresh, unguessable single-use code for one customer only (a loyalty voucher): percent_off or amount_off,
    for orders and invoices, valid until ends_at (None: no end)."""
    assert (percent_off is None) != (amount_off is None)
    db = ctx.db.unfiltered
    for attempt in range(5):
        promotion = Promotion(
            id=new_id("prm"),
            workspace_id=ctx.workspace_id,
            code=_member_code(ctx),
            kind=DiscountKind.percent if percent_off is not None else DiscountKind.fixed,
            percent_off=percent_off,
            amount_off=amount_off,
            currency=currency,
            applies_to=AppliesTo.both,
            ends_at=ends_at,
            max_redemptions=1,
            max_per_customer=1,
            member_id=member_id,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        try:
            async with db.savepoint():
                db.add(promotion)
                await db.flush()
        except IntegrityError:  # the code is an active one already (about one in 10^15): draw again
            if attempt == 4:
                raise
            continue
        return promotion
    raise AssertionError("unreachable")


async def withdraw_unused(ctx: ToolContext, promotion_id: str) -> bool:
    """Take back a member-only code that was never used: under its row lock (a redemption takes the same lock), a
    code with no use that counts is deactivated and True returned; a used code (times_redeemed > 0) is final:
    False. An unused code deactivated earlier is withdrawn as it is."""
    db = ctx.db.unfiltered
    promotion = await db.get(Promotion, promotion_id, lock=True)
    if promotion is None or promotion.times_redeemed > 0:
        return False
    if promotion.status == PromotionStatus.active:
        await ctx.transition(
            PROMOTION_LIFECYCLE,
            Promotion,
            promotion.id,
            PromotionStatus.inactive,
            values={"deactivated_at": ctx.now, "updated_at": ctx.now},
            db=db,
        )
    return True


async def load_many(ctx: ToolContext, promotion_ids: list[str]) -> dict[str, Promotion]:
    """Promotions by id (a member-only code is used once its times_redeemed is above 0)."""
    if not promotion_ids:
        return {}
    db = ctx.db.unfiltered
    return {p.id: p for p in await db.all(db.select(Promotion, col(Promotion.id).in_(promotion_ids)))}
