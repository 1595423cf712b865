"""Loyalty points (domain-rules.md "Loyalty and tiers"): the program, earning, redeeming and adjusting by hand,
the ledger, FIFO lots and expiry, earning by itself from bookings, payments and orders, and its reversal on
refunds; on SQLite and Postgres, through the runner."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from favmcp.app import App
from favmcp.core.ids import new_id
from favmcp.domains.bookings.events import BookingCompleted
from favmcp.domains.loyalty import earning
from favmcp.domains.loyalty.models import LoyaltyAccount, PointsEntry, PointsLot
from favmcp.domains.tiers.models import MembershipTier
from favmcp.registry.context import ToolContext
from tests.support import FakeClock, Owner, call, confirmed, error_code, gather, join, signup, unique_email

N = 16


async def ok(app: App, owner: Owner, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


async def new_member(app: App, owner: Owner) -> str:
    return str((await ok(app, owner, "create_member", {"name": "Sam Lee", "email": unique_email("sam")}))["id"])


async def balance(app: App, owner: Owner, member_id: str) -> int:
    return int((await ok(app, owner, "get_points_balance", {"member_id": member_id}))["points"])


async def entries(app: App, member_id: str) -> list[PointsEntry]:
    async with app.db.transaction() as session:
        stmt = select(PointsEntry).where(col(PointsEntry.member_id) == member_id).order_by(col(PointsEntry.id))
        return list((await session.execute(stmt)).scalars())


async def assert_ledger_is_the_balance(app: App, member_id: str) -> int:
    """The account's balance is the ledger's sum and the lots' remaining sum."""
    async with app.db.transaction() as session:
        acct = (
            await session.execute(select(LoyaltyAccount).where(col(LoyaltyAccount.member_id) == member_id))
        ).scalar_one()
        lots = (await session.execute(select(PointsLot).where(col(PointsLot.member_id) == member_id))).scalars()
        left = sum(lot.remaining for lot in lots)
    summed = sum(e.points for e in await entries(app, member_id))
    assert acct.balance == summed == left, (acct.balance, summed, left)
    return acct.balance


async def program(app: App, owner: Owner, **fields: Any) -> dict[str, Any]:
    return await ok(app, owner, "update_loyalty_program", fields)


async def pay(app: App, owner: Owner, amount: int, member_id: str, **target: str) -> dict[str, Any]:
    if not target:
        line = {"description": "Course", "unit_amount": amount, "quantity": 1, "tax_rate": "0"}
        made = await ok(app, owner, "create_invoice", {"member_id": member_id, "lines": [line]})
        target = {"invoice_id": (await ok(app, owner, "finalize_invoice", {"invoice_id": made["id"]}))["id"]}
    args = {"method": "cash", "amount": amount, "idempotency_key": key(), **target}
    return await ok(app, owner, "record_payment", args)


async def refund(app: App, owner: Owner, payment_id: str, amount: int | None = None) -> str:
    args: dict[str, Any] = {"payment_id": payment_id, "idempotency_key": key()}
    if amount is not None:
        args["amount"] = amount
    done = await confirmed(app, owner.key, "refund_payment", args)
    assert done.ok, done.data
    return str(done.data["id"])


# -- the program -------------------------------------------------------------------------------------------------


async def test_program_round_trip_validation_and_concurrent_first_saves(app: App, owner: Owner) -> None:
    got = await ok(app, owner, "get_loyalty_program")
    assert got["saved"] is False and got["enabled"] is True and got["earn_rules"] == []
    assert (got["expiry_days"], got["min_redeem_points"], got["tier_basis"]) == (365, 1, "points_12_months")
    product = await ok(app, owner, "create_product", {"name": "Mat", "unit_amount": 1000, "tax_rate": "0"})
    rules = [
        {"kind": "visit", "points": 10},
        {"kind": "spend", "points": 2, "currency": "eur"},
        {"kind": "product", "points": 5, "product_id": product["id"]},
    ]
    saved = await program(app, owner, earn_rules=rules, expiry_days=None, min_redeem_points=50)
    assert saved["saved"] is True and saved["expiry_days"] is None and saved["min_redeem_points"] == 50
    assert [r["kind"] for r in saved["earn_rules"]] == ["visit", "spend", "product"]
    assert saved["earn_rules"][1]["currency"] == "EUR"
    assert await ok(app, owner, "get_loyalty_program") == saved
    bad = await call(
        app,
        owner.key,
        "update_loyalty_program",
        {"earn_rules": [rules[0], {"kind": "visit", "points": 1, "service_id": "svc_nope"}], "enabled": False},
    )
    assert error_code(bad) == "validation_failed"
    assert [f["field"] for f in bad.data["error"]["field_errors"]] == ["earn_rules[1].service_id"]
    for wrong in (
        {"earn_rules": [{"kind": "visit", "points": 1}] * 21},
        {"earn_rules": [{"kind": "spend", "points": 1}]},
        {"earn_rules": [{"kind": "bonus", "points": 1}]},
        {"enabled": None},
        {"min_redeem_points": 0},
        {"expiry_days": 0},
    ):
        assert error_code(await call(app, owner.key, "update_loyalty_program", wrong)) == "validation_failed", wrong
    assert await ok(app, owner, "get_loyalty_program") == saved, "bad input changes nothing"

    other = await signup(app)
    outs = await gather(
        *[call(app, other.key, "update_loyalty_program", {"min_redeem_points": 10 + i}) for i in range(N)]
    )
    assert all(o.ok for o in outs), [o.data for o in outs if not o.ok]
    final = await ok(app, other, "get_loyalty_program")
    assert final["saved"] and final["min_redeem_points"] in {10 + i for i in range(N)}


