"""Races of the loyalty points: the program saved as one caller's whole change, an earn retried with one key
credited once, redemptions and downward adjustments never beyond the balance, each expired lot written off once."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col

from favmcp.domains.loyalty import ledger
from favmcp.domains.loyalty.models import EntryKind, LoyaltyAccount, PointsEntry
from favmcp.registry.context import ToolContext
from tests.race_kit import N, Outcome, Scenario, Stage, as_owner, member, ok, oks, rows


async def balance_and_ledger(s: Stage, member_id: str) -> tuple[int, int]:
    [acct] = await rows(s, LoyaltyAccount, col(LoyaltyAccount.member_id) == member_id)
    return acct.balance, sum(e.points for e in await rows(s, PointsEntry, col(PointsEntry.member_id) == member_id))


async def no_setup(s: Stage) -> None:
    return None


async def setup_member(s: Stage) -> None:
    s.member = await member(s)


async def setup_150(s: Stage) -> None:
    s.member = await member(s)
    await ok(s, "earn_loyalty_points", {"member_id": s.member, "points": 150, "reason": "gift"})


async def check_program(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    saved = await ok(s, "get_loyalty_program")
    assert saved["saved"] and saved["expiry_days"] - saved["min_redeem_points"] == 90, "one caller's whole change"


async def check_earned_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N and len({o.result.data["entry"]["id"] for o in outs}) == 1
    assert await balance_and_ledger(s, s.member) == (100, 100)


async def check_one_redemption(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 1
    assert all(o.details["reason"] == "insufficient_points" for o in outs if not o.ok)
    assert await balance_and_ledger(s, s.member) == (50, 50)


async def check_adjustments(s: Stage, outs: list[Outcome]) -> None:
    ups = sum(1 for o in oks(outs) if o.call.args["points"] > 0)
    downs = sum(1 for o in oks(outs) if o.call.args["points"] < 0)
    assert ups == N // 2, "upward adjustments always succeed"
    assert all(o.details["reason"] == "insufficient_points" for o in outs if not o.ok)
    got, summed = await balance_and_ledger(s, s.member)
    assert got == summed == 150 + 5 * ups - 100 * downs >= 0


async def setup_expired(s: Stage) -> None:
    s.members = [await member(s), await member(s)]

    async def lots(ctx: ToolContext) -> None:
        for m in s.members:
            acct = await ledger.account(ctx, m)
            for points in (30, 12):
                past = ctx.now - timedelta(days=1)
                await ledger.credit(ctx, acct, points, kind=EntryKind.earn, expires_at=past)

    await s.app.runner.run_system(s.owner.workspace_id, "test", lots)


async def check_expired_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    assert sum(o.result.data["lots"] for o in outs) == 4 and sum(o.result.data["points"] for o in outs) == 84
    for m in s.members:
        expired = await rows(s, PointsEntry, col(PointsEntry.member_id) == m, col(PointsEntry.kind) == "expire")
        assert sorted(e.points for e in expired) == [-30, -12], "one expire entry per lot"
        assert await balance_and_ledger(s, m) == (0, 0)


SCENARIOS: dict[str, Scenario] = {
    "update_loyalty_program: twenty first saves": Scenario(
        "update_loyalty_program",
        no_setup,
        lambda s, i: as_owner(s, "update_loyalty_program", {"min_redeem_points": 10 + i, "expiry_days": 100 + i}),
        check_program,
    ),
    "earn_loyalty_points: one earn retried twenty times with one key": Scenario(
        "earn_loyalty_points",
        setup_member,
        lambda s, i: as_owner(s, "earn_loyalty_points", {"member_id": s.member, "points": 100, "reason": "gift"}),
        check_earned_once,
        one_key=True,
    ),
    "redeem_loyalty_points: twenty redemptions of 100 on 150": Scenario(
        "redeem_loyalty_points",
        setup_150,
        lambda s, i: as_owner(s, "redeem_loyalty_points", {"member_id": s.member, "points": 100}),
        check_one_redemption,
        frozenset({"conflict"}),
    ),
    "adjust_loyalty_points: ten of -100 and ten of +5 on 150": Scenario(
        "adjust_loyalty_points",
        setup_150,
        lambda s, i: as_owner(
            s, "adjust_loyalty_points", {"member_id": s.member, "points": -100 if i % 2 else 5, "reason": "race"}
        ),
        check_adjustments,
        frozenset({"conflict"}),
    ),
    "expire_points: twenty runs over two customers' expired lots": Scenario(
        "expire_points",
        setup_expired,
        lambda s, i: as_owner(s, "expire_points", {"member_id": s.members[0]} if i % 3 == 0 else {}),
        check_expired_once,
    ),
}
