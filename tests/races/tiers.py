"""Races of the tiers domain: one tier per name, one tier per threshold, and a manual tier set and cleared by
twenty calls with exactly one tier.changed event per real change."""

from __future__ import annotations

import uuid

from sqlmodel import col

from favmcp.domains.loyalty import earning
from favmcp.domains.loyalty.models import LoyaltyAccount, PointsEntry
from favmcp.registry.context import ToolContext
from favmcp.registry.models import EventRecord
from tests.race_kit import RACER, Call, N, Outcome, Scenario, Stage, as_owner, changed_by, member, ok, oks, rows, tokens


async def setup_nothing(s: Stage) -> None:
    s.name = f"Tier {uuid.uuid4().hex[:8]}"


async def check_one_tier(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1, "one tier per name"
    winner = winners[0].result.data["id"]
    assert all(o.details["existing_tier_id"] == winner for o in outs if not o.ok)
    listed = (await ok(s, "list_membership_tiers"))["items"]
    assert [t["id"] for t in listed if t["name"] == s.name] == [winner]


async def setup_two_tiers(s: Stage) -> None:
    s.tiers = [
        (await ok(s, "create_membership_tier", {"name": n, "threshold": t}))["id"] for n, t in (("A", 1), ("B", 2))
    ]


async def check_one_threshold(s: Stage, outs: list[Outcome]) -> None:
    at_500 = [t["id"] for t in (await ok(s, "list_membership_tiers"))["items"] if t["threshold"] == 500]
    assert len(at_500) == 1, "one tier per threshold"
    assert {o.result.data["id"] for o in oks(outs)} == set(at_500), "only the winner's updates succeed"
    assert all(o.details["existing_tier_id"] == at_500[0] for o in outs if not o.ok)
    assert len(await changed_by(s, outs)) == 1, "moved once"


async def earned(s: Stage, member_id: str, points: int) -> None:
    async def work(ctx: ToolContext) -> None:
        await earning.earn(ctx, member_id, points, source=f"race:{member_id}", multiply=False)

    await s.app.runner.run_system(s.owner.workspace_id, "test", work)


async def setup_member_in_silver(s: Stage) -> None:
    s.silver = (await ok(s, "create_membership_tier", {"name": "Silver", "threshold": 10}))["id"]
    s.gold = (await ok(s, "create_membership_tier", {"name": "Gold", "threshold": 1000}))["id"]
    s.member = await member(s)
    await earned(s, s.member, 50)


async def setup_enrol_racing_merge(s: Stage) -> None:
    await setup_member_in_silver(s)
    s.duplicate = await member(s, "Duplicate")
    await earned(s, s.duplicate, 20)
    [s.token] = await tokens(s, "merge_members", {"survivor_id": s.member, "duplicate_id": s.duplicate}, 1)


def enrol_racing_merge(s: Stage, i: int) -> Call:
    if i == RACER:
        merge = {"survivor_id": s.member, "duplicate_id": s.duplicate, "confirmation_token": s.token}
        return as_owner(s, "merge_members", merge)
    return as_owner(s, "enrol_membership", {"member_id": s.duplicate, "tier_id": s.gold if i % 2 else None})


async def check_enrol_racing_merge(s: Stage, outs: list[Outcome]) -> None:
    assert outs[RACER].ok, outs[RACER].result.data
    assert all(o.code == "invalid_state" and o.details["survivor_id"] == s.member for o in outs if not o.ok)
    accounts = await rows(s, LoyaltyAccount, col(LoyaltyAccount.workspace_id) == s.owner.workspace_id)
    assert [(a.member_id, a.balance) for a in accounts] == [(s.member, 70)], "no account left on the merged id"
    entries = await rows(s, PointsEntry, col(PointsEntry.member_id) == s.member)
    assert sum(e.points for e in entries) == 70
    now = (await ok(s, "get_member_profile", {"member_id": s.member}))["loyalty"]
    assert now["points"] == 70 and now["tier_id"] in (s.silver, s.gold) and now["manual"] == (now["tier_id"] == s.gold)


async def check_one_event_per_change(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    events = [
        e.payload
        for e in await rows(s, EventRecord, col(EventRecord.workspace_id) == s.owner.workspace_id)
        if e.name == "tier.changed" and e.payload["manual"]
    ]
    up = sum(1 for e in events if (e["previous_tier_id"], e["tier_id"]) == (s.silver, s.gold))
    down = sum(1 for e in events if (e["previous_tier_id"], e["tier_id"]) == (s.gold, s.silver))
    assert up + down == len(events) and up - down in (0, 1), events
    assert len(events) == len(await changed_by(s, outs)), "an event exactly when the tier in effect changed"
    now = (await ok(s, "get_member_profile", {"member_id": s.member}))["loyalty"]
    assert now["tier_id"] == (s.gold if up > down else s.silver) and now["manual"] == (up > down)


SCENARIOS: dict[str, Scenario] = {
    "create_membership_tier: twenty creates of one name": Scenario(
        "create_membership_tier",
        setup_nothing,
        lambda s, i: as_owner(s, "create_membership_tier", {"name": s.name, "threshold": 100 + i}),
        check_one_tier,
        frozenset({"conflict"}),
    ),
    "update_membership_tier: two tiers moved to one threshold": Scenario(
        "update_membership_tier",
        setup_two_tiers,
        lambda s, i: as_owner(s, "update_membership_tier", {"tier_id": s.tiers[i % 2], "threshold": 500}),
        check_one_threshold,
        frozenset({"conflict"}),
    ),
    "enrol_membership: a manual tier set and cleared": Scenario(
        "enrol_membership",
        setup_member_in_silver,
        lambda s, i: as_owner(s, "enrol_membership", {"member_id": s.member, "tier_id": s.gold if i % 2 else None}),
        check_one_event_per_change,
    ),
    "enrol_membership racing merge_members of that customer": Scenario(
        "enrol_membership",
        setup_enrol_racing_merge,
        enrol_racing_merge,
        check_enrol_racing_merge,
        frozenset({"invalid_state"}),
    ),
}
