"""The points tools: the program, a customer's balance and tier progress, earning, redeeming and adjusting by
hand, the ledger, and expiry (also run hourly by itself).

Writes name an active customer: their row is locked first (as payments and merges do), then their points account
(ledger.account), so a merge or an erase never interleaves with a change of their points. A merged id is refused
with the survivor's id (a write never silently lands on another customer); reads follow it to the survivor.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col

from favmcp.core.errors import FieldError, validation_failed
from favmcp.domains.loyalty import earning, ledger, rewards
from favmcp.domains.loyalty.models import EntryKind, LoyaltyProgram, PointsEntry, PointsLot
from favmcp.domains.loyalty.program import ProductRule, SpendRule, VisitRule, load_program
from favmcp.domains.loyalty.schemas import (
    AdjustPointsInput,
    EarnPointsInput,
    ExpirePointsInput,
    ExpiryCounts,
    GetLoyaltyProgramInput,
    ListPointsTransactionsInput,
    LoyaltyProgramPublic,
    MemberInput,
    PointsBalance,
    PointsEntryPage,
    PointsEntryPublic,
    PointsMoved,
    RedeemPointsInput,
    TierProgress,
    UpdateLoyaltyProgramInput,
)
from favmcp.domains.members import service as members
from favmcp.domains.members.models import Member, MemberStatus
from favmcp.domains.products.models import Product
from favmcp.domains.services.models import Service
from favmcp.domains.subscriptions.models import Plan
from favmcp.domains.tiers import standing
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import ToolSpec, tool

DOMAIN_NAME = "loyalty"
FIELDS = ("enabled", "earn_rules", "expiry_days", "min_redeem_points", "tier_basis")
EXPIRING_WITHIN = timedelta(days=30)


# -- the program -----------------------------------------------------------------------------------------------------


def _program_public(found: LoyaltyProgram, saved: bool) -> LoyaltyProgramPublic:
    return LoyaltyProgramPublic(
        enabled=found.enabled,
        earn_rules=found.earn_rules,  # dicts, validated into the rule models
        expiry_days=found.expiry_days,
        min_redeem_points=found.min_redeem_points,
        tier_basis=found.tier_basis,
        saved=saved,
        updated_at=found.updated_at if saved else None,
    )


@tool(
    domain=DOMAIN_NAME, title="Get loyalty program", hints="R I", scope="loyalty:read", route="GET /v1/loyalty/program"
)
async def get_loyalty_program(ctx: ToolContext, args: GetLoyaltyProgramInput) -> LoyaltyProgramPublic:
    """The loyalty program: on or off, earn rules (per visit, per currency unit paid, per product), points
    expiry, the minimum redemption, the tier basis."""
    found = await ctx.db.first(ctx.db.select(LoyaltyProgram))
    return _program_public(found or await load_program(ctx), found is not None)


async def _check_rules(ctx: ToolContext, rules: list[VisitRule | SpendRule | ProductRule]) -> None:
    """Every service, plan and product a rule names exists in this workspace."""
    errors = []
    for i, rule in enumerate(rules):
        named: tuple[str, Any, str | None]
        if isinstance(rule, VisitRule):
            named = ("service_id", Service, rule.service_id)
        elif isinstance(rule, SpendRule):
            named = ("plan_id", Plan, rule.plan_id)
        else:
            named = ("product_id", Product, rule.product_id)
        field, model, ident = named
        if ident is not None and await ctx.db.unfiltered.get(model, ident) is None:
            errors.append(FieldError(field=f"earn_rules[{i}].{field}", message=f"no such {field[:-3]}"))
    if errors:
        raise validation_failed("An earn rule names something that does not exist.", errors)


@tool(
    domain=DOMAIN_NAME,
    title="Update loyalty program",
    hints="W I",
    scope="loyalty:admin",
    route="PATCH /v1/loyalty/program",
)
async def update_loyalty_program(ctx: ToolContext, args: UpdateLoyaltyProgramInput) -> LoyaltyProgramPublic:
    """Change the program; fields left out stay, earn_rules replaces the list. Refuses rules naming unknown
    services, plans or products."""
    given = args.model_dump(exclude_unset=True, exclude={"idempotency_key"}, mode="json")
    if args.earn_rules is not None:
        await _check_rules(ctx, args.earn_rules)
    defaults = await load_program(ctx)
    saved, changed = await ctx.db.save_settings(
        LoyaltyProgram, {name: getattr(defaults, name) for name in FIELDS}, given, now=ctx.now
    )
    if changed:
        ctx.record_change(fields=changed)
    return _program_public(saved, True)


# -- balance ---------------------------------------------------------------------------------------------------------


async def _progress(ctx: ToolContext, member_id: str, program: LoyaltyProgram) -> TierProgress:
    tiers = await standing.ladder(ctx)
    acct = await ledger.find_account(ctx, member_id)
    in_effect = standing.effective_tier_id(acct) if acct is not None else None
    tier = next((t for t in tiers if t.id == in_effect), None)
    figure = await standing.standing(ctx, member_id, program)
    floor = max(figure, tier.threshold if tier is not None else -1)
    upcoming = next((t for t in tiers if t.threshold > floor), None)
    return TierProgress(
        tier_id=tier.id if tier is not None else None,
        tier_name=tier.name if tier is not None else None,
        manual=acct is not None and acct.manual_tier_id is not None,
        basis=program.tier_basis,
        standing=figure,
        next_tier_id=upcoming.id if upcoming is not None else None,
        next_tier_name=upcoming.name if upcoming is not None else None,
        needed=upcoming.threshold - figure if upcoming is not None else None,
    )


@tool(
    domain=DOMAIN_NAME,
    title="Get points balance",
    hints="R I",
    scope="loyalty:read",
    route="GET /v1/members/{member_id}/points",
)
async def get_points_balance(ctx: ToolContext, args: MemberInput) -> PointsBalance:
    """A customer's points, those expiring in the next 30 days, and their tier with what the next one needs."""
    member, _ = await members.load(ctx, args.member_id)
    acct = await ledger.find_account(ctx, member.id)
    soon = ctx.db.select_columns(
        PointsLot, func.coalesce(func.sum(col(PointsLot.remaining)), 0), func.min(col(PointsLot.expires_at))
    ).where(
        col(PointsLot.member_id) == member.id,
        col(PointsLot.remaining) > 0,
        col(PointsLot.expires_at) <= ctx.now + EXPIRING_WITHIN,
    )
    [(expiring, first_at)] = await ctx.db.rows(soon)
    return PointsBalance(
        member_id=member.id,
        points=acct.balance if acct is not None else 0,
        points_expiring=int(expiring),
        expiring_first_at=first_at,
        tier=await _progress(ctx, member.id, await load_program(ctx)),
        vouchers=await rewards.member_vouchers(ctx, member.id, usable_only=True),
    )


