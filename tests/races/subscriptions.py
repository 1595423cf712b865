"""Races of the subscriptions domain: twenty concurrent calls of each mutating tool on shared targets."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from sqlmodel import col

from favmcp.domains.subscriptions.models import CreditEntry, SubscriptionPeriod
from tests.race_kit import Call, Outcome, Scenario, Stage, as_owner, changed_by, member, ok, oks, rows, tokens

MONTHLY = {"kind": "membership", "name": "Monthly", "unit_amount": 5000, "interval": "month"}
PACK = {"kind": "pack", "name": "Five classes", "unit_amount": 6000, "credits": 5, "validity_days": 60}


async def _plan(s: Stage, **terms: Any) -> str:
    return str((await ok(s, "create_plan", {**MONTHLY, **terms}))["id"])


async def _pay(s: Stage, invoice_id: str) -> None:
    owed = (await ok(s, "get_invoice", {"invoice_id": invoice_id}))["amount_remaining"]
    args = {"invoice_id": invoice_id, "amount": owed, "method": "cash", "idempotency_key": uuid4().hex}
    await ok(s, "record_payment", args)


async def _paid(s: Stage, plan_id: str) -> str:
    sub = await ok(s, "subscribe_member", {"member_id": await member(s), "plan_id": plan_id})
    await _pay(s, sub["latest_invoice_id"])
    return str(sub["id"])


async def _sub(s: Stage) -> dict[str, Any]:
    return await ok(s, "get_subscription", {"subscription_id": s.sub_id})


# -- plans -----------------------------------------------------------------------------------------------------


async def nothing(s: Stage) -> None:
    s.name = f"Plan {uuid4().hex[:8]}"


async def check_one_plan(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs) and len({o.result.data["id"] for o in outs}) == 1
    listed = (await ok(s, "list_plans", {"limit": 100}))["items"]
    assert len([p for p in listed if p["name"] == s.name]) == 1


async def setup_plan(s: Stage) -> None:
    s.plan_id = await _plan(s)


async def check_price(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    plan = next(p for p in (await ok(s, "list_plans", {"limit": 100}))["items"] if p["id"] == s.plan_id)
    assert plan["unit_amount"] in {1000 + i for i in range(len(outs))}


async def check_archived_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs) and all(o.result.data["status"] == "archived" for o in outs)
    assert len(await changed_by(s, outs)) == 1


# -- subscriptions ---------------------------------------------------------------------------------------------


async def setup_subscribe(s: Stage) -> None:
    s.plan_id = await _plan(s)
    s.member_id = await member(s)


async def check_one_subscription(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1
    assert all(o.details["existing_subscription_id"] == winners[0].result.data["id"] for o in outs if not o.ok)
    listed = (await ok(s, "list_subscriptions", {"member_id": s.member_id}))["items"]
    assert [x["id"] for x in listed] == [winners[0].result.data["id"]]
    periods = await rows(s, SubscriptionPeriod, col(SubscriptionPeriod.member_id) == s.member_id)
    assert len(periods) == 1 and periods[0].invoice_id


async def setup_active(s: Stage) -> None:
    s.sub_id = await _paid(s, await _plan(s))


async def check_paused_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    assert (await _sub(s))["status"] == "paused"
    assert len([e for e in await changed_by(s, outs) if "status" in str(e["changes"])]) == 1


async def setup_paused(s: Stage) -> None:
    await setup_active(s)
    await ok(s, "pause_subscription", {"subscription_id": s.sub_id})


async def check_resumed_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    seen = await _sub(s)
    assert seen["status"] == "active" and seen["invoice_count"] == 1
    assert len(await changed_by(s, outs)) == 1


async def setup_cancel(s: Stage) -> None:
    pack_id = str((await ok(s, "create_plan", PACK))["id"])
    s.sub_id = await _paid(s, pack_id)
    s.tokens = await tokens(s, "cancel_subscription", {"subscription_id": s.sub_id}, 20)


async def check_cancelled_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    assert sum(o.result.data["credits_forfeited"] for o in outs) == 5
    seen = await _sub(s)
    assert seen["status"] == "cancelled" and seen["credits_left"] == 0
    forfeits = await rows(
        s, CreditEntry, col(CreditEntry.subscription_id) == s.sub_id, col(CreditEntry.kind) == "forfeit"
    )
    assert len(forfeits) == 1


async def setup_change(s: Stage) -> None:
    await setup_active(s)
    s.plans = [await _plan(s, name="Silver", unit_amount=7000), await _plan(s, name="Gold", unit_amount=9000)]


async def check_changed(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    assert (await _sub(s))["pending_plan_id"] in s.plans


async def setup_billing(s: Stage) -> None:
    plan_id = await _plan(s, interval="week")
    s.subs = [await _paid(s, plan_id) for _ in range(3)]
    s.app.runner.clock.advance(days=8)  # type: ignore[attr-defined]


async def check_billed_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    assert sum(o.result.data["renewed"] for o in outs) == 3
    for sub_id in s.subs:
        periods = await rows(s, SubscriptionPeriod, col(SubscriptionPeriod.subscription_id) == sub_id)
        assert len(periods) == 2 and len({p.invoice_id for p in periods}) == 2


def _cancel(s: Stage, i: int) -> Call:
    return as_owner(s, "cancel_subscription", {"subscription_id": s.sub_id, "confirmation_token": s.tokens[i]})


SCENARIOS: dict[str, Scenario] = {
    "create_plan: one idempotency key": Scenario(
        "create_plan",
        nothing,
        lambda s, i: as_owner(s, "create_plan", {**MONTHLY, "name": s.name}),
        check_one_plan,
        one_key=True,
    ),
    "update_plan: twenty prices": Scenario(
        "update_plan",
        setup_plan,
        lambda s, i: as_owner(s, "update_plan", {"plan_id": s.plan_id, "unit_amount": 1000 + i}),
        check_price,
    ),
    "archive_plan: one plan": Scenario(
        "archive_plan",
        setup_plan,
        lambda s, i: as_owner(s, "archive_plan", {"plan_id": s.plan_id}),
        check_archived_once,
    ),
    "subscribe_member: one member, one membership": Scenario(
        "subscribe_member",
        setup_subscribe,
        lambda s, i: as_owner(s, "subscribe_member", {"member_id": s.member_id, "plan_id": s.plan_id}),
        check_one_subscription,
        frozenset({"conflict"}),
    ),
    "pause_subscription: one subscription": Scenario(
        "pause_subscription",
        setup_active,
        lambda s, i: as_owner(s, "pause_subscription", {"subscription_id": s.sub_id}),
        check_paused_once,
    ),
    "resume_subscription: one subscription": Scenario(
        "resume_subscription",
        setup_paused,
        lambda s, i: as_owner(s, "resume_subscription", {"subscription_id": s.sub_id}),
        check_resumed_once,
    ),
    "cancel_subscription: a pack cancelled now twenty times": Scenario(
        "cancel_subscription",
        setup_cancel,
        _cancel,
        check_cancelled_once,
    ),
    "change_subscription_plan: two plans": Scenario(
        "change_subscription_plan",
        setup_change,
        lambda s, i: as_owner(s, "change_subscription_plan", {"subscription_id": s.sub_id, "plan_id": s.plans[i % 2]}),
        check_changed,
    ),
    "run_subscription_billing: three due subscriptions": Scenario(
        "run_subscription_billing",
        setup_billing,
        lambda s, i: as_owner(s, "run_subscription_billing", {}),
        check_billed_once,
    ),
}
