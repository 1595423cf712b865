"""Rewards and vouchers: what points buy, and the single-use codes a redemption issues.

A voucher is a member-only promotion code (promotions.issue_member_code): used once on an invoice or order through
the promotions machinery, by its customer only; used means its code's redemption counts (times_redeemed > 0), so a
code released by a repriced or voided draft is unused again, and a used voucher is final. Locks: the customer's row,
their points account (ledger.account), then the reward row (the stock), then a voucher's code; archive_reward takes
the accounts of the vouchers it withdraws before the reward row, in member-id order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, or_
from sqlmodel import col

from favmcp.core.errors import FieldError, conflict, invalid_state, not_found, validation_failed
from favmcp.core.ids import new_id
from favmcp.domains.loyalty import ledger
from favmcp.domains.loyalty.events import RewardRedeemed, VoucherWithdrawn
from favmcp.domains.loyalty.models import EntryKind, Reward, RewardKind, RewardStatus, Voucher, VoucherStatus
from favmcp.domains.loyalty.program import load_program
from favmcp.domains.loyalty.reward_schemas import (
    ArchivedReward,
    ArchiveRewardInput,
    CreateRewardInput,
    ListRewardsInput,
    RedeemRewardInput,
    RewardPage,
    RewardPublic,
    VoucherPublic,
)
from favmcp.domains.members import service as members
from favmcp.domains.products import service as products
from favmcp.domains.promotions import service as promotions
from favmcp.domains.promotions.models import Promotion
from favmcp.domains.services import service as services
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import ToolSpec, tool

DOMAIN_NAME = "loyalty"
FIND = "See the rewards with list_rewards."


# -- reading -------------------------------------------------------------------------------------------------------


async def _issued_counts(ctx: ToolContext, reward_ids: list[str]) -> dict[str, int]:
    """Vouchers not withdrawn, per reward (a count, so the whole workspace's whoever asks)."""
    if not reward_ids:
        return {}
    db = ctx.db.unfiltered
    stmt = (
        db.select_columns(Voucher, col(Voucher.reward_id), func.count())
        .where(col(Voucher.reward_id).in_(reward_ids), col(Voucher.status) == VoucherStatus.issued)
        .group_by(col(Voucher.reward_id))
    )
    return {rid: int(n) for rid, n in await db.rows(stmt)}


async def _public_many(ctx: ToolContext, rewards: Sequence[Reward]) -> list[RewardPublic]:
    issued = await _issued_counts(ctx, [r.id for r in rewards])
    return [RewardPublic.model_validate({**r.model_dump(), "vouchers_issued": issued.get(r.id, 0)}) for r in rewards]


async def _public(ctx: ToolContext, reward: Reward) -> RewardPublic:
    return (await _public_many(ctx, [reward]))[0]


def _voucher_public(voucher: Voucher, promotion: Promotion) -> VoucherPublic:
    return VoucherPublic(
        id=voucher.id,
        code=voucher.code,
        member_id=voucher.member_id,
        reward_id=voucher.reward_id,
        points=voucher.points,
        percent_off=promotion.percent_off,
        amount_off=promotion.amount_off,
        currency=promotion.currency,
        expires_at=voucher.expires_at,
        status=voucher.status,
        used=promotion.times_redeemed > 0,
    )


async def member_vouchers(
    ctx: ToolContext, member_id: str, limit: int = 20, *, usable_only: bool = False
) -> list[VoucherPublic]:
    """A customer's vouchers, newest first, each saying whether it was used; usable_only: those issued, not
    expired and not used (for get_points_balance)."""
    stmt = ctx.db.select(Voucher, col(Voucher.member_id) == member_id)
    if usable_only:
        stmt = stmt.where(
            col(Voucher.status) == VoucherStatus.issued,
            or_(col(Voucher.expires_at).is_(None), col(Voucher.expires_at) > ctx.now),
        )
    vouchers = await ctx.db.all(stmt.order_by(col(Voucher.id).desc()).limit(limit))
    codes = await promotions.load_many(ctx, [v.promotion_id for v in vouchers])
    found = [_voucher_public(v, codes[v.promotion_id]) for v in vouchers]
    return [v for v in found if not (usable_only and v.used)]


async def _load(ctx: ToolContext, reward_id: str) -> Reward:
    reward = await ctx.db.get(Reward, reward_id, fresh=True)
    if reward is None:
        raise not_found("reward", reward_id, hint=FIND)
    return reward


def _archived(reward: Reward) -> Exception:
    return invalid_state(
        f"Reward {reward.name} ({reward.id}) is archived: it cannot be redeemed any more.",
        current=reward.status,
        allowed=[RewardStatus.active],
        hint=FIND,
        reward_id=reward.id,
    )


# -- creating ------------------------------------------------------------------------------------------------------


def _terms_errors(args: CreateRewardInput) -> list[FieldError]:
    """What does not fit the kind: a free service names a service only, a free product a product only, a
    discount a percentage or an amount (with its currency) and nothing else."""
    given = {
        "service_id": args.service_id is not None,
        "product_id": args.product_id is not None,
        "percent_off": args.percent_off is not None,
        "amount_off": args.amount_off is not None,
        "currency": args.currency is not None,
    }
    if args.kind == RewardKind.free_service:
        needed, allowed = {"service_id"}, {"service_id"}
    elif args.kind == RewardKind.free_product:
        needed, allowed = {"product_id"}, {"product_id"}
    else:
        needed, allowed = set(), {"percent_off", "amount_off", "currency"}
    errors = [FieldError(field=f, message=f"required for a {args.kind} reward") for f in sorted(needed) if not given[f]]
    errors += [
        FieldError(field=f, message=f"not for a {args.kind} reward")
        for f in sorted(given)
        if given[f] and f not in allowed
    ]
    if args.kind == RewardKind.discount:
        if given["percent_off"] == given["amount_off"]:
            errors += [
                FieldError(field=f, message="give exactly one of percent_off and amount_off")
                for f in ("percent_off", "amount_off")
            ]
        elif args.percent_off is not None and args.percent_off.value <= 0:
            errors.append(FieldError(field="percent_off", message="more than 0"))
    return errors


@tool(domain=DOMAIN_NAME, title="Create reward", hints="W", scope="loyalty:admin", route="POST /v1/rewards")
async def create_reward(ctx: ToolContext, args: CreateRewardInput) -> RewardPublic:
    """Add a reward: free_service (service_id; a voucher worth its price), free_product (product_id) or discount
    (percent_off, or amount_off and currency), for points_cost points; optional stock and voucher validity.
    Refuses terms that do not fit the kind."""
    errors = _terms_errors(args)
    if errors:
        raise validation_failed(f"These fields do not fit a {args.kind} reward.", errors)
    currency = args.currency
    if args.service_id is not None:
        service = await services.load_bookable(ctx, args.service_id)
        currency = service.currency
    elif args.product_id is not None:
        product = await products.load(ctx, args.product_id)
        products.ensure_active(product)
        currency = product.currency
    reward = ctx.db.add(
        Reward(
            id=new_id("rwd"),
            workspace_id=ctx.workspace_id,
            name=args.name,
            description=args.description,
            kind=args.kind,
            service_id=args.service_id,
            product_id=args.product_id,
            percent_off=None if args.percent_off is None else str(args.percent_off),
            amount_off=args.amount_off,
            currency=currency or (await ctx.db.workspace()).currency,
            points_cost=args.points_cost,
            stock=args.stock,
            voucher_valid_days=args.voucher_valid_days,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    )
    await ctx.db.flush()
    ctx.record_change(reward_id=reward.id)
    return await _public(ctx, reward)


@tool(domain=DOMAIN_NAME, title="List rewards", hints="R I", scope="loyalty:read", route="GET /v1/rewards")
async def list_rewards(ctx: ToolContext, args: ListRewardsInput) -> RewardPage:
    """The rewards catalogue, newest first (active ones unless status says otherwise), with point cost, stock left
    and vouchers issued."""
    stmt = ctx.db.select(Reward)
    if args.status != "all":
        stmt = stmt.where(col(Reward.status) == args.status)
    rows, cursor = await ctx.db.page(stmt, col(Reward.id), args)
    return RewardPage(items=await _public_many(ctx, rows), next_cursor=cursor, has_more=cursor is not None)


# -- redeeming -----------------------------------------------------------------------------------------------------


async def _value(ctx: ToolContext, reward: Reward) -> tuple[str | None, int | None, str]:
    """What the voucher takes off: (percent_off, amount_off, currency); a free service or product is worth its
    price now, in its currency."""
    if reward.kind == RewardKind.free_service:
        assert reward.service_id is not None
        service = await services.load(ctx, reward.service_id)
        return None, service.unit_amount, service.currency
    if reward.kind == RewardKind.free_product:
        assert reward.product_id is not None
        product = await products.load(ctx, reward.product_id)
        return None, product.unit_amount, product.currency
    return reward.percent_off, reward.amount_off, reward.currency


@tool(
    domain=DOMAIN_NAME,
    title="Redeem reward",
    hints="W",
    scope="loyalty:write",
    route="POST /v1/rewards/{reward_id}/redemptions",
)
async def redeem_reward(ctx: ToolContext, args: RedeemRewardInput) -> VoucherPublic:
    """Exchange a customer's points for a reward: debits its points_cost and issues a single-use voucher code for
    that customer only (use it as the promotion_code of an invoice or order). Refuses too few points, an archived
    reward and one out of stock."""
    member = await members.load_for_write(ctx, args.member_id)
    reward = await _load(ctx, args.reward_id)
    if reward.status != RewardStatus.active:
        raise _archived(reward)
    acct = await ledger.account(ctx, member.id)
    if acct.balance < reward.points_cost:
        raise ledger.insufficient(acct, reward.points_cost)
    # One from stock, by a conditional UPDATE (NULL stock stays NULL): the last one goes once.
    taken = await ctx.db.update_returning(
        Reward,
        col(Reward.id) == reward.id,
        col(Reward.status) == RewardStatus.active,
        or_(col(Reward.stock).is_(None), col(Reward.stock) > 0),
        values={"stock": col(Reward.stock) - 1, "updated_at": ctx.now},
    )
    reward = await _load(ctx, reward.id)
    if not taken:
        if reward.status != RewardStatus.active:
            raise _archived(reward)
        raise conflict(
            f"Reward {reward.name} ({reward.id}) is out of stock.",
            hint=FIND,
            details={"reason": "out_of_stock", "reward_id": reward.id},
        )
    voucher_id = new_id("vch")
    await ledger.debit(
        ctx,
        acct,
        reward.points_cost,
        kind=EntryKind.redeem,
        source=f"voucher:{voucher_id}",
        reason=f"Reward {reward.id}",
    )
    percent_off, amount_off, currency = await _value(ctx, reward)
    ends_at = ctx.now + timedelta(days=reward.voucher_valid_days) if reward.voucher_valid_days else None
    promotion = await promotions.issue_member_code(
        ctx, member_id=member.id, currency=currency, percent_off=percent_off, amount_off=amount_off, ends_at=ends_at
    )
    voucher = ctx.db.unfiltered.add(
        Voucher(
            id=voucher_id,
            workspace_id=ctx.workspace_id,
            member_id=member.id,
            reward_id=reward.id,
            promotion_id=promotion.id,
            code=promotion.code,
            points=reward.points_cost,
            expires_at=ends_at,
            created_at=ctx.now,
        )
    )
    await ctx.db.flush()
    ctx.emit(RewardRedeemed(member_id=member.id, reward_id=reward.id, voucher_id=voucher.id, points=voucher.points))
    ctx.record_change(voucher_id=voucher.id, reward_id=reward.id, member_id=member.id, promotion_id=promotion.id)
    return _voucher_public(voucher, promotion)


# -- archiving -----------------------------------------------------------------------------------------------------


async def _issued(ctx: ToolContext, reward_id: str) -> list[Voucher]:
    db = ctx.db.unfiltered
    stmt = db.select(Voucher, col(Voucher.reward_id) == reward_id, col(Voucher.status) == VoucherStatus.issued)
    return await db.all(stmt.order_by(col(Voucher.member_id), col(Voucher.id)))


async def _withdraw(ctx: ToolContext, voucher: Voucher) -> int | None:
    """Take back one unused voucher and return its points, once; None when it was used (final) or withdrawn
    already. The customer's account is locked (the caller's order), then the code's row: a use of the code on a
    document takes that lock too, so the voucher is either used or withdrawn, never both."""
    acct = await ledger.account(ctx, voucher.member_id)
    if not await promotions.withdraw_unused(ctx, voucher.promotion_id):
        return None
    won = await ctx.db.unfiltered.update_returning(
        Voucher,
        col(Voucher.id) == voucher.id,
        col(Voucher.status) == VoucherStatus.issued,
        values={"status": VoucherStatus.withdrawn, "withdrawn_at": ctx.now},
    )
    if not won:
        return None
    program = await load_program(ctx)
    entry = await ledger.credit(
        ctx,
        acct,
        voucher.points,
        kind=EntryKind.reversal,
        expires_at=ledger.expiry_from(program, ctx.now),
        source=f"voucher:{voucher.id}",
        reason=f"Voucher {voucher.id} withdrawn",
    )
    returned = voucher.points if entry is not None else 0
    ctx.emit(
        VoucherWithdrawn(member_id=acct.member_id, reward_id=voucher.reward_id, voucher_id=voucher.id, points=returned)
    )
    return returned


@tool(
    domain=DOMAIN_NAME,
    title="Archive reward",
    hints="D I",
    scope="loyalty:admin",
    route="DELETE /v1/rewards/{reward_id}",
)
async def archive_reward(ctx: ToolContext, args: ArchiveRewardInput) -> ArchivedReward:
    """Stop new redemptions of a reward; issued vouchers stay valid. withdraw_unused also takes back every voucher
    not yet used (its code stops working) and returns its points; used vouchers are final. Repeating changes
    nothing."""
    reward = await _load(ctx, args.reward_id)
    locked: set[str] = set()
    if args.withdraw_unused:
        # The holders' accounts first (member-id order), as redeem_reward takes an account before the reward row.
        for member_id in sorted({v.member_id for v in await _issued(ctx, reward.id)}):
            await ledger.account(ctx, member_id)
            locked.add(member_id)
    archived = await ctx.db.update_returning(
        Reward,
        col(Reward.id) == reward.id,
        col(Reward.status) == RewardStatus.active,
        values={"status": RewardStatus.archived, "archived_at": ctx.now, "updated_at": ctx.now},
    )
    withdrawn, returned = 0, 0
    if args.withdraw_unused:
        # Read again under the reward's row lock: a redemption that got in first has committed, none can follow.
        for voucher in await _issued(ctx, reward.id):
            points = await _withdraw(ctx, voucher)
            if points is not None:
                withdrawn += 1
                returned += points
    if archived or withdrawn:
        ctx.record_change(reward_id=reward.id, status=RewardStatus.archived, vouchers_withdrawn=withdrawn)
    reward = await _load(ctx, reward.id)
    return ArchivedReward(reward=await _public(ctx, reward), vouchers_withdrawn=withdrawn, points_returned=returned)


TOOLS: list[ToolSpec] = [create_reward, list_rewards, archive_reward, redeem_reward]