# -- by hand -----------------------------------------------------------------------------------------------------


async def test_earn_redeem_adjust_and_the_ledger(app: App, owner: Owner, clock: FakeClock) -> None:
    member = await new_member(app, owner)
    empty = await ok(app, owner, "get_points_balance", {"member_id": member})
    assert empty["points"] == 0 and empty["points_expiring"] == 0 and empty["tier"]["tier_id"] is None
    assert await entries(app, member) == []
    once = {"member_id": member, "points": 100, "reason": "welcome", "idempotency_key": key()}
    first, again = await ok(app, owner, "earn_loyalty_points", once), await ok(app, owner, "earn_loyalty_points", once)
    assert first == again and first["points_after"] == 100
    entry = first["entry"]
    assert (entry["kind"], entry["points"], entry["reason"], entry["source"]) == ("earn", 100, "welcome", None)
    assert entry["actor"] == owner.user_id and entry["expires_at"].startswith(
        (clock.now() + timedelta(days=365)).date().isoformat()
    )
    assert error_code(await call(app, owner.key, "earn_loyalty_points", {**once, "reason": ""})) == "validation_failed"
    assert error_code(await call(app, owner.key, "earn_loyalty_points", {**once, "points": 0})) == "validation_failed"
    unknown = await call(
        app, owner.key, "earn_loyalty_points", {**once, "member_id": "mem_nope", "idempotency_key": key()}
    )
    assert error_code(unknown) == "not_found"

    await program(app, owner, min_redeem_points=10)
    small = await call(app, owner.key, "redeem_loyalty_points", {"member_id": member, "points": 5})
    assert error_code(small) == "validation_failed"
    too_much = await call(app, owner.key, "redeem_loyalty_points", {"member_id": member, "points": 101})
    assert error_code(too_much) == "conflict"
    assert too_much.data["error"]["details"]["reason"] == "insufficient_points"
    redeemed = await ok(app, owner, "redeem_loyalty_points", {"member_id": member, "points": 30, "reason": "coffee"})
    assert redeemed["entry"]["points"] == -30 and redeemed["points_after"] == 70

    for wrong in (
        {"points": 0, "reason": "oops"},
        {"points": 5, "reason": "ab"},
        {"points": 1_000_001, "reason": "big"},
    ):
        got = await call(app, owner.key, "adjust_loyalty_points", {"member_id": member, **wrong})
        assert error_code(got) == "validation_failed", wrong
    up = await ok(app, owner, "adjust_loyalty_points", {"member_id": member, "points": 20, "reason": "correction"})
    assert (up["entry"]["kind"], up["entry"]["points"], up["points_after"]) == ("adjust", 20, 90)
    assert up["entry"]["expires_at"] is not None
    beyond = await call(app, owner.key, "adjust_loyalty_points", {"member_id": member, "points": -91, "reason": "undo"})
    assert error_code(beyond) == "conflict"
    down = await ok(app, owner, "adjust_loyalty_points", {"member_id": member, "points": -10, "reason": "double"})
    assert down["points_after"] == 80
    assert await assert_ledger_is_the_balance(app, member) == 80 == await balance(app, owner, member)

    listed = await ok(app, owner, "list_points_transactions", {"member_id": member, "limit": 2})
    assert [e["points"] for e in listed["items"]] == [-10, 20] and listed["has_more"]
    rest = await ok(app, owner, "list_points_transactions", {"member_id": member, "cursor": listed["next_cursor"]})
    assert [e["points"] for e in rest["items"]] == [-30, 100] and not rest["has_more"]
    adjusts = await ok(app, owner, "list_points_transactions", {"kind": "adjust"})
    assert [e["points"] for e in adjusts["items"]] == [-10, 20]
    later = (clock.now() + timedelta(seconds=1)).isoformat()
    assert (await ok(app, owner, "list_points_transactions", {"created_from": later}))["items"] == []
    assert len((await ok(app, owner, "list_points_transactions", {"created_before": later}))["items"]) == 4

    other = await new_member(app, owner)
    merge = await confirmed(app, owner.key, "merge_members", {"survivor_id": other, "duplicate_id": member})
    assert merge.ok, merge.data
    refused = await call(app, owner.key, "earn_loyalty_points", {**once, "idempotency_key": key()})
    assert error_code(refused) == "invalid_state"
    assert refused.data["error"]["details"]["survivor_id"] == other
    followed = await ok(app, owner, "get_points_balance", {"member_id": member})
    assert followed["member_id"] == other and followed["points"] == 80


