"""Subscriptions, memberships and class packs: the rules of domain-rules.md, on SQLite and Postgres.

Invoices are paid through record_payment, as a business would; credits are reserved, released and consumed
through the API bookings use (subscriptions/credits.py), run as the system."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from favmcp.app import App
from favmcp.core.errors import FavError
from favmcp.domains.subscriptions import credits
from favmcp.domains.subscriptions.models import CreditEntry, SubscriptionPeriod
from favmcp.domains.subscriptions.service import add_intervals
from favmcp.registry.context import ToolContext
from favmcp.registry.models import EventRecord
from tests.support import FakeClock, Owner, call, confirmed, error_code, join, signup, unique_email

T = TypeVar("T")


async def ok(app: App, owner: Owner, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


async def new_member(app: App, owner: Owner) -> str:
    return str((await ok(app, owner, "create_member", {"name": "Sam Lee", "email": unique_email("sam")}))["id"])


async def membership(app: App, owner: Owner, **terms: Any) -> dict[str, Any]:
    args = {"kind": "membership", "name": "Monthly", "unit_amount": 5000, "interval": "month", **terms}
    return await ok(app, owner, "create_plan", args)


async def pack(app: App, owner: Owner, **terms: Any) -> dict[str, Any]:
    args = {"kind": "pack", "name": "Ten classes", "unit_amount": 12000, "credits": 10, "validity_days": 90, **terms}
    return await ok(app, owner, "create_plan", args)


async def subscribe(app: App, owner: Owner, plan_id: str, member_id: str | None = None, **more: Any) -> dict[str, Any]:
    member_id = member_id or await new_member(app, owner)
    return await ok(app, owner, "subscribe_member", {"member_id": member_id, "plan_id": plan_id, **more})


async def detail(app: App, owner: Owner, sub_id: str) -> dict[str, Any]:
    return await ok(app, owner, "get_subscription", {"subscription_id": sub_id})


async def pay(app: App, owner: Owner, invoice_id: str) -> None:
    """Pay what is still owed on an invoice, in cash."""
    sub_invoice = await ok(app, owner, "get_invoice", {"invoice_id": invoice_id})
    await ok(
        app, owner, "record_payment",
        {"invoice_id": invoice_id, "amount": sub_invoice["amount_remaining"], "method": "cash",
         "idempotency_key": f"pay-{uuid4().hex}"},
    )  # fmt: skip


async def bill(app: App, owner: Owner, **args: Any) -> dict[str, Any]:
    return await ok(app, owner, "run_subscription_billing", args)


async def as_system(app: App, owner: Owner, work: Callable[[ToolContext], Awaitable[T]]) -> T:
    return await app.runner.run_system(owner.workspace_id, "test", work)


async def paid_membership(app: App, owner: Owner, **terms: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    plan = await membership(app, owner, **terms)
    sub = await subscribe(app, owner, plan["id"])
    await pay(app, owner, sub["latest_invoice_id"])
    return plan, await detail(app, owner, sub["id"])


async def paid_pack(app: App, owner: Owner, member_id: str | None = None, **terms: Any) -> dict[str, Any]:
    plan = await pack(app, owner, **terms)
    sub = await subscribe(app, owner, plan["id"], member_id)
    await pay(app, owner, sub["latest_invoice_id"])
    return await detail(app, owner, sub["id"])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- plans -----------------------------------------------------------------------------------------------------


async def test_plans_carry_their_terms_and_subscriber_counts(app: App, owner: Owner) -> None:
    monthly = await membership(app, owner, trial_days=14, tax_rate="21")
    assert monthly["currency"] == "EUR" and monthly["unit_amount"] == 5000 and monthly["tax_rate"] == "21"
    assert monthly["interval"] == "month" and monthly["interval_count"] == 1 and monthly["credits"] is None
    ten = await pack(app, owner, currency="USD")
    assert ten["currency"] == "USD" and ten["credits"] == 10 and ten["interval"] is None
    for bad in (
        {"kind": "membership", "name": "X", "unit_amount": 100},
        {"kind": "membership", "name": "X", "unit_amount": 100, "interval": "month", "credits": 5},
        {"kind": "pack", "name": "X", "unit_amount": 100, "credits": 5},
        {"kind": "pack", "name": "X", "unit_amount": 100, "credits": 5, "validity_days": 30, "interval": "week"},
        {"kind": "membership", "name": "X", "unit_amount": 10.5, "interval": "month"},
    ):
        assert error_code(await call(app, owner.key, "create_plan", bad)) == "validation_failed", bad
    await subscribe(app, owner, monthly["id"])  # trialing counts
    await subscribe(app, owner, ten["id"])  # unpaid: not yet a subscriber
    listed = {p["id"]: p for p in (await ok(app, owner, "list_plans"))["items"]}
    assert listed[monthly["id"]]["active_subscribers"] == 1 and listed[ten["id"]]["active_subscribers"] == 0
    packs = (await ok(app, owner, "list_plans", {"kind": "pack"}))["items"]
    assert [p["id"] for p in packs] == [ten["id"]]
    wrong = await call(app, owner.key, "update_plan", {"plan_id": monthly["id"], "credits": 3})
    assert error_code(wrong) == "validation_failed"
    moved = await call(app, owner.key, "update_plan", {"plan_id": monthly["id"], "unit_amount": 10, "currency": "USD"})
    assert error_code(moved) == "validation_failed", "a plan's currency stays"
    same = await ok(app, owner, "update_plan", {"plan_id": monthly["id"], "unit_amount": 5100, "currency": "EUR"})
    assert (same["unit_amount"], same["currency"]) == (5100, "EUR")


async def test_archived_plan_sells_no_more_but_existing_subscriptions_renew(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    plan, sub = await paid_membership(app, owner)
    archived = await ok(app, owner, "archive_plan", {"plan_id": plan["id"]})
    assert archived["status"] == "archived" and archived["active_subscribers"] == 1
    assert (await ok(app, owner, "archive_plan", {"plan_id": plan["id"]}))["status"] == "archived"
    refused = await call(app, owner.key, "subscribe_member", {"member_id": sub["member_id"], "plan_id": plan["id"]})
    assert error_code(refused) == "invalid_state"
    clock.advance(days=32)
    assert (await bill(app, owner))["renewed"] == 1
    assert (await detail(app, owner, sub["id"]))["invoice_count"] == 2


# -- subscribing and paying ------------------------------------------------------------------------------------


async def test_first_invoice_and_activation_on_payment(app: App, owner: Owner) -> None:
    plan = await membership(app, owner, tax_rate="21")
    sub = await subscribe(app, owner, plan["id"])
    assert sub["status"] == "incomplete" and not sub["has_access"] and sub["unit_amount"] == 5000
    seen = await detail(app, owner, sub["id"])
    assert seen["invoice_count"] == 1
    first = seen["invoices"][0]
    assert first["invoice_id"] == sub["latest_invoice_id"] and first["status"] == "open"
    assert first["total"] == 6050 and first["currency"] == "EUR" and first["number"]
    invoice = await ok(app, owner, "get_invoice", {"invoice_id": first["invoice_id"]})
    assert invoice["lines"][0]["plan_id"] == plan["id"] and invoice["member_id"] == sub["member_id"]
    again = await call(app, owner.key, "subscribe_member", {"member_id": sub["member_id"], "plan_id": plan["id"]})
    assert error_code(again) == "conflict"
    assert again.data["error"]["details"]["existing_subscription_id"] == sub["id"]
    await pay(app, owner, first["invoice_id"])
    active = await detail(app, owner, sub["id"])
    assert active["status"] == "active" and active["has_access"] and active["invoices"][0]["status"] == "paid"
    assert active["current_period_start"] == sub["current_period_start"]
    events = (await ok(app, owner, "list_subscriptions", {"member_id": sub["member_id"]}))["items"]
    assert [e["id"] for e in events] == [sub["id"]]


async def test_lifecycle_events_are_recorded(app: App, owner: Owner, clock: FakeClock) -> None:
    _, sub = await paid_membership(app, owner)
    await ok(app, owner, "pause_subscription", {"subscription_id": sub["id"]})
    await ok(app, owner, "resume_subscription", {"subscription_id": sub["id"]})
    clock.advance(days=32)
    await bill(app, owner)
    clock.advance(days=9)
    await bill(app, owner)
    await confirmed(app, owner.key, "cancel_subscription", {"subscription_id": sub["id"]})
    async with app.db.transaction() as session:
        stmt = select(EventRecord).where(col(EventRecord.workspace_id) == owner.workspace_id)
        found = [e for e in (await session.execute(stmt)).scalars() if e.payload.get("subscription_id") == sub["id"]]
    names = [e.name for e in sorted(found, key=lambda e: e.id)]
    assert names == [
        "subscription.created", "subscription.activated", "subscription.paused", "subscription.resumed",
        "subscription.renewed", "subscription.past_due", "subscription.cancelled",
    ]  # fmt: skip


async def test_the_customer_profile_shows_live_subscriptions_and_credits(app: App, owner: Owner) -> None:
    member_id = await new_member(app, owner)
    plan = await membership(app, owner)
    monthly = await subscribe(app, owner, plan["id"], member_id)
    ten = await paid_pack(app, owner, member_id)
    ended = await paid_pack(app, owner, member_id)
    assert (await confirmed(app, owner.key, "cancel_subscription", {"subscription_id": ended["id"]})).ok
    money = (await ok(app, owner, "get_member_profile", {"member_id": member_id}))["money"]
    shown = {s["id"]: s for s in money["subscriptions"]}
    assert set(shown) == {monthly["id"], ten["id"]}
    assert shown[ten["id"]]["credits_left"] == 10 and shown[monthly["id"]]["credits_left"] is None
    assert shown[monthly["id"]]["status"] == "incomplete" and money["credits_left"] == 10


async def test_unknown_or_erased_members_cannot_subscribe(app: App, owner: Owner) -> None:
    plan = await membership(app, owner)
    missing = await call(app, owner.key, "subscribe_member", {"member_id": "mem_nope", "plan_id": plan["id"]})
    assert error_code(missing) == "not_found"
    other = await signup(app)
    foreign = await call(app, other.key, "get_subscription", {"subscription_id": (await subscribe(
        app, owner, plan["id"]))["id"]})  # fmt: skip
    assert error_code(foreign) == "not_found"


async def test_erasing_a_member_ends_their_subscriptions_and_keeps_the_records(app: App, owner: Owner) -> None:
    _, sub = await paid_membership(app, owner)
    erased = await confirmed(app, owner.key, "delete_member", {"member_id": sub["member_id"]})
    assert erased.ok, erased.data
    after = await detail(app, owner, sub["id"])
    assert after["status"] == "cancelled" and after["cancellation_reason"] == "member_erased"
    assert after["invoice_count"] == 1


async def test_merge_moves_subscriptions_and_export_includes_them(app: App, owner: Owner) -> None:
    survivor = await new_member(app, owner)
    sub = await paid_pack(app, owner)
    merged = await confirmed(
        app, owner.key, "merge_members", {"survivor_id": survivor, "duplicate_id": sub["member_id"]}
    )
    assert merged.ok, merged.data
    moved = await detail(app, owner, sub["id"])
    assert moved["member_id"] == survivor and moved["credits_left"] == 10
    exported = await ok(app, owner, "export_member_data", {"member_id": survivor})
    text = str(exported)
    assert sub["id"] in text and "credit_entries" in text


# -- renewals --------------------------------------------------------------------------------------------------


async def test_ten_concurrent_billing_runs_make_one_invoice_per_period(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    _, sub = await paid_membership(app, owner)
    _, other = await paid_membership(app, owner)
    clock.advance(days=32)
    runs = await asyncio.gather(*[call(app, owner.key, "run_subscription_billing", {}) for _ in range(10)])
    assert all(r.ok for r in runs), [r.data for r in runs if not r.ok]
    assert sum(r.data["renewed"] for r in runs) == 2
    for s in (sub, other):
        seen = await detail(app, owner, s["id"])
        assert seen["invoice_count"] == 2 and seen["status"] == "active"
        assert seen["current_period_start"] == s["current_period_end"]
        assert seen["invoices"][0]["period_start"] == s["current_period_end"]
    async with app.db.transaction() as session:
        stmt = select(SubscriptionPeriod).where(col(SubscriptionPeriod.subscription_id) == sub["id"])
        periods = (await session.execute(stmt)).scalars().all()
    assert len(periods) == 2 and len({p.invoice_id for p in periods}) == 2
    assert (await bill(app, owner))["renewed"] == 0


async def test_billing_races_payments_of_the_same_customers(app: App, owner: Owner, clock: FakeClock) -> None:
    subs = [(await paid_membership(app, owner))[1] for _ in range(3)]
    clock.advance(days=32)
    await bill(app, owner)
    owed = [(await detail(app, owner, s["id"]))["latest_invoice_id"] for s in subs]
    clock.advance(days=31)
    runs = [call(app, owner.key, "run_subscription_billing", {}) for _ in range(10)]
    results = await asyncio.gather(*runs, *[pay(app, owner, invoice_id) for invoice_id in owed])
    assert all(r.ok for r in results[:10]), [r.data for r in results[:10] if not r.ok]
    assert sum(r.data["renewed"] for r in results[:10]) == 3
    for s in subs:
        seen = await detail(app, owner, s["id"])
        assert seen["invoice_count"] == 3 and seen["invoices"][1]["status"] == "paid"


async def test_the_hourly_job_bills_as_the_system(app: App, owner: Owner, clock: FakeClock) -> None:
    _, sub = await paid_membership(app, owner)
    (job,) = [j for j in app.runner.platform.jobs if j.name == "subscription_billing"]
    assert job.every == timedelta(hours=1)
    clock.advance(days=32)
    for _ in range(2):
        await as_system(app, owner, job.run)
    assert (await detail(app, owner, sub["id"]))["invoice_count"] == 2


async def test_billing_catches_up_every_missed_period_without_drift(app: App, owner: Owner, clock: FakeClock) -> None:
    _, sub = await paid_membership(app, owner, interval="week", interval_count=2)
    clock.advance(days=43)
    done = await bill(app, owner)
    assert done["renewed"] == 3
    seen = await detail(app, owner, sub["id"])
    start = at(sub["current_period_start"])
    assert at(seen["current_period_start"]) == start + timedelta(weeks=6)
    assert at(seen["current_period_end"]) == start + timedelta(weeks=8)
    assert seen["invoice_count"] == 4


def test_periods_count_from_the_anchor_on_the_local_wall_clock() -> None:
    tz = ZoneInfo("Europe/Amsterdam")
    anchor = datetime(2027, 1, 31, 9, 0, tzinfo=tz).astimezone(UTC)
    ends = [add_intervals(anchor, "month", n, tz).astimezone(tz) for n in (1, 2, 3, 12)]
    assert [(e.month, e.day, e.hour) for e in ends] == [(2, 28, 9), (3, 31, 9), (4, 30, 9), (1, 31, 9)]
    leap = add_intervals(datetime(2028, 2, 29, tzinfo=UTC), "year", 1, ZoneInfo("UTC"))
    assert (leap.month, leap.day) == (2, 28)
    week = add_intervals(datetime(2027, 3, 22, 9, 0, tzinfo=tz).astimezone(UTC), "week", 1, tz)
    assert week.astimezone(tz).hour == 9 and week - datetime(2027, 3, 22, 8, 0, tzinfo=UTC) == timedelta(hours=167)


async def test_billing_refuses_a_future_up_to(app: App, owner: Owner, clock: FakeClock) -> None:
    future = (clock.now() + timedelta(days=1)).isoformat()
    assert error_code(await call(app, owner.key, "run_subscription_billing", {"up_to": future})) == (
        "validation_failed"
    )
    past = (clock.now() - timedelta(days=1)).isoformat()
    assert (await bill(app, owner, up_to=past))["renewed"] == 0


async def test_unpaid_renewal_goes_past_due_after_its_due_date_and_back_when_paid(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    _, sub = await paid_membership(app, owner)
    clock.advance(days=32)
    await bill(app, owner)
    renewal = (await detail(app, owner, sub["id"]))["invoices"][0]
    due = datetime.fromisoformat(renewal["due_date"]).date()
    today = clock.now().astimezone(ZoneInfo("Europe/Amsterdam")).date()  # due dates are the workspace's days
    assert (due - today).days in (6, 7, 8)
    clock.advance(days=(due - today).days)  # on the due date: not yet late
    assert (await bill(app, owner))["past_due"] == 0
    clock.advance(days=2)
    assert (await bill(app, owner))["past_due"] == 1
    late = await detail(app, owner, sub["id"])
    assert late["status"] == "past_due" and not late["has_access"]
    assert (await bill(app, owner))["past_due"] == 0
    await pay(app, owner, renewal["invoice_id"])
    assert (await detail(app, owner, sub["id"]))["status"] == "active"


async def test_voided_invoices_owe_nothing(app: App, owner: Owner, clock: FakeClock) -> None:
    plan = await membership(app, owner)
    never = await subscribe(app, owner, plan["id"])
    voided = await confirmed(app, owner.key, "void_invoice", {"invoice_id": never["latest_invoice_id"]})
    assert voided.ok, voided.data
    ended = await detail(app, owner, never["id"])
    assert ended["status"] == "cancelled" and ended["cancellation_reason"] == "invoice_voided"
    _, sub = await paid_membership(app, owner)
    clock.advance(days=32)
    await bill(app, owner)
    clock.advance(days=9)
    assert (await bill(app, owner))["past_due"] == 1
    renewal = (await detail(app, owner, sub["id"]))["latest_invoice_id"]
    assert (await confirmed(app, owner.key, "void_invoice", {"invoice_id": renewal})).ok
    assert (await detail(app, owner, sub["id"]))["status"] == "active"
    assert (await bill(app, owner))["past_due"] == 0


async def test_update_plan_price_applies_at_each_subscriptions_next_renewal(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    plan, sub = await paid_membership(app, owner)
    updated = await ok(app, owner, "update_plan", {"plan_id": plan["id"], "unit_amount": 6000, "name": "Monthly+"})
    assert updated["unit_amount"] == 6000 and updated["name"] == "Monthly+"
    kept = await detail(app, owner, sub["id"])
    assert kept["unit_amount"] == 5000 and kept["invoices"][0]["total"] == 5000
    clock.advance(days=32)
    await bill(app, owner)
    renewed = await detail(app, owner, sub["id"])
    assert renewed["unit_amount"] == 6000 and renewed["invoices"][0]["total"] == 6000
    assert renewed["invoices"][1]["total"] == 5000


async def test_plan_change_applies_from_the_next_period(app: App, owner: Owner, clock: FakeClock) -> None:
    _, sub = await paid_membership(app, owner)
    gold = await membership(app, owner, name="Gold", unit_amount=9000)
    ten = await pack(app, owner)
    changed = await ok(app, owner, "change_subscription_plan", {"subscription_id": sub["id"], "plan_id": gold["id"]})
    assert changed["pending_plan_id"] == gold["id"] and changed["plan_id"] == sub["plan_id"]
    assert changed["unit_amount"] == 5000
    wrong = await call(app, owner.key, "change_subscription_plan", {"subscription_id": sub["id"], "plan_id": ten["id"]})
    assert error_code(wrong) == "validation_failed"
    clock.advance(days=32)
    await bill(app, owner)
    moved = await detail(app, owner, sub["id"])
    assert moved["plan_id"] == gold["id"] and moved["plan_name"] == "Gold" and moved["pending_plan_id"] is None
    assert moved["invoices"][0]["total"] == 9000
    withdrawn = await ok(app, owner, "change_subscription_plan", {"subscription_id": sub["id"], "plan_id": gold["id"]})
    assert withdrawn["pending_plan_id"] is None


# -- trials, pauses, cancels -----------------------------------------------------------------------------------


async def test_trial_end_without_payment_pauses_until_the_invoice_is_paid(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    plan = await membership(app, owner, trial_days=7)
    sub = await subscribe(app, owner, plan["id"])
    assert sub["status"] == "trialing" and sub["has_access"] and sub["latest_invoice_id"] is None
    assert at(sub["current_period_end"]) == clock.now() + timedelta(days=7)
    assert (await detail(app, owner, sub["id"]))["invoice_count"] == 0
    none = await subscribe(app, owner, plan["id"], trial_days=0)
    assert none["status"] == "incomplete" and none["latest_invoice_id"]
    clock.advance(days=8)
    done = await bill(app, owner)
    assert done["trials_ended"] == 1
    paused = await detail(app, owner, sub["id"])
    assert paused["status"] == "paused" and paused["paused_reason"] == "trial_ended" and not paused["has_access"]
    assert paused["invoice_count"] == 1 and paused["current_period_start"] == sub["current_period_end"]
    assert paused["trial_end"] == sub["current_period_end"]
    refused = await call(app, owner.key, "resume_subscription", {"subscription_id": sub["id"]})
    assert error_code(refused) == "invalid_state"
    assert (await bill(app, owner))["trials_ended"] == 0
    await pay(app, owner, paused["latest_invoice_id"])
    assert (await detail(app, owner, sub["id"]))["status"] == "active"


async def test_pause_until_a_date_then_billing_resumes(app: App, owner: Owner, clock: FakeClock) -> None:
    _, sub = await paid_membership(app, owner)
    today = clock.now().date()
    past = await call(app, owner.key, "pause_subscription", {"subscription_id": sub["id"], "resume_on": str(today)})
    assert error_code(past) == "validation_failed"
    resume_on = today + timedelta(days=10)
    paused = await ok(app, owner, "pause_subscription", {"subscription_id": sub["id"], "resume_on": str(resume_on)})
    assert paused["status"] == "paused" and paused["resume_at"] and not paused["has_access"]
    clock.advance(days=5)
    assert (await bill(app, owner))["resumed"] == 0
    clock.advance(days=6)
    assert (await bill(app, owner))["resumed"] == 1
    back = await detail(app, owner, sub["id"])
    assert back["status"] == "active" and back["resume_at"] is None and back["invoice_count"] == 1


async def test_pause_past_the_period_end_resumes_into_a_new_period(app: App, owner: Owner, clock: FakeClock) -> None:
    _, sub = await paid_membership(app, owner)
    await ok(app, owner, "pause_subscription", {"subscription_id": sub["id"]})
    clock.advance(days=45)
    assert (await bill(app, owner))["renewed"] == 0, "a paused subscription is not billed"
    assert (await detail(app, owner, sub["id"]))["invoice_count"] == 1
    resumed = await ok(app, owner, "resume_subscription", {"subscription_id": sub["id"]})
    assert resumed["status"] == "active" and at(resumed["current_period_start"]) == clock.now()
    assert (await detail(app, owner, sub["id"]))["invoice_count"] == 2
    again = await ok(app, owner, "resume_subscription", {"subscription_id": sub["id"]})
    assert again["current_period_start"] == resumed["current_period_start"]


async def test_cancel_at_period_end_keeps_access_then_ends_without_renewal(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    _, sub = await paid_membership(app, owner)
    args = {"subscription_id": sub["id"], "at_period_end": True}
    ending = await confirmed(app, owner.key, "cancel_subscription", args)
    assert ending.ok, ending.data
    kept = ending.data
    assert kept["status"] == "active" and kept["cancel_at_period_end"] and kept["has_access"]
    clock.advance(days=32)
    assert (await bill(app, owner))["cancelled"] == 1
    ended = await detail(app, owner, sub["id"])
    assert ended["status"] == "cancelled" and ended["ended_at"] == sub["current_period_end"]
    assert ended["invoice_count"] == 1 and not ended["has_access"]
    final = await call(app, owner.key, "resume_subscription", {"subscription_id": sub["id"]})
    assert error_code(final) == "invalid_state"


async def test_cancel_now_forfeits_pack_credits_at_period_end_keeps_them(app: App, owner: Owner) -> None:
    now_pack = await paid_pack(app, owner)
    preview = await call(app, owner.key, "cancel_subscription", {"subscription_id": now_pack["id"]})
    assert error_code(preview) == "confirmation_required"
    assert preview.data["error"]["details"]["preview"]["credits_forfeited"] == 10
    done = await confirmed(app, owner.key, "cancel_subscription", {"subscription_id": now_pack["id"]})
    assert done.ok and done.data["credits_forfeited"] == 10
    gone = await detail(app, owner, now_pack["id"])
    assert gone["status"] == "cancelled" and gone["credits_left"] == 0 and not gone["has_access"]
    later = await paid_pack(app, owner)
    args = {"subscription_id": later["id"], "at_period_end": True}
    kept = await confirmed(app, owner.key, "cancel_subscription", args)
    assert kept.ok and kept.data["credits_forfeited"] == 0
    still = await detail(app, owner, later["id"])
    assert still["credits_left"] == 10 and still["has_access"]
    async with app.db.transaction() as session:
        kinds = (
            (await session.execute(select(CreditEntry.kind).where(col(CreditEntry.subscription_id) == now_pack["id"])))
            .scalars()
            .all()
        )
    assert sorted(kinds) == ["forfeit", "grant"]


async def test_refusals_name_the_state_and_the_way_forward(app: App, owner: Owner) -> None:
    plan = await membership(app, owner)
    archived = await membership(app, owner, name="Old")
    await ok(app, owner, "archive_plan", {"plan_id": archived["id"]})
    unpaid = await subscribe(app, owner, plan["id"])
    later = await call(app, owner.key, "cancel_subscription", {"subscription_id": unpaid["id"], "at_period_end": True})
    assert error_code(later) == "invalid_state" and later.data["error"]["hint"]
    ten = await paid_pack(app, owner)
    as_pack = await call(
        app, owner.key, "change_subscription_plan", {"subscription_id": ten["id"], "plan_id": plan["id"]}
    )
    assert error_code(as_pack) == "invalid_state"
    _, sub = await paid_membership(app, owner)
    to_archived = {"subscription_id": sub["id"], "plan_id": archived["id"]}
    assert error_code(await call(app, owner.key, "change_subscription_plan", to_archived)) == "invalid_state"
    assert (await confirmed(app, owner.key, "cancel_subscription", {"subscription_id": sub["id"]})).ok
    again = await call(app, owner.key, "cancel_subscription", {"subscription_id": sub["id"]})
    assert again.ok and again.data["status"] == "cancelled", "a cancelled subscription answers as is"
    paused = await call(app, owner.key, "pause_subscription", {"subscription_id": sub["id"]})
    assert error_code(paused) == "invalid_state"
    assert paused.data["error"]["details"]["current"] == "cancelled"
    missing = await call(app, owner.key, "get_subscription", {"subscription_id": "sub_missing"})
    assert error_code(missing) == "not_found" and "list_subscriptions" in missing.data["error"]["hint"]


# -- packs and credits -----------------------------------------------------------------------------------------


async def test_pack_grants_its_credits_when_paid_valid_from_payment(app: App, owner: Owner, clock: FakeClock) -> None:
    plan = await pack(app, owner, credits=5, validity_days=30)
    sub = await subscribe(app, owner, plan["id"])
    assert sub["status"] == "incomplete" and sub["credits_left"] == 0
    clock.advance(days=2)
    await pay(app, owner, sub["latest_invoice_id"])
    paid = await detail(app, owner, sub["id"])
    assert paid["status"] == "active" and paid["credits_left"] == 5
    assert at(paid["credit_lots"][0]["expires_at"]) == clock.now() + timedelta(days=30)
    clock.advance(days=31)
    done = await bill(app, owner)
    assert done["credits_expired"] == 5 and done["cancelled"] == 1
    ended = await detail(app, owner, sub["id"])
    assert ended["credits_left"] == 0 and ended["cancellation_reason"] == "pack_ended"
    assert (await bill(app, owner))["credits_expired"] == 0


async def test_twenty_concurrent_reserves_on_five_credits(app: App, owner: Owner) -> None:
    sub = await paid_pack(app, owner, credits=5)
    member_id = sub["member_id"]
    results = await asyncio.gather(
        *[
            as_system(app, owner, lambda ctx, i=i: credits.reserve_credit(ctx, member_id, f"booking-{i}"))
            for i in range(20)
        ]
    )
    assert len([r for r in results if r is not None]) == 5
    assert (await detail(app, owner, sub["id"]))["credits_left"] == 0
    async with app.db.transaction() as session:
        entries = (
            (await session.execute(select(CreditEntry).where(col(CreditEntry.subscription_id) == sub["id"])))
            .scalars()
            .all()
        )
    assert sum(e.amount for e in entries) == 0 and len([e for e in entries if e.kind == "reserve"]) == 5


async def test_release_and_consume_happen_once(app: App, owner: Owner) -> None:
    sub = await paid_pack(app, owner, credits=2)
    member_id = sub["member_id"]
    first = await as_system(app, owner, lambda ctx: credits.reserve_credit(ctx, member_id, "b1"))
    same = await as_system(app, owner, lambda ctx: credits.reserve_credit(ctx, member_id, "b1"))
    assert first is not None and same == first, "a booking holds one credit however often it reserves"
    await as_system(app, owner, lambda ctx: credits.reserve_credit(ctx, member_id, "b2"))
    assert (await detail(app, owner, sub["id"]))["credits_left"] == 0
    released = await asyncio.gather(
        *[as_system(app, owner, lambda ctx: credits.release_credit(ctx, "b1")) for _ in range(5)]
    )
    assert sorted(released) == [False, False, False, False, True]
    assert (await detail(app, owner, sub["id"]))["credits_left"] == 1
    used = await asyncio.gather(
        *[as_system(app, owner, lambda ctx: credits.consume_credit(ctx, "b2")) for _ in range(5)]
    )
    assert sorted(used) == [False, False, False, False, True]
    assert (await detail(app, owner, sub["id"]))["credits_left"] == 1
    with pytest.raises(FavError) as again:
        await as_system(app, owner, lambda ctx: credits.reserve_credit(ctx, member_id, "b1"))
    assert again.value.code == "invalid_state", "a released booking does not reserve again"
    other = await new_member(app, owner)
    with pytest.raises(FavError) as foreign:
        await as_system(app, owner, lambda ctx: credits.reserve_credit(ctx, other, "b2"))
    assert foreign.value.code == "conflict"
    with pytest.raises(FavError) as unknown:
        await as_system(app, owner, lambda ctx: credits.release_credit(ctx, "nope"))
    assert unknown.value.code == "not_found"
    for late, ref in ((credits.consume_credit, "b1"), (credits.release_credit, "b2")):
        with pytest.raises(FavError) as refused:
            await as_system(app, owner, lambda ctx, fn=late, r=ref: fn(ctx, r))
        assert refused.value.code == "invalid_state", "a settled credit cannot be settled the other way"


async def test_soonest_expiring_credits_first_and_expired_ones_unusable(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    member_id = await new_member(app, owner)
    long = await paid_pack(app, owner, member_id, credits=1, validity_days=60)
    short = await paid_pack(app, owner, member_id, credits=1, validity_days=10)
    held = await as_system(app, owner, lambda ctx: credits.reserve_credit(ctx, member_id, "first"))
    assert held is not None
    assert (await detail(app, owner, short["id"]))["credits_left"] == 0
    assert (await detail(app, owner, long["id"]))["credits_left"] == 1
    await as_system(app, owner, lambda ctx: credits.release_credit(ctx, "first"))
    clock.advance(days=11)
    assert (await detail(app, owner, short["id"]))["credits_left"] == 0, "expired credits are not left"
    again = await as_system(app, owner, lambda ctx: credits.reserve_credit(ctx, member_id, "second"))
    assert again is not None
    assert (await detail(app, owner, long["id"]))["credits_left"] == 0
    assert await as_system(app, owner, lambda ctx: credits.reserve_credit(ctx, member_id, "third")) is None


# -- access ----------------------------------------------------------------------------------------------------


async def test_staff_cannot_manage_subscriptions(app: App, owner: Owner) -> None:
    plan = await membership(app, owner)
    staff = await join(app, owner)
    for tool, args in (
        ("list_plans", {}),
        ("create_plan", {"kind": "pack", "name": "X", "unit_amount": 1, "credits": 1, "validity_days": 1}),
        ("subscribe_member", {"member_id": "mem_x", "plan_id": plan["id"]}),
        ("run_subscription_billing", {}),
    ):
        assert error_code(await call(app, staff.key, tool, args)) == "forbidden", tool
