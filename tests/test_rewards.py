"""Rewards and vouchers: a redemption debits exactly the cost and issues a code for its customer only, used once on
an invoice; stock and balances hold under concurrent redemptions; archiving withdraws unused vouchers and returns
exactly their points, never a used one's. SQLite and Postgres.

Points are given with loyalty.earning.earn (the path every earn takes), run as the system."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from favmcp.app import App
from favmcp.domains.loyalty import earning, rewards
from favmcp.domains.loyalty.models import EntryKind, LoyaltyAccount, PointsEntry, Voucher
from favmcp.domains.promotions.models import Promotion
from favmcp.registry.context import ToolContext
from tests.support import FakeClock, Owner, call, confirmed, error_code, unique_email
from tests.test_invoices import line, pay


async def ok(app: App, owner: Owner, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


async def refused(app: App, owner: Owner, tool: str, args: dict[str, Any], code: str) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args)
    assert error_code(result) == code, (tool, result.data)
    return dict(result.data["error"])


async def new_member(app: App, owner: Owner, points: int = 0) -> str:
    member = str((await ok(app, owner, "create_member", {"name": "Ada Client", "email": unique_email("ada")}))["id"])
    if points:
        await give(app, owner, member, points)
    return member


async def give(app: App, owner: Owner, member_id: str, points: int) -> None:
    async def work(ctx: ToolContext) -> None:
        await earning.earn(ctx, member_id, points, source=f"test:{uuid.uuid4().hex}", multiply=False)

    await app.runner.run_system(owner.workspace_id, "test_points", work)


async def balance(app: App, member_id: str) -> int:
    async with app.db.transaction() as session:
        acct = (
            await session.execute(select(LoyaltyAccount).where(col(LoyaltyAccount.member_id) == member_id))
        ).scalar()
        return acct.balance if acct is not None else 0


async def entries(app: App, member_id: str) -> list[PointsEntry]:
    async with app.db.transaction() as session:
        stmt = select(PointsEntry).where(col(PointsEntry.member_id) == member_id).order_by(col(PointsEntry.id))
        return list((await session.execute(stmt)).scalars())


async def voucher_row(app: App, voucher_id: str) -> tuple[Voucher, Promotion]:
    async with app.db.transaction() as session:
        voucher = await session.get(Voucher, voucher_id)
        assert voucher is not None
        promotion = await session.get(Promotion, voucher.promotion_id)
        assert promotion is not None
        return voucher, promotion


async def vouchers_of(app: App, owner: Owner, member_id: str) -> list[tuple[str, str, bool]]:
    """(id, status, used) of a customer's vouchers, newest first, as a profile would show them."""

    async def work(ctx: ToolContext) -> list[tuple[str, str, bool]]:
        return [(v.id, v.status, v.used) for v in await rewards.member_vouchers(ctx, member_id)]

    return await app.runner.read_system(owner.workspace_id, "test_vouchers", work)


async def reward(app: App, owner: Owner, **fields: Any) -> dict[str, Any]:
    args = {"name": "Ten off", "kind": "discount", "amount_off": 1000, "points_cost": 200, **fields}
    return await ok(app, owner, "create_reward", args)


async def redeem(app: App, owner: Owner, member_id: str, reward_id: str) -> dict[str, Any]:
    return await ok(app, owner, "redeem_reward", {"member_id": member_id, "reward_id": reward_id})


async def invoice_with(app: App, owner: Owner, member_id: str, code: str) -> Any:
    args = {"member_id": member_id, "lines": [line("Massage", 5000, 1, "0")], "promotion_code": code}
    return await call(app, owner.key, "create_invoice", args)


def reason(result: Any) -> str:
    return str(result.data["error"]["details"]["reason"])


