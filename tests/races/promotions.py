"""Races of the promotions domain: one code created once, a promotion deactivated once."""

from __future__ import annotations

import uuid

from tests.race_kit import N, Outcome, Scenario, Stage, as_owner, changed_by, ok, oks


async def setup_code(s: Stage) -> None:
    s.code = f"RACE{uuid.uuid4().hex[:8].upper()}"


async def check_one_code(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1, "one active promotion per code"
    winner = winners[0].result.data["id"]
    assert all(o.details["existing_promotion_id"] == winner for o in outs if not o.ok)
    listed = (await ok(s, "list_promotions", {"limit": 100}))["items"]
    assert [p["id"] for p in listed if p["code"] == s.code] == [winner]


async def setup_promotion(s: Stage) -> None:
    s.promotion = (await ok(s, "create_promotion", {"code": "STOPME", "amount_off": 100}))["id"]


async def check_deactivated_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N and all(o.result.data["status"] == "inactive" for o in outs)
    assert len(await changed_by(s, outs)) == 1, "deactivated once"


SCENARIOS: dict[str, Scenario] = {
    "create_promotion: twenty creates of one code": Scenario(
        "create_promotion",
        setup_code,
        lambda s, i: as_owner(s, "create_promotion", {"code": s.code.lower() if i % 2 else s.code, "percent_off": "5"}),
        check_one_code,
        frozenset({"conflict"}),
    ),
    "deactivate_promotion: twenty deactivations": Scenario(
        "deactivate_promotion",
        setup_promotion,
        lambda s, i: as_owner(s, "deactivate_promotion", {"promotion_id": s.promotion}),
        check_deactivated_once,
    ),
}
