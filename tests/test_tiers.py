"""Tiers: the ladder and its validation, the threshold edge on both bases (reaching it qualifies), promotion on
earn, demotion only by the daily evaluation, a manual tier that survives evaluations until cleared, the tier in
the profile and in search, and a merge that sums the points and keeps the higher tier."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from favmcp.app import App
from favmcp.domains.loyalty import earning, ledger
from favmcp.domains.loyalty.models import EntryKind, LoyaltyAccount, LoyaltyProgram, PointsEntry, PointsLot, TierBasis
from favmcp.domains.tiers.tools import DOMAIN, evaluate_all
from favmcp.registry.context import ToolContext
from favmcp.registry.models import EventRecord
from tests.support import FakeClock, Owner, call, confirmed, error_code, gather, join, unique_email
from tests.test_payments import open_invoice, record

N = 12


async def ok(app: App, owner: Owner, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


async def new_member(app: App, owner: Owner, name: str = "Ada") -> str:
    return str((await ok(app, owner, "create_member", {"name": name, "email": unique_email("t")}))["id"])


async def tier(app: App, owner: Owner, name: str, threshold: int, **fields: Any) -> str:
    return str((await ok(app, owner, "create_membership_tier", {"name": name, "threshold": threshold, **fields}))["id"])


async def earn(app: App, owner: Owner, member_id: str, points: int, *, multiply: bool = False) -> None:
    """Points earned by hand (earn_loyalty_points: no multiplier), or as an earning subscriber earns them (times
    the tier's multiplier); the tier is promoted after either."""
    if not multiply:
        await ok(app, owner, "earn_loyalty_points", {"member_id": member_id, "points": points, "reason": "test"})
        return

    async def work(ctx: ToolContext) -> None:
        await earning.earn(ctx, member_id, points, source=f"test:{uuid.uuid4().hex}", multiply=multiply)

    await app.runner.run_system(owner.workspace_id, "test", work)


async def evaluate(app: App, owner: Owner) -> int:
    """The daily job's run, as the worker runs it (its own run, counting what changed)."""
    assert [(j.name, j.every) for j in DOMAIN.jobs] == [("tier_evaluation", timedelta(days=1))]
    return await app.runner.run_system(owner.workspace_id, "job:tier_evaluation", evaluate_all)


async def set_basis(app: App, owner: Owner, basis: TierBasis) -> None:
    async def work(ctx: ToolContext) -> None:
        ctx.db.add(LoyaltyProgram(workspace_id=ctx.workspace_id, tier_basis=basis, updated_at=ctx.now))
        await ctx.db.flush()

    await app.runner.run_system(owner.workspace_id, "test", work)


async def loyalty(app: App, owner: Owner, member_id: str) -> dict[str, Any]:
    return (await ok(app, owner, "get_member_profile", {"member_id": member_id}))["loyalty"]


async def tier_of(app: App, owner: Owner, member_id: str) -> str | None:
    return (await loyalty(app, owner, member_id))["tier_id"]


async def tier_events(app: App, owner: Owner) -> list[dict[str, Any]]:
    async with app.db.transaction() as session:
        stmt = (
            select(EventRecord)
            .where(col(EventRecord.workspace_id) == owner.workspace_id, col(EventRecord.name) == "tier.changed")
            .order_by(col(EventRecord.id))
        )
        return [
            {k: e.payload[k] for k in ("member_id", "previous_tier_id", "tier_id", "manual")}
            for e in (await session.execute(stmt)).scalars()
        ]


async def test_create_list_update_validate_and_keep_names_and_thresholds_unique(app: App, owner: Owner) -> None:
    silver = await ok(
        app,
        owner,
        "create_membership_tier",
        {"name": "Silver", "threshold": 100, "earn_multiplier": "1.50", "discount_percent": "5", "benefits": "Tea"},
    )
    assert silver["earn_multiplier"] == "1.5" and silver["discount_percent"] == "5" and silver["customers"] == 0
    gold = await tier(app, owner, "Gold", 500)
    base = await tier(app, owner, "Base", 0)
    ladder = await ok(app, owner, "list_membership_tiers")
    assert ladder["basis"] == "points_12_months" and ladder["currency"] == "EUR"
    assert [t["id"] for t in ladder["items"]] == [base, silver["id"], gold]
    assert next(t for t in ladder["items"] if t["id"] == gold)["earn_multiplier"] == "1"
    for bad in (
        {"name": "X", "threshold": 1, "earn_multiplier": "0.5"},
        {"name": "X", "threshold": 1, "earn_multiplier": "11"},
        {"name": "X", "threshold": 1, "earn_multiplier": "1.234"},
        {"name": "X", "threshold": 1, "earn_multiplier": 2},
        {"name": "X", "threshold": -1},
        {"name": "", "threshold": 1},
        {"name": "X", "threshold": 1, "discount_percent": "101"},
    ):
        assert error_code(await call(app, owner.key, "create_membership_tier", bad)) == "validation_failed", bad
    for clash, field in (
        ({"name": "Gold", "threshold": 7}, "name"),
        ({"name": "Platinum", "threshold": 500}, "threshold"),
    ):
        refused = await call(app, owner.key, "create_membership_tier", clash)
        assert error_code(refused) == "conflict"
        assert refused.data["error"]["details"] == {"existing_tier_id": gold, "field": field}
    assert len((await ok(app, owner, "list_membership_tiers"))["items"]) == 3, "refusals change nothing"

    update = {"tier_id": silver["id"]}
    moved = await ok(app, owner, "update_membership_tier", {**update, "name": "Silver+", "discount_percent": None})
    assert moved["name"] == "Silver+" and moved["discount_percent"] is None and moved["benefits"] == "Tea"
    clash = await call(app, owner.key, "update_membership_tier", {**update, "threshold": 500})
    assert clash.data["error"]["details"]["existing_tier_id"] == gold
    assert error_code(await call(app, owner.key, "update_membership_tier", {**update, "name": None})) == (
        "validation_failed"
    )
    missing = await call(app, owner.key, "update_membership_tier", {"tier_id": "tie_nope", "name": "Y"})
    assert error_code(missing) == "not_found"
    same = await ok(app, owner, "update_membership_tier", {**update, "threshold": 100, "earn_multiplier": "1.5"})
    assert same["updated_at"] == moved["updated_at"], "no change, nothing written"

    # Concurrent creates of one name (each with its own threshold), then of one threshold: one wins each time.
    for args in (
        [{"name": "Platinum", "threshold": 1000 + i} for i in range(N)],
        [{"name": f"Diamond {i}", "threshold": 5000} for i in range(N)],
    ):
        outs = await gather(*[call(app, owner.key, "create_membership_tier", a) for a in args])
        winners = [o.data["id"] for o in outs if o.ok]
        assert len(winners) == 1, [o.data for o in outs]
        assert all(o.data["error"]["details"]["existing_tier_id"] == winners[0] for o in outs if not o.ok)
    assert len((await ok(app, owner, "list_membership_tiers"))["items"]) == 5


async def test_points_basis_edge_promotion_on_earn_and_demotion_only_by_the_daily_job(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    silver = await tier(app, owner, "Silver", 100, earn_multiplier="1.5")
    gold = await tier(app, owner, "Gold", 200)
    below, exact = await new_member(app, owner, "Below"), await new_member(app, owner, "Exact")
    await earn(app, owner, below, 99)
    await earn(app, owner, exact, 100)
    assert await tier_of(app, owner, below) is None, "one below the threshold does not qualify"
    assert await tier_of(app, owner, exact) == silver, "reaching the threshold exactly qualifies"
    await earn(app, owner, below, 1)
    assert await tier_of(app, owner, below) == silver
    await earn(app, owner, exact, 10, multiply=True)  # Silver's 1.5: 15 points
    assert (await loyalty(app, owner, exact))["points"] == 115
    await earn(app, owner, exact, 85)
    assert await tier_of(app, owner, exact) == gold and (await loyalty(app, owner, exact))["manual"] is False
    ladder = {t["id"]: t["customers"] for t in (await ok(app, owner, "list_membership_tiers"))["items"]}
    assert ladder == {silver: 1, gold: 1}

    assert await evaluate(app, owner) == 0, "nothing to change: nothing written"
    clock.advance(days=200)
    await earn(app, owner, below, 100)  # 200 in the window
    assert await tier_of(app, owner, below) == gold
    clock.advance(days=166)  # the first earns leave the 365-day window
    assert await tier_of(app, owner, exact) == gold, "a tier never drops on a read or an earn"
    await earn(app, owner, exact, 1)
    assert await tier_of(app, owner, exact) == gold
    assert await evaluate(app, owner) == 2
    assert await tier_of(app, owner, below) == silver, "100 left in the window: down to Silver"
    assert await tier_of(app, owner, exact) is None
    assert await evaluate(app, owner) == 0, "a second run changes nothing"
    events = await tier_events(app, owner)
    assert events[:4] == [
        {"member_id": exact, "previous_tier_id": None, "tier_id": silver, "manual": False},
        {"member_id": below, "previous_tier_id": None, "tier_id": silver, "manual": False},
        {"member_id": exact, "previous_tier_id": silver, "tier_id": gold, "manual": False},
        {"member_id": below, "previous_tier_id": silver, "tier_id": gold, "manual": False},
    ]
    assert sorted(events[4:], key=lambda e: str(e["member_id"])) == sorted(
        [
            {"member_id": below, "previous_tier_id": gold, "tier_id": silver, "manual": False},
            {"member_id": exact, "previous_tier_id": gold, "tier_id": None, "manual": False},
        ],
        key=lambda e: str(e["member_id"]),
    ), "one event per change; events of one run share its instant"


async def test_spend_basis_edge(app: App, owner: Owner) -> None:
    await set_basis(app, owner, TierBasis.lifetime_spend)
    vip = await tier(app, owner, "VIP", 10000)
    assert (await ok(app, owner, "list_membership_tiers"))["basis"] == "lifetime_spend"
    below, exact = await new_member(app, owner, "Below"), await new_member(app, owner, "Exact")
    for member_id, amount in ((below, 9999), (exact, 10000)):
        invoice = await open_invoice(app, owner, amount, member_id=member_id)
        await record(app, owner, amount, invoice_id=invoice["id"])
    assert await tier_of(app, owner, exact) == vip, "a spend exactly at the threshold qualifies, at the payment"
    assert await tier_of(app, owner, below) is None
    assert await evaluate(app, owner) == 0, "the payment promoted already"
    invoice = await open_invoice(app, owner, 1, member_id=below)
    payment = await record(app, owner, 1, invoice_id=invoice["id"])
    assert await tier_of(app, owner, below) == vip
    found = await ok(app, owner, "search_members", {"tier_id": vip})
    assert sorted(m["id"] for m in found["items"]) == sorted([below, exact])
    refunded = await confirmed(app, owner.key, "refund_payment", {"payment_id": payment["id"], "idempotency_key": "r1"})
    assert refunded.ok, refunded.data
    assert await tier_of(app, owner, below) == vip, "a refund lowers the spend; the tier drops only at the evaluation"
    assert await evaluate(app, owner) == 1
    assert await tier_of(app, owner, below) is None and await tier_of(app, owner, exact) == vip


async def test_a_manual_tier_survives_evaluations_until_cleared(app: App, owner: Owner, clock: FakeClock) -> None:
    silver, gold = await tier(app, owner, "Silver", 100), await tier(app, owner, "Gold", 200)
    member, other, fresh = (
        await new_member(app, owner),
        await new_member(app, owner, "Bo"),
        await new_member(app, owner),
    )
    await earn(app, owner, member, 150)
    await earn(app, owner, other, 120)
    set_gold = await ok(app, owner, "enrol_membership", {"member_id": member, "tier_id": gold})
    assert set_gold == {
        "member_id": member, "tier_id": gold, "tier_name": "Gold", "manual": True, "automatic_tier_id": silver,
    }  # fmt: skip
    again = await ok(app, owner, "enrol_membership", {"member_id": member, "tier_id": gold})
    assert again == set_gold
    assert await loyalty(app, owner, member) == {"points": 150, "tier_id": gold, "tier_name": "Gold", "manual": True}
    await ok(app, owner, "enrol_membership", {"member_id": other, "tier_id": gold})
    await ok(app, owner, "enrol_membership", {"member_id": fresh, "tier_id": silver})  # no points, no account yet

    clock.advance(days=366)
    await earn(app, owner, other, 100)  # 100 in the window: Silver, under the manual Gold
    assert await evaluate(app, owner) == 1, "the member's automatic tier drops under the manual one"
    assert await tier_of(app, owner, member) == gold, "the manual tier survives the evaluation"
    assert await tier_of(app, owner, other) == gold

    cleared = await ok(app, owner, "enrol_membership", {"member_id": member, "tier_id": None})
    assert cleared == {
        "member_id": member,
        "tier_id": None,
        "tier_name": None,
        "manual": False,
        "automatic_tier_id": None,
    }
    back = await ok(app, owner, "enrol_membership", {"member_id": other, "tier_id": None})
    assert back["tier_id"] == silver and back["manual"] is False, "cleared: the automatic tier applies at once"
    assert (await ok(app, owner, "enrol_membership", {"member_id": member, "tier_id": None})) == cleared
    assert await tier_events(app, owner) == [
        {"member_id": member, "previous_tier_id": None, "tier_id": silver, "manual": False},
        {"member_id": other, "previous_tier_id": None, "tier_id": silver, "manual": False},
        {"member_id": member, "previous_tier_id": silver, "tier_id": gold, "manual": True},
        {"member_id": other, "previous_tier_id": silver, "tier_id": gold, "manual": True},
        {"member_id": fresh, "previous_tier_id": None, "tier_id": silver, "manual": True},
        {"member_id": member, "previous_tier_id": gold, "tier_id": None, "manual": True},
        {"member_id": other, "previous_tier_id": gold, "tier_id": silver, "manual": True},
    ]

    # The profile of a customer without an account, the search filter, and refusals.
    nobody = await new_member(app, owner, "Nobody")
    assert await loyalty(app, owner, nobody) == {"points": 0, "tier_id": None, "tier_name": None, "manual": False}
    in_silver = await ok(app, owner, "search_members", {"tier_id": silver})
    assert sorted(m["id"] for m in in_silver["items"]) == sorted([other, fresh])
    assert (await ok(app, owner, "search_members", {"tier_id": gold}))["items"] == []
    missing = await call(app, owner.key, "enrol_membership", {"member_id": member, "tier_id": "tie_nope"})
    assert error_code(missing) == "not_found"
    nobody_there = await call(app, owner.key, "enrol_membership", {"member_id": "mem_nope", "tier_id": silver})
    assert error_code(nobody_there) == "not_found"

    # Staff read the ladder, counting only the customers they see (none here); they do not set tiers.
    counts = {t["id"]: t["customers"] for t in (await ok(app, owner, "list_membership_tiers"))["items"]}
    assert counts == {silver: 2, gold: 0}
    staff = await join(app, owner)
    seen = await call(app, staff.key, "list_membership_tiers")
    assert seen.ok and [t["customers"] for t in seen.data["items"]] == [0, 0]
    by_staff = await call(app, staff.key, "enrol_membership", {"member_id": other, "tier_id": gold})
    assert error_code(by_staff) == "forbidden"


async def test_merge_sums_the_points_and_keeps_the_higher_tier(app: App, owner: Owner) -> None:
    silver, gold = await tier(app, owner, "Silver", 100), await tier(app, owner, "Gold", 1000)
    survivor, duplicate = await new_member(app, owner, "Sam"), await new_member(app, owner, "Samuel")
    await earn(app, owner, survivor, 120)  # automatic Silver
    await earn(app, owner, duplicate, 50)
    await ok(app, owner, "enrol_membership", {"member_id": duplicate, "tier_id": gold})
    merged = await confirmed(app, owner.key, "merge_members", {"survivor_id": survivor, "duplicate_id": duplicate})
    assert merged.ok, merged.data
    assert await loyalty(app, owner, survivor) == {"points": 170, "tier_id": gold, "tier_name": "Gold", "manual": True}

    async def state(ctx: ToolContext) -> tuple[list[LoyaltyAccount], int, int]:
        db = ctx.db.unfiltered
        accounts = await db.all(db.select(LoyaltyAccount))
        entries = await db.all(db.select(PointsEntry, col(PointsEntry.member_id) == survivor))
        lots = await db.all(db.select(PointsLot, col(PointsLot.member_id) == survivor))
        return accounts, sum(e.points for e in entries), sum(lot.remaining for lot in lots)

    accounts, ledger_sum, lots_left = await app.runner.run_system(owner.workspace_id, "test", state)
    assert [(a.member_id, a.balance, a.tier_id, a.manual_tier_id) for a in accounts] == [
        (survivor, 170, silver, gold)
    ], "the duplicate's account is folded in"
    assert ledger_sum == lots_left == 170

    async def redeem_all(ctx: ToolContext) -> int:
        acct = await ledger.account(ctx, survivor)
        await ledger.debit(ctx, acct, 170, kind=EntryKind.redeem, reason="all of it")
        return acct.balance

    assert await app.runner.run_system(owner.workspace_id, "test", redeem_all) == 0
    assert (await loyalty(app, owner, survivor))["points"] == 0

    # A lower manual tier of the duplicate never pulls the survivor's higher automatic tier down.
    high, low = await new_member(app, owner, "High"), await new_member(app, owner, "Low")
    await earn(app, owner, high, 1000)
    await ok(app, owner, "enrol_membership", {"member_id": low, "tier_id": silver})
    merged = await confirmed(app, owner.key, "merge_members", {"survivor_id": high, "duplicate_id": low})
    assert merged.ok, merged.data
    assert await loyalty(app, owner, high) == {"points": 1000, "tier_id": gold, "tier_name": "Gold", "manual": False}
    # And a survivor's own manual tier stays when it is the higher one in effect.
    kept, other = await new_member(app, owner, "Kept"), await new_member(app, owner, "Other")
    await ok(app, owner, "enrol_membership", {"member_id": kept, "tier_id": gold})
    await earn(app, owner, other, 100)
    merged = await confirmed(app, owner.key, "merge_members", {"survivor_id": kept, "duplicate_id": other})
    assert merged.ok, merged.data
    assert await loyalty(app, owner, kept) == {"points": 100, "tier_id": gold, "tier_name": "Gold", "manual": True}
    changes = [e for e in await tier_events(app, owner) if e["member_id"] in (high, kept)]
    assert changes == [
        {"member_id": high, "previous_tier_id": None, "tier_id": gold, "manual": False},
        {"member_id": kept, "previous_tier_id": None, "tier_id": gold, "manual": True},
    ], "no change of the tier in effect, no event"
