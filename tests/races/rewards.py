"""Races of loyalty rewards: a reward made once per idempotency key, the last units of stock and one balance taken
once each, unused vouchers withdrawn (and their points returned) once however many archives run."""

from __future__ import annotations

import uuid

from sqlmodel import col

from favmcp.domains.loyalty import earning
from favmcp.domains.loyalty.models import EntryKind, LoyaltyAccount, PointsEntry, Voucher
from favmcp.registry.context import ToolContext
from tests.race_kit import N, Outcome, Scenario, Stage, as_owner, changed_by, member, ok, oks, rows

STOCK = 5


async def give(s: Stage, member_id: str, points: int) -> None:
    async def work(ctx: ToolContext) -> None:
        await earning.earn(ctx, member_id, points, source=f"race:{uuid.uuid4().hex}", multiply=False)

    await s.app.runner.run_system(s.owner.workspace_id, "race_points", work)


async def balance(s: Stage, member_id: str) -> int:
    [acct] = await rows(s, LoyaltyAccount, col(LoyaltyAccount.member_id) == member_id)
    return int(acct.balance)


async def new_reward(s: Stage, **fields: object) -> str:
    args = {"name": "Ten off", "kind": "discount", "amount_off": 1000, "points_cost": 100, **fields}
    return str((await ok(s, "create_reward", args))["id"])


async def setup_create(s: Stage) -> None:
    s.name = f"Reward {uuid.uuid4().hex[:6]}"


async def check_created_once(s: Stage, outs: list[Outcome]) -> None:
    assert len({o.result.data["id"] for o in oks(outs)}) == 1, "one key, one reward"
    listed = (await ok(s, "list_rewards", {"limit": 100}))["items"]
    assert [r["name"] for r in listed].count(s.name) == 1


async def setup_last_units(s: Stage) -> None:
    s.reward = await new_reward(s, stock=STOCK)
    s.members = [await member(s, f"M{i}") for i in range(N)]
    for m in s.members:
        await give(s, m, 100)


async def check_last_units(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == STOCK, "each unit goes once"
    assert all(o.details["reason"] == "out_of_stock" for o in outs if not o.ok)
    winners = {o.call.args["member_id"] for o in oks(outs)}
    assert [await balance(s, m) for m in s.members] == [0 if m in winners else 100 for m in s.members]
    listed = (await ok(s, "list_rewards", {"limit": 100}))["items"]
    assert [(r["stock"], r["vouchers_issued"]) for r in listed if r["id"] == s.reward] == [(0, STOCK)]


async def setup_one_balance(s: Stage) -> None:
    s.reward = await new_reward(s)
    s.member = await member(s)
    await give(s, s.member, 250)


async def check_one_balance(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 2, "250 points buy two of 100"
    assert all(o.details["reason"] == "insufficient_points" for o in outs if not o.ok)
    assert await balance(s, s.member) == 50
    ledger = await rows(s, PointsEntry, col(PointsEntry.member_id) == s.member)
    assert sum(e.points for e in ledger) == 50 and len([e for e in ledger if e.kind == EntryKind.redeem]) == 2


async def setup_withdrawals(s: Stage) -> None:
    s.reward = await new_reward(s)
    s.members = [await member(s, f"M{i}") for i in range(4)]
    s.vouchers = []
    for m in s.members:
        await give(s, m, 100)
        s.vouchers.append(await ok(s, "redeem_reward", {"member_id": m, "reward_id": s.reward}))
    used = s.vouchers[0]
    lines = [{"description": "Cut", "unit_amount": 5000, "quantity": 1, "tax_rate": "0"}]
    await ok(s, "create_invoice", {"member_id": s.members[0], "lines": lines, "promotion_code": used["code"]})


async def check_withdrawn_once(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.ok and o.result.data["reward"]["status"] == "archived" for o in outs)
    assert sum(o.result.data["vouchers_withdrawn"] for o in outs) == 3, "each unused voucher once"
    assert sum(o.result.data["points_returned"] for o in outs) == 300
    assert [await balance(s, m) for m in s.members] == [0, 100, 100, 100], "the used one gets nothing back"
    statuses = [v.status for v in await rows(s, Voucher, col(Voucher.reward_id) == s.reward)]
    assert sorted(statuses) == ["issued", "withdrawn", "withdrawn", "withdrawn"]
    assert 1 <= len(await changed_by(s, outs)) <= 4


SCENARIOS: dict[str, Scenario] = {
    "create_reward: twenty creates with one idempotency key": Scenario(
        "create_reward",
        setup_create,
        lambda s, i: as_owner(
            s, "create_reward", {"name": s.name, "kind": "discount", "percent_off": "10", "points_cost": 50}
        ),
        check_created_once,
        one_key=True,
    ),
    "redeem_reward: twenty customers for the last five": Scenario(
        "redeem_reward",
        setup_last_units,
        lambda s, i: as_owner(s, "redeem_reward", {"member_id": s.members[i], "reward_id": s.reward}),
        check_last_units,
        frozenset({"conflict"}),
    ),
    "redeem_reward: twenty redemptions of one balance": Scenario(
        "redeem_reward",
        setup_one_balance,
        lambda s, i: as_owner(s, "redeem_reward", {"member_id": s.member, "reward_id": s.reward}),
        check_one_balance,
        frozenset({"conflict"}),
    ),
    "archive_reward: twenty archives withdrawing unused vouchers": Scenario(
        "archive_reward",
        setup_withdrawals,
        lambda s, i: as_owner(s, "archive_reward", {"reward_id": s.reward, "withdraw_unused": True}),
        check_withdrawn_once,
    ),
}