async def test_of_many_redemptions_of_100_on_150_exactly_one_succeeds(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    await ok(app, owner, "earn_loyalty_points", {"member_id": member, "points": 150, "reason": "gift"})
    outs = await gather(
        *[call(app, owner.key, "redeem_loyalty_points", {"member_id": member, "points": 100}) for _ in range(N)]
    )
    assert sum(o.ok for o in outs) == 1
    assert all(o.data["error"]["details"]["reason"] == "insufficient_points" for o in outs if not o.ok)
    assert await balance(app, owner, member) == 50 == await assert_ledger_is_the_balance(app, member)


# -- lots and expiry ----------------------------------------------------------------------------------------------


async def test_redemption_takes_the_soonest_expiring_first_and_expiry_writes_off_the_rest_once(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    member = await new_member(app, owner)
    start = clock.now()
    await program(app, owner, expiry_days=30)
    await ok(app, owner, "earn_loyalty_points", {"member_id": member, "points": 50, "reason": "first"})  # start+30d
    clock.advance(days=10)
    await program(app, owner, expiry_days=5)
    await ok(app, owner, "earn_loyalty_points", {"member_id": member, "points": 40, "reason": "second"})  # start+15d
    await program(app, owner, expiry_days=None)
    await ok(app, owner, "adjust_loyalty_points", {"member_id": member, "points": 7, "reason": "never expires"})
    await ok(app, owner, "redeem_loyalty_points", {"member_id": member, "points": 60})
    async with app.db.transaction() as session:
        lots = (await session.execute(select(PointsLot).where(col(PointsLot.member_id) == member))).scalars()
        left = {lot.points: lot.remaining for lot in lots}
    assert left == {40: 0, 50: 30, 7: 7}, "the soonest-expiring lot first, then the next"
    seen = await ok(app, owner, "get_points_balance", {"member_id": member})
    assert seen["points"] == 37 and seen["points_expiring"] == 30
    assert seen["expiring_first_at"].startswith((start + timedelta(days=30)).date().isoformat())

    future = (clock.now() + timedelta(minutes=1)).isoformat()
    assert error_code(await call(app, owner.key, "expire_points", {"up_to": future})) == "validation_failed"
    nothing = await ok(app, owner, "expire_points", {})
    assert (nothing["lots"], nothing["points"], nothing["members"]) == (0, 0, 0)
    clock.advance(days=21)  # past start+30d: both dated lots expired; the first has nothing left

    [expiry_job] = [j for j in app.runner.platform.jobs if j.name == "points_expiry"]
    assert expiry_job.every == timedelta(hours=1)

    async def job(ctx: ToolContext) -> None:
        await expiry_job.run(ctx)

    outs = await gather(
        *[call(app, owner.key, "expire_points", {"member_id": member} if i % 2 else {}) for i in range(N)],
        app.runner.run_system(owner.workspace_id, "job:points_expiry", job),
    )
    results = [o.data for o in outs[:-1]]
    assert all(o.ok for o in outs[:-1]), results
    assert sum(r["lots"] for r in results) <= 1 and sum(r["points"] for r in results) in (0, 30)
    expired = [e for e in await entries(app, member) if e.kind == "expire"]
    assert [e.points for e in expired] == [-30], "one expire entry for the one lot with points left"
    assert await assert_ledger_is_the_balance(app, member) == 7 == await balance(app, owner, member)


# -- earning by itself --------------------------------------------------------------------------------------------


async def test_a_completed_booking_earns_once(app: App, owner: Owner, clock: FakeClock) -> None:
    from tests.test_booking_outcomes import book, new_service

    member = await new_member(app, owner)
    service, other_service = await new_service(app, owner), await new_service(app, owner, name="Other")
    rules = [
        {"kind": "visit", "points": 10, "service_id": service},
        {"kind": "visit", "points": 5},
        {"kind": "visit", "points": 100, "service_id": other_service},
    ]
    await program(app, owner, earn_rules=rules)
    booking = await book(app, owner, member, service, clock.now() + timedelta(minutes=10))
    await ok(app, owner, "check_in_booking", {"booking_id": booking})
    clock.advance(hours=2)
    done = await gather(*[call(app, owner.key, "complete_booking", {"booking_id": booking}) for _ in range(4)])
    assert sum(d.ok for d in done) >= 1
    event = BookingCompleted(
        booking_id=booking,
        member_id=member,
        service_id=service,
        staff_user_id=owner.user_id,
        starts_at=clock.now(),
        unit_amount=6000,
        currency="EUR",
    )

    async def replay(ctx: ToolContext) -> None:
        await earning.on_booking_completed(ctx, event)

    await app.runner.run_system(owner.workspace_id, "test", replay)
    [earned] = await entries(app, member)
    assert (earned.kind, earned.points, earned.source) == ("earn", 15, f"booking:{booking}")
    assert await balance(app, owner, member) == 15


async def test_payments_earn_with_floor_times_the_tier_and_refunds_reverse_in_proportion(
    app: App, owner: Owner
) -> None:
    await program(app, owner, earn_rules=[{"kind": "spend", "points": 1, "currency": "EUR"}])
    member = await new_member(app, owner)
    paid = await pay(app, owner, 4599, member)
    [earned] = await entries(app, member)
    assert (earned.points, earned.source) == (45, f"payment:{paid['id']}"), "45.99 EUR earns 45"
    # Refunds of 10, then 10, then the rest (25.99) of 45.99: cumulative round_half_up(45 x R / 4599):
    # 9.78 -> 10, 19.57 -> 20, then 45: reversals of 10, 10 and 25.
    ids = [await refund(app, owner, paid["id"], 1000), await refund(app, owner, paid["id"], 1000)]
    ids.append(await refund(app, owner, paid["id"]))
    reversals = [e for e in await entries(app, member) if e.kind == "reversal"]
    assert [(e.points, e.source, e.shortfall) for e in reversals] == [
        (-10, f"refund:{ids[0]}", 0),
        (-10, f"refund:{ids[1]}", 0),
        (-25, f"refund:{ids[2]}", 0),
    ]
    assert await assert_ledger_is_the_balance(app, member) == 0

    # A tier with a 1.5 multiplier: reached by 10 points earned (the manual earn has no multiplier).
    async def tier(ctx: ToolContext) -> None:
        ctx.db.add(
            MembershipTier(
                id=new_id("tier"),
                workspace_id=ctx.workspace_id,
                name="Gold",
                threshold=10,
                earn_multiplier="1.5",
                created_at=ctx.now,
                updated_at=ctx.now,
            )
        )
        await ctx.db.flush()

    await app.runner.run_system(owner.workspace_id, "test", tier)
    gold = await new_member(app, owner)
    before = (await ok(app, owner, "get_points_balance", {"member_id": gold}))["tier"]
    assert (before["tier_id"], before["next_tier_name"], before["needed"], before["standing"]) == (None, "Gold", 10, 0)
    await ok(app, owner, "earn_loyalty_points", {"member_id": gold, "points": 10, "reason": "start"})
    progress = (await ok(app, owner, "get_points_balance", {"member_id": gold}))["tier"]
    assert progress["tier_name"] == "Gold" and progress["standing"] == 10 and not progress["manual"]
    assert progress["next_tier_id"] is None and progress["needed"] is None, "reaching the threshold exactly qualifies"
    await ok(app, owner, "earn_loyalty_points", {"member_id": gold, "points": 3, "reason": "manual, no multiplier"})
    assert await balance(app, owner, gold) == 13
    multiplied = await pay(app, owner, 4599, gold)
    earned_gold = [e for e in await entries(app, gold) if e.source == f"payment:{multiplied['id']}"]
    assert [e.points for e in earned_gold] == [67], "floor(45 x 1.5)"


async def test_a_reversal_stops_at_zero_and_records_the_shortfall(app: App, owner: Owner) -> None:
    await program(app, owner, earn_rules=[{"kind": "spend", "points": 1, "currency": "EUR"}])
    member = await new_member(app, owner)
    paid = await pay(app, owner, 10000, member)
    await ok(app, owner, "redeem_loyalty_points", {"member_id": member, "points": 80})
    refund_id = await refund(app, owner, paid["id"])
    [reversal] = [e for e in await entries(app, member) if e.kind == "reversal"]
    assert (reversal.points, reversal.shortfall, reversal.source) == (-20, 80, f"refund:{refund_id}")
    assert await assert_ledger_is_the_balance(app, member) == 0


async def test_a_paid_order_earns_product_points_and_a_refund_takes_its_share(app: App, owner: Owner) -> None:
    mat = await ok(
        app, owner, "create_product", {"name": "Mat", "unit_amount": 2000, "tax_rate": "0", "track_stock": False}
    )
    block = await ok(
        app, owner, "create_product", {"name": "Block", "unit_amount": 1000, "tax_rate": "0", "track_stock": False}
    )
    await program(app, owner, earn_rules=[{"kind": "product", "points": 7, "product_id": mat["id"]}])
    member = await new_member(app, owner)
    lines = [{"product_id": mat["id"], "quantity": 3}, {"product_id": block["id"], "quantity": 1}]
    order = await ok(app, owner, "create_order", {"member_id": member, "lines": lines})
    assert order["total"] == 7000
    paid = await pay(app, owner, 7000, member, order_id=order["id"])
    [earned] = await entries(app, member)
    assert (earned.points, earned.source) == (21, f"order:{order['id']}")
    refund_id = await refund(app, owner, paid["id"], 3500)
    [reversal] = [e for e in await entries(app, member) if e.kind == "reversal"]
    assert (reversal.points, reversal.source) == (-11, f"refund:{refund_id}:order"), "round_half_up(21 / 2)"
    assert await assert_ledger_is_the_balance(app, member) == 10


async def test_a_disabled_program_earns_nothing_by_itself(app: App, owner: Owner) -> None:
    await program(app, owner, enabled=False, earn_rules=[{"kind": "spend", "points": 1, "currency": "EUR"}])
    member = await new_member(app, owner)
    paid = await pay(app, owner, 5000, member)
    assert await entries(app, member) == []
    await ok(app, owner, "earn_loyalty_points", {"member_id": member, "points": 5, "reason": "by hand still works"})
    await refund(app, owner, paid["id"])
    assert [e.points for e in await entries(app, member)] == [5], "nothing was earned, so nothing is reversed"


async def test_a_spend_rule_for_one_plan_earns_only_on_its_invoices(app: App, owner: Owner) -> None:
    plans = [
        await ok(app, owner, "create_plan", {"kind": "membership", "name": n, "unit_amount": 5000, "interval": "month"})
        for n in ("Gold", "Silver")
    ]
    rule = {"kind": "spend", "points": 2, "currency": "EUR", "plan_id": plans[0]["id"]}
    await program(app, owner, earn_rules=[rule])
    member = await new_member(app, owner)
    for plan in plans:
        sub = await ok(app, owner, "subscribe_member", {"member_id": member, "plan_id": plan["id"]})
        seen = await ok(app, owner, "get_invoice", {"invoice_id": sub["latest_invoice_id"]})
        await pay(app, owner, seen["amount_remaining"], member, invoice_id=sub["latest_invoice_id"])
    await pay(app, owner, 5000, member)  # an invoice of no plan
    [earned] = await entries(app, member)
    assert earned.points == 100, "2 points per EUR on the Gold plan's 50 EUR only"


async def test_staff_see_the_points_of_the_customers_they_see_and_cannot_change_them(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    from tests.test_booking_outcomes import book, new_service

    staff = await join(app, owner)
    theirs, other = await new_member(app, owner), await new_member(app, owner)
    service = await new_service(app, owner)
    await book(app, owner, theirs, service, clock.now() + timedelta(days=1), staff_user_id=staff.user_id)
    for m in (theirs, other):
        await ok(app, owner, "earn_loyalty_points", {"member_id": m, "points": 5, "reason": "thanks"})
    seen = await call(app, staff.key, "get_points_balance", {"member_id": theirs})
    assert seen.ok and seen.data["points"] == 5
    assert error_code(await call(app, staff.key, "get_points_balance", {"member_id": other})) == "not_found"
    listed = await call(app, staff.key, "list_points_transactions", {})
    assert listed.ok and [e["member_id"] for e in listed.data["items"]] == [theirs]
    # Staff hold loyalty:read only (auth/scopes.py): they read points, a manager or above changes them.
    earn = await call(app, staff.key, "earn_loyalty_points", {"member_id": theirs, "points": 5, "reason": "thanks"})
    assert error_code(earn) == "forbidden"