async def test_create_list_and_archive_rewards(app: App, owner: Owner) -> None:
    service = await ok(app, owner, "create_service", {"name": "Massage", "duration_minutes": 60, "unit_amount": 4500})
    product = await ok(app, owner, "create_product", {"name": "Oil", "unit_amount": 1800, "tax_rate": "21"})
    free_massage = await reward(
        app, owner, name="Free massage", kind="free_service", amount_off=None, service_id=service["id"], stock=3
    )
    assert (free_massage["kind"], free_massage["service_id"], free_massage["currency"]) == (
        "free_service",
        service["id"],
        "EUR",
    )
    assert (free_massage["stock"], free_massage["vouchers_issued"], free_massage["status"]) == (3, 0, "active")
    oil = await reward(app, owner, name="Oil", kind="free_product", amount_off=None, product_id=product["id"])
    tenth = await reward(app, owner, name="10 %", amount_off=None, percent_off="10", voucher_valid_days=30)
    assert tenth["percent_off"] == "10" and tenth["stock"] is None and tenth["voucher_valid_days"] == 30
    fiver = await reward(app, owner, name="Five", amount_off=500, currency="USD", points_cost=10_000_000)
    assert fiver["currency"] == "USD"

    bad: list[tuple[dict[str, Any], set[str]]] = [
        ({"kind": "free_service", "amount_off": None}, {"service_id"}),
        ({"kind": "free_service", "service_id": service["id"]}, {"amount_off"}),
        ({"kind": "free_product", "amount_off": None, "product_id": product["id"], "currency": "EUR"}, {"currency"}),
        ({"kind": "discount", "amount_off": None}, {"percent_off", "amount_off"}),
        ({"kind": "discount", "percent_off": "5"}, {"percent_off", "amount_off"}),
        ({"kind": "discount", "amount_off": None, "percent_off": "0"}, {"percent_off"}),
        ({"kind": "discount", "service_id": service["id"]}, {"service_id"}),
        ({"points_cost": 0}, {"points_cost"}),
        ({"points_cost": 10_000_001}, {"points_cost"}),
        ({"stock": 0}, {"stock"}),
    ]
    for fields, named in bad:
        args = {"name": "Bad", "kind": "discount", "amount_off": 1000, "points_cost": 200, **fields}
        error = await refused(app, owner, "create_reward", args, "validation_failed")
        assert {f["field"] for f in error["field_errors"]} == named, (fields, error)
    await refused(
        app, owner, "create_reward", {"name": "X", "kind": "free_service", "service_id": "svc_nope", "points_cost": 1},
        "not_found",
    )  # fmt: skip

    listed = await ok(app, owner, "list_rewards", {"limit": 2})
    assert [r["id"] for r in listed["items"]] == [fiver["id"], tenth["id"]] and listed["has_more"]
    rest = await ok(app, owner, "list_rewards", {"limit": 10, "cursor": listed["next_cursor"]})
    assert [r["id"] for r in rest["items"]] == [oil["id"], free_massage["id"]]

    archived = await ok(app, owner, "archive_reward", {"reward_id": oil["id"]})
    assert archived["reward"]["status"] == "archived"
    assert (archived["vouchers_withdrawn"], archived["points_returned"]) == (0, 0)
    again = await ok(app, owner, "archive_reward", {"reward_id": oil["id"]})
    assert again == archived, "archiving twice changes nothing"
    active = await ok(app, owner, "list_rewards", {"limit": 10})
    assert oil["id"] not in [r["id"] for r in active["items"]] and len(active["items"]) == 3
    old = await ok(app, owner, "list_rewards", {"status": "archived"})
    assert [r["id"] for r in old["items"]] == [oil["id"]]
    assert len((await ok(app, owner, "list_rewards", {"status": "all"}))["items"]) == 4
    await refused(app, owner, "archive_reward", {"reward_id": "rwd_nope"}, "not_found")