# -- changes by hand -------------------------------------------------------------------------------------------------


def entry_public(entry: PointsEntry) -> PointsEntryPublic:
    return PointsEntryPublic(
        id=entry.id,
        member_id=entry.member_id,
        kind=entry.kind,
        points=entry.points,
        source=entry.source,
        reason=entry.reason,
        expires_at=entry.expires_at,
        shortfall=entry.shortfall,
        actor=entry.actor,
        created_at=entry.created_at,
    )


async def _moved(ctx: ToolContext, entry: PointsEntry, balance: int) -> PointsMoved:
    ctx.record_change(member_id=entry.member_id, entry_id=entry.id, kind=entry.kind.value)
    return PointsMoved(entry=entry_public(entry), points_after=balance)


@tool(
    domain=DOMAIN_NAME,
    title="Earn loyalty points",
    hints="W I",
    scope="loyalty:write",
    route="POST /v1/members/{member_id}/points/earn",
)
async def earn_loyalty_points(ctx: ToolContext, args: EarnPointsInput) -> PointsMoved:
    """Credit points to a customer by hand, with a reason (no tier multiplier). Send an idempotency_key: a retry
    never credits twice."""
    member = await members.load_for_write(ctx, args.member_id)
    entry = await earning.earn(ctx, member.id, args.points, source=None, reason=args.reason, multiply=False)
    assert entry is not None  # no source: always a new entry
    acct = await ledger.account(ctx, member.id)
    return await _moved(ctx, entry, acct.balance)


@tool(
    domain=DOMAIN_NAME,
    title="Redeem loyalty points",
    hints="W",
    scope="loyalty:write",
    route="POST /v1/members/{member_id}/points/redeem",
)
async def redeem_loyalty_points(ctx: ToolContext, args: RedeemPointsInput) -> PointsMoved:
    """Spend a customer's points, soonest-expiring first. Refuses fewer than min_redeem_points and more than the
    balance. For a reward use redeem_reward."""
    member = await members.load_for_write(ctx, args.member_id)
    program = await load_program(ctx)
    if args.points < program.min_redeem_points:
        raise validation_failed(
            f"At least {program.min_redeem_points} points are redeemed at a time.",
            [FieldError(field="points", message=f"at least {program.min_redeem_points}")],
        )
    acct = await ledger.account(ctx, member.id)
    entry = await ledger.debit(ctx, acct, args.points, kind=EntryKind.redeem, reason=args.reason)
    return await _moved(ctx, entry, acct.balance)


