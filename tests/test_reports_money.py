"""The money reports (domain-rules.md "Reports"), on SQLite and Postgres: every figure reproduced from the list
tools in the same test; a refund lands in the week it happens; ISO weeks across the October daylight-saving change
in Europe/Amsterdam start at local midnight Monday; a voided invoice never counts; staff see no money."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from favmcp.app import App
from tests.support import FakeClock, Owner, call, confirmed, error_code, join, unique_email

TZ = ZoneInfo("Europe/Amsterdam")
RANGE = {"from_date": "2026-10-19", "to_date": "2026-11-08"}  # three ISO weeks; summer time ends Sun 25 Oct


async def ok(app: App, owner: Owner, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


async def member(app: App, owner: Owner) -> str:
    return (await ok(app, owner, "create_member", {"name": "Ada Client", "email": unique_email("ada")}))["id"]


async def open_invoice(app: App, owner: Owner, amount: int) -> dict[str, Any]:
    line = {"description": "Course", "unit_amount": amount, "quantity": 1, "tax_rate": "0"}
    made = await ok(app, owner, "create_invoice", {"member_id": await member(app, owner), "lines": [line]})
    return await ok(app, owner, "finalize_invoice", {"invoice_id": made["id"]})


async def pay(app: App, owner: Owner, amount: int, **target: str) -> dict[str, Any]:
    args = {"method": "cash", "amount": amount, "idempotency_key": key(), **target}
    return await ok(app, owner, "record_payment", args)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def week_of(moment: str) -> str:
    local = parse(moment).astimezone(TZ).date()
    return local.fromordinal(local.toordinal() - local.weekday()).isoformat()


async def listed(app: App, owner: Owner, tool: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await ok(app, owner, tool, {**args, "limit": 100, **({"cursor": cursor} if cursor else {})})
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def test_revenue_by_week_across_dst_with_refunds_voids_and_breakdown(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    clock.current = at("2026-10-21T10:00:00")
    first = await open_invoice(app, owner, 10000)
    paid_first = await pay(app, owner, 10000, invoice_id=first["id"])
    product = await ok(
        app, owner, "create_product", {"name": "Mat", "unit_amount": 4000, "tax_rate": "0", "track_stock": False}
    )
    order = await ok(
        app,
        owner,
        "create_order",
        {"member_id": await member(app, owner), "lines": [{"product_id": product["id"], "quantity": 1}]},
    )
    voided = await open_invoice(app, owner, 7000)
    await confirmed(app, owner.key, "void_invoice", {"invoice_id": voided["id"]})
    no_money = {"method": "cash", "amount": 7000, "invoice_id": voided["id"], "idempotency_key": key()}
    assert error_code(await call(app, owner.key, "record_payment", no_money)) == "invalid_state"  # void: never paid
    second = await open_invoice(app, owner, 3000)
    clock.current = at("2026-10-25T22:30:00")  # Sunday 23:30 local (CET): still the week of Monday 19 October
    await pay(app, owner, 4000, order_id=order["id"])
    clock.current = at("2026-10-25T23:30:00")  # Monday 00:30 local: the week of 26 October
    await pay(app, owner, 3000, invoice_id=second["id"])
    clock.current = at("2026-11-03T09:00:00")  # the refund lands in its own week, not the payment's
    back = await confirmed(
        app, owner.key, "refund_payment", {"payment_id": paid_first["id"], "amount": 2500, "idempotency_key": key()}
    )
    assert back.ok, back.data

    report = await ok(app, owner, "revenue_report", {**RANGE, "group_by": "week"})
    assert (parse(report["starts_at"]), parse(report["ends_at"])) == (
        at("2026-10-18T22:00:00"),
        at("2026-11-08T23:00:00"),
    )
    rows = {r["period"]: (r["paid_amount"], r["refunded_amount"], r["net_amount"]) for r in report["rows"]}
    assert rows == {
        "2026-10-19": (14000, 0, 14000),
        "2026-10-26": (3000, 0, 3000),
        "2026-11-02": (0, 2500, -2500),
    }
    # Reproduced from the list tools: payments by paid_at, refunds that succeeded by settled_at, by local week.
    window = {"paid_from": report["starts_at"], "paid_before": report["ends_at"]}
    payments = await listed(app, owner, "list_payments", window)
    refunds = [
        r
        for r in await listed(app, owner, "list_refunds", {})
        if r["status"] == "succeeded" and report["starts_at"] <= r["settled_at"] < report["ends_at"]
    ]
    paid_by_week = Counter[str]()
    for p in payments:
        if p["status"] in ("succeeded", "partially_refunded", "refunded"):
            paid_by_week[week_of(p["paid_at"])] += p["amount"]
    back_by_week = Counter[str]()
    for r in refunds:
        back_by_week[week_of(r["settled_at"])] += r["amount"]
    assert {w: (paid_by_week[w], back_by_week[w], paid_by_week[w] - back_by_week[w]) for w in rows} == rows
    assert report["net_amount"] == sum(paid_by_week.values()) - sum(back_by_week.values()) == 14500
    shares = {(s["kind"], s["id"]): s["net_amount"] for s in report["breakdown"]}
    assert shares == {("product", product["id"]): 4000, ("other", None): 10500}
    assert sum(shares.values()) == report["net_amount"]

    days = await ok(app, owner, "revenue_report", {**RANGE, "group_by": "day"})
    assert len(days["rows"]) == 21 and sum(r["net_amount"] for r in days["rows"]) == 14500
    assert {r["period"]: r["paid_amount"] for r in days["rows"] if r["paid_amount"]} == {
        "2026-10-21": 10000,
        "2026-10-25": 4000,
        "2026-10-26": 3000,
    }
    months = await ok(app, owner, "revenue_report", {**RANGE, "group_by": "month"})
    assert [(r["period"], r["net_amount"]) for r in months["rows"]] == [("2026-10-01", 17000), ("2026-11-01", -2500)]

    stats = await ok(app, owner, "get_dashboard_stats", RANGE)
    assert stats["net_revenue_amount"] == 14500
    members = await listed(app, owner, "search_members", {"include_inactive_status": True})
    created = [(await ok(app, owner, "get_member_profile", {"member_id": m["id"]}))["created_at"] for m in members]
    new = [c for c in created if report["starts_at"] <= c < report["ends_at"]]
    assert stats["new_customers"] == len(new) == 4
    assert (stats["bookings"], stats["no_shows"], stats["active_subscriptions"]) == (0, 0, 0)

    staff = await join(app, owner)  # staff keys have no reports:read at all
    assert error_code(await call(app, staff.key, "revenue_report", RANGE)) == "forbidden"
    made = await ok(app, owner, "create_api_key", {"name": "reports", "scopes": ["reports:read"]})
    reader = made["api_key"]  # reports without invoices:read: the figures, never the money
    hidden = await call(app, reader, "revenue_report", {**RANGE, "group_by": "week"})
    assert hidden.ok and hidden.data["net_amount"] is None and hidden.data["breakdown"] == []
    assert {(r["paid_amount"], r["net_amount"]) for r in hidden.data["rows"]} == {(None, None)}
    blind = await call(app, reader, "get_dashboard_stats", RANGE)
    assert blind.ok and (blind.data["net_revenue_amount"], blind.data["overdue_amount"]) == (None, None)
    assert blind.data["new_customers"] == 4


async def test_membership_report_and_plan_revenue_match_list_subscriptions(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    clock.current = at("2026-11-10T10:00:00")
    terms = {"month": 5000, "week": 1000, "year": 12000}
    plans = {
        interval: await ok(
            app,
            owner,
            "create_plan",
            {"kind": "membership", "name": interval, "unit_amount": amount, "interval": interval},
        )
        for interval, amount in terms.items()
    }
    subs = []
    for interval in ("month", "month", "month", "week", "year", "month"):
        sub = await ok(
            app, owner, "subscribe_member", {"member_id": await member(app, owner), "plan_id": plans[interval]["id"]}
        )
        await pay(app, owner, terms[interval], invoice_id=sub["latest_invoice_id"])
        subs.append(sub)
    await ok(app, owner, "pause_subscription", {"subscription_id": subs[1]["id"]})
    assert (await confirmed(app, owner.key, "cancel_subscription", {"subscription_id": subs[2]["id"]})).ok
    later = {"subscription_id": subs[5]["id"], "at_period_end": True}  # cancelled now, in force until its period ends
    assert (await confirmed(app, owner.key, "cancel_subscription", later)).ok
    await ok(app, owner, "subscribe_member", {"member_id": await member(app, owner), "plan_id": plans["year"]["id"]})

    month = {"from_date": "2026-11-01", "to_date": "2026-11-30"}
    report = await ok(app, owner, "membership_report", month)
    listed_subs = await listed(app, owner, "list_subscriptions", {})
    by_plan = {r["plan_id"]: r for r in report["plans"]}
    for interval, plan in plans.items():
        mine = [s for s in listed_subs if s["plan_id"] == plan["id"] and s["status"] != "incomplete"]
        row = by_plan[plan["id"]]
        in_force = [s for s in mine if s["status"] in ("active", "trialing", "past_due")]
        assert row["active"] == len(in_force), interval
        assert row["new"] == len(mine)  # all made in the range
        assert row["paused"] == sum(s["status"] == "paused" for s in mine)
        details = [await ok(app, owner, "get_subscription", {"subscription_id": s["id"]}) for s in mine]
        assert row["cancelled"] == sum(
            report["starts_at"] <= (d["cancelled_at"] or "") < report["ends_at"] for d in details
        )
        assert row["past_due"] == sum(s["status"] == "past_due" for s in mine)
    assert {i: by_plan[p["id"]]["monthly_recurring_amount"] for i, p in plans.items()} == {
        "month": 10000,  # two of four in force: one paused, one cancelled, one cancelled at period end (still on)
        "week": 4333,  # 1000 x 52 / 12 = 4333.33, rounded half up
        "year": 1000,  # 12000 / 12; the unpaid (incomplete) one is not counted
    }
    total = report["all_plans"]
    assert (total["active"], total["paused"], total["cancelled"], total["monthly_recurring_amount"]) == (
        4,
        1,
        2,
        15333,
    )

    # A two-line invoice paid in part: the payment is split over its lines in proportion (3000:1000).
    mat = await ok(app, owner, "create_product", {"name": "Mat", "unit_amount": 3000, "track_stock": False})
    lines = [
        {"description": "Mat", "unit_amount": 3000, "quantity": 1, "tax_rate": "0", "product_id": mat["id"]},
        {"description": "Towel", "unit_amount": 1000, "quantity": 1, "tax_rate": "0"},
    ]
    made = await ok(app, owner, "create_invoice", {"member_id": await member(app, owner), "lines": lines})
    await ok(app, owner, "finalize_invoice", {"invoice_id": made["id"]})
    await pay(app, owner, 2001, invoice_id=made["id"])

    revenue = await ok(app, owner, "revenue_report", {**month, "group_by": "month"})
    payments = await listed(app, owner, "list_payments", {"paid_from": revenue["starts_at"]})
    assert revenue["net_amount"] == sum(p["amount"] for p in payments) == 4 * 5000 + 1000 + 12000 + 2001
    shares = {(s["kind"], s["id"]): s["net_amount"] for s in revenue["breakdown"]}
    assert shares == {("plan", plans["month"]["id"]): 20000, ("plan", plans["week"]["id"]): 1000,
                      ("plan", plans["year"]["id"]): 12000, ("product", mat["id"]): 1501,
                      ("other", None): 500}  # fmt: skip
    assert sum(shares.values()) == revenue["net_amount"]
    charted = await call(app, owner.key, "revenue_report", {**month, "group_by": "week", "chart": True})
    assert charted.ok and [i.mime_type for i in charted.images] == ["image/png"]
    assert charted.images[0].data.startswith(b"\x89PNG") and charted.data["net_amount"] == revenue["net_amount"]
    plain = await call(app, owner.key, "membership_report", month)
    assert plain.ok and plain.images == () and plain.data == report