async def test_a_voucher_costs_its_points_and_works_once_for_its_customer(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    ada = await new_member(app, owner, points=500)
    bo = await new_member(app, owner, points=50)
    ten = await reward(app, owner, voucher_valid_days=30, stock=5)
    voucher = await redeem(app, owner, ada, ten["id"])
    code = voucher["code"]
    assert code.startswith("RW-") and len(code) == 13 and code == code.upper()
    assert (voucher["amount_off"], voucher["currency"], voucher["points"]) == (1000, "EUR", 200)
    assert voucher["status"] == "issued" and not voucher["used"]
    assert datetime.fromisoformat(voucher["expires_at"]) == clock.now() + timedelta(days=30)
    assert await balance(app, ada) == 300
    redeemed = [e for e in await entries(app, ada) if e.kind == EntryKind.redeem]
    assert [(e.points, e.source) for e in redeemed] == [(-200, f"voucher:{voucher['id']}")]
    listed = (await ok(app, owner, "list_rewards"))["items"][0]
    assert (listed["stock"], listed["vouchers_issued"]) == (4, 1)

    # Too few points, an unknown or archived reward: refused, nothing taken.
    short = await refused(app, owner, "redeem_reward", {"member_id": bo, "reward_id": ten["id"]}, "conflict")
    assert short["details"]["reason"] == "insufficient_points" and await balance(app, bo) == 50
    await refused(app, owner, "redeem_reward", {"member_id": bo, "reward_id": "rwd_nope"}, "not_found")

    # Only Ada may use it; validate says why for anyone else.
    other = await invoice_with(app, owner, bo, code)
    assert error_code(other) == "validation_failed" and reason(other) == "other_customer"
    check = {"code": code.lower(), "subtotal": 5000, "applies_to": "invoices"}
    assert (await ok(app, owner, "validate_promotion", {**check, "member_id": bo}))["reason"] == "other_customer"
    assert (await ok(app, owner, "validate_promotion", {**check, "member_id": ada}))["discount"] == 1000

    # Marketing codes are listed without the vouchers unless asked.
    await ok(app, owner, "create_promotion", {"code": "SPRING", "percent_off": "5"})
    codes = await ok(app, owner, "list_promotions")
    assert [p["code"] for p in codes["items"]] == ["SPRING"]
    vouchers = (await ok(app, owner, "list_promotions", {"vouchers": True}))["items"]
    assert [(p["code"], p["member_id"], p["max_redemptions"]) for p in vouchers] == [(code, ada, 1)]

    # Used once: on a draft, released by a change, used again, paid; then final and refused a second time.
    made = await invoice_with(app, owner, ada, code)
    assert made.ok and made.data["discount"] == 1000, made.data
    cleared = await ok(app, owner, "update_invoice_draft", {"invoice_id": made.data["id"], "promotion_code": None})
    assert cleared["discount"] == 0
    row, promotion = await voucher_row(app, voucher["id"])
    assert promotion.times_redeemed == 0, "released: unused again"
    await ok(app, owner, "update_invoice_draft", {"invoice_id": made.data["id"], "promotion_code": code})
    opened = await ok(app, owner, "finalize_invoice", {"invoice_id": made.data["id"]})
    await pay(app, owner, opened["id"], opened["total"])
    twice = await invoice_with(app, owner, ada, code)
    assert error_code(twice) == "conflict" and reason(twice) in {"limit_reached", "customer_limit_reached"}
    row, promotion = await voucher_row(app, voucher["id"])
    assert promotion.times_redeemed == 1 and row.status == "issued"
    assert await vouchers_of(app, owner, ada) == [(voucher["id"], "issued", True)]

    # Archived: no new redemption; the issued voucher stays as it is.
    await ok(app, owner, "archive_reward", {"reward_id": ten["id"]})
    stopped = await refused(app, owner, "redeem_reward", {"member_id": ada, "reward_id": ten["id"]}, "invalid_state")
    assert stopped["details"]["current"] == "archived" and await balance(app, ada) == 300

    # A free service is worth the service's price when redeemed, in its currency; an expired voucher is refused.
    service = await ok(
        app, owner, "create_service", {"name": "Facial", "duration_minutes": 30, "unit_amount": 3200, "currency": "USD"}
    )
    facial = await reward(app, owner, kind="free_service", amount_off=None, service_id=service["id"], points_cost=100)
    await ok(app, owner, "update_service", {"service_id": service["id"], "unit_amount": 3500})
    free = await redeem(app, owner, ada, facial["id"])
    assert (free["amount_off"], free["currency"], free["expires_at"]) == (3500, "USD", None)
    week = await reward(app, owner, points_cost=1, voucher_valid_days=7)
    short_lived = await redeem(app, owner, ada, week["id"])
    clock.advance(days=7)
    late = await invoice_with(app, owner, ada, short_lived["code"])
    assert error_code(late) == "invalid_state" and reason(late) == "expired"


async def test_concurrent_redemptions_of_the_last_unit_and_of_one_balance(app: App, owner: Owner) -> None:
    last = await reward(app, owner, stock=1, points_cost=100)
    people = [await new_member(app, owner, points=100) for _ in range(12)]
    results = await asyncio.gather(
        *[call(app, owner.key, "redeem_reward", {"member_id": m, "reward_id": last["id"]}) for m in people]
    )
    winners = [m for m, r in zip(people, results, strict=True) if r.ok]
    assert len(winners) == 1, [r.data for r in results]
    assert all(error_code(r) == "conflict" and reason(r) == "out_of_stock" for r in results if not r.ok)
    assert [await balance(app, m) for m in people] == [0 if m in winners else 100 for m in people]
    listed = (await ok(app, owner, "list_rewards"))["items"]
    assert [(r["stock"], r["vouchers_issued"]) for r in listed if r["id"] == last["id"]] == [(0, 1)]

    plenty = await reward(app, owner, points_cost=100)
    one = await new_member(app, owner, points=150)
    tries = await asyncio.gather(
        *[call(app, owner.key, "redeem_reward", {"member_id": one, "reward_id": plenty["id"]}) for _ in range(12)]
    )
    assert len([r for r in tries if r.ok]) == 1
    assert all(error_code(r) == "conflict" and reason(r) == "insufficient_points" for r in tries if not r.ok)
    assert await balance(app, one) == 50
    assert sum(e.points for e in await entries(app, one)) == 50


async def test_archive_withdraws_unused_vouchers_and_returns_exactly_their_points(app: App, owner: Owner) -> None:
    ada = await new_member(app, owner, points=1000)
    bo = await new_member(app, owner, points=1000)
    ten = await reward(app, owner, points_cost=300)
    unused = await redeem(app, owner, ada, ten["id"])
    used = await redeem(app, owner, bo, ten["id"])
    spare = await redeem(app, owner, bo, ten["id"])
    assert (await invoice_with(app, owner, bo, used["code"])).ok

    # Without the option: archived, vouchers still valid.
    kept = await ok(app, owner, "archive_reward", {"reward_id": ten["id"]})
    assert (kept["reward"]["status"], kept["vouchers_withdrawn"], kept["reward"]["vouchers_issued"]) == (
        "archived",
        0,
        3,
    )
    check = {"code": spare["code"], "member_id": bo, "subtotal": 5000, "applies_to": "invoices"}
    assert (await ok(app, owner, "validate_promotion", check))["valid"]

    # With it: the unused ones are withdrawn (codes stop working) and their points come back; the used one stays.
    taken = await ok(app, owner, "archive_reward", {"reward_id": ten["id"], "withdraw_unused": True})
    assert (taken["vouchers_withdrawn"], taken["points_returned"], taken["reward"]["vouchers_issued"]) == (2, 600, 1)
    assert await balance(app, ada) == 1000 and await balance(app, bo) == 700
    for voucher, member in ((unused, ada), (spare, bo)):
        row, promotion = await voucher_row(app, voucher["id"])
        assert row.status == "withdrawn" and promotion.status == "inactive"
        refusal = await invoice_with(app, owner, member, voucher["code"])
        assert error_code(refusal) == "invalid_state" and reason(refusal) == "inactive"
    returned = [e for e in await entries(app, bo) if e.kind == EntryKind.reversal]
    assert [(e.points, e.source) for e in returned] == [(300, f"voucher:{spare['id']}")]
    row, promotion = await voucher_row(app, used["id"])
    assert row.status == "issued" and promotion.times_redeemed == 1 and promotion.status == "active"
    assert await vouchers_of(app, owner, bo) == [(spare["id"], "withdrawn", False), (used["id"], "issued", True)]

    # Again: nothing more comes back.
    again = await ok(app, owner, "archive_reward", {"reward_id": ten["id"], "withdraw_unused": True})
    assert (again["vouchers_withdrawn"], again["points_returned"]) == (0, 0)
    assert await balance(app, ada) == 1000 and await balance(app, bo) == 700


async def test_withdrawal_racing_the_vouchers_use_is_one_or_the_other(app: App, owner: Owner) -> None:
    ten = await reward(app, owner, points_cost=100)
    people = [await new_member(app, owner, points=100) for _ in range(12)]
    codes = {m: (await redeem(app, owner, m, ten["id"]))["code"] for m in people}
    # The archive starts amid the uses of the codes on invoices. Either outcome per voucher is right, never both (in
    # practice: on SQLite, whose writers take turns in arrival order, six uses win and the archive withdraws six; on
    # Postgres the uses reach their codes while the archive is still locking the holders' accounts).
    uses = [invoice_with(app, owner, m, codes[m]) for m in people]
    archive = call(app, owner.key, "archive_reward", {"reward_id": ten["id"], "withdraw_unused": True})
    results = await asyncio.gather(*uses[:6], archive, *uses[6:])
    archived, used_or_not = results[6], results[:6] + results[7:]
    assert archived.ok, archived.data
    withdrawn = 0
    for member, used in zip(people, used_or_not, strict=True):
        voucher = await vouchers_of(app, owner, member)
        if used.ok:
            assert voucher == [(voucher[0][0], "issued", True)], "used: final"
            assert await balance(app, member) == 0, "used: no points back"
        else:
            assert error_code(used) == "invalid_state" and reason(used) == "inactive", used.data
            assert voucher == [(voucher[0][0], "withdrawn", False)], "withdrawn: never used"
            assert await balance(app, member) == 100, "withdrawn: its points back"
            withdrawn += 1
    assert archived.data["vouchers_withdrawn"] == withdrawn
    assert archived.data["points_returned"] == 100 * withdrawn


async def test_a_merged_customer_keeps_their_vouchers(app: App, owner: Owner) -> None:
    survivor = await new_member(app, owner)
    duplicate = await new_member(app, owner, points=400)
    ten = await reward(app, owner, points_cost=250)
    voucher = await redeem(app, owner, duplicate, ten["id"])
    merged = await confirmed(app, owner.key, "merge_members", {"survivor_id": survivor, "duplicate_id": duplicate})
    assert merged.ok, merged.data
    row, promotion = await voucher_row(app, voucher["id"])
    assert row.member_id == survivor and promotion.member_id == survivor
    used = await invoice_with(app, owner, survivor, voucher["code"])
    assert used.ok and used.data["discount"] == 1000, used.data
    assert await balance(app, survivor) == 150
    gone = await refused(app, owner, "redeem_reward", {"member_id": duplicate, "reward_id": ten["id"]}, "invalid_state")
    assert gone["details"]["survivor_id"] == survivor, "a merged customer redeems nothing"