@tool(
    domain=DOMAIN_NAME,
    title="Adjust loyalty points",
    hints="W",
    scope="loyalty:admin",
    route="POST /v1/members/{member_id}/points/adjust",
)
async def adjust_loyalty_points(ctx: ToolContext, args: AdjustPointsInput) -> PointsMoved:
    """Correct a customer's points up or down, with a reason; refuses taking more than the balance."""
    if args.points == 0:
        raise validation_failed("An adjustment moves points.", [FieldError(field="points", message="not 0")])
    member = await members.load_for_write(ctx, args.member_id)
    acct = await ledger.account(ctx, member.id)
    kind = EntryKind.adjust
    if args.points > 0:
        program = await load_program(ctx)
        expires_at = ledger.expiry_from(program, ctx.now)
        credited = await ledger.credit(ctx, acct, args.points, kind=kind, expires_at=expires_at, reason=args.reason)
        assert credited is not None  # no source: always a new entry
        entry = credited
    else:
        entry = await ledger.debit(ctx, acct, -args.points, kind=kind, reason=args.reason)
    return await _moved(ctx, entry, acct.balance)


# -- the ledger ------------------------------------------------------------------------------------------------------


@tool(
    domain=DOMAIN_NAME,
    title="List points transactions",
    hints="R I",
    scope="loyalty:read",
    route="GET /v1/loyalty/transactions",
)
async def list_points_transactions(ctx: ToolContext, args: ListPointsTransactionsInput) -> PointsEntryPage:
    """The points ledger, newest first, of one customer or the workspace; filters kind and created in
    [created_from, created_before)."""
    stmt = ctx.db.select(PointsEntry)
    if args.member_id is not None:
        member, _ = await members.load(ctx, args.member_id)
        stmt = stmt.where(col(PointsEntry.member_id) == member.id)
    if args.kind is not None:
        stmt = stmt.where(col(PointsEntry.kind) == args.kind)
    if args.created_from is not None:
        stmt = stmt.where(col(PointsEntry.created_at) >= args.created_from)
    if args.created_before is not None:
        stmt = stmt.where(col(PointsEntry.created_at) < args.created_before)
    page, cursor = await ctx.db.page(stmt, col(PointsEntry.id), args)
    return PointsEntryPage(items=[entry_public(e) for e in page], next_cursor=cursor, has_more=cursor is not None)


# -- expiry ----------------------------------------------------------------------------------------------------------


async def run_expiry(ctx: ToolContext, up_to: datetime, member_id: str | None = None) -> ExpiryCounts:
    """Write off what lots expired by `up_to` have left, one expire entry per lot, once however often or however
    concurrently it runs. Per customer, in member-id order: their row lock (a merge moving their lots waits, or
    has moved them: a merged customer is skipped, the survivor's turn comes), then their account's."""
    due: dict[str, list[str]] = defaultdict(list)
    for member, lot in await ledger.due_lots(ctx, up_to, member_id):
        due[member].append(lot)
    lots = points = 0
    touched = set()
    for member_id_ in sorted(due):
        found = await ctx.db.unfiltered.get(Member, member_id_, lock=True, fresh=True)
        if found is None or found.status == MemberStatus.merged:
            continue
        acct = await ledger.account(ctx, member_id_)
        for lot_id in due[member_id_]:
            entry = await ledger.expire_lot(ctx, acct, lot_id, up_to)
            if entry is not None:
                lots += 1
                points -= entry.points
                touched.add(member_id_)
    if lots:
        ctx.record_change(expired_lots=lots, expired_points=points)
    return ExpiryCounts(up_to=up_to, lots=lots, points=points, members=len(touched))


@tool(
    domain=DOMAIN_NAME, title="Expire points", hints="W I", scope="loyalty:admin", route="POST /v1/loyalty/expirations"
)
async def expire_points(ctx: ToolContext, args: ExpirePointsInput) -> ExpiryCounts:
    """Write off points whose expiry passed by up_to (default now), optionally for one customer; each expired
    earn once. Runs hourly by itself."""
    up_to = args.up_to or ctx.now
    if up_to > ctx.now:
        raise validation_failed(
            "Points cannot be expired ahead of time.", [FieldError(field="up_to", message="now or earlier")]
        )
    member_id = None
    if args.member_id is not None:
        member, _ = await members.load(ctx, args.member_id)
        member_id = member.id
    return await run_expiry(ctx, up_to, member_id)


async def hourly_expiry(ctx: ToolContext) -> None:
    await run_expiry(ctx, ctx.now)


TOOLS: list[ToolSpec] = [
    get_loyalty_program,
    update_loyalty_program,
    get_points_balance,
    earn_loyalty_points,
    redeem_loyalty_points,
    adjust_loyalty_points,
    list_points_transactions,
    expire_points,
]
