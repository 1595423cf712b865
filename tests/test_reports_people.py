"""The reports about people (no_show_report, inactive_members_report, campaign_performance_report), on SQLite and
Postgres: every figure is counted again from the list tools in the same test (bookings from list_bookings, members
from search_members, visits from list_bookings and list_orders, tiers from search_members' tier filter, spend from
get_member_profile)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from sqlmodel import col

from favmcp.app import App
from favmcp.core.contact import Channel
from favmcp.core.ids import new_id
from favmcp.core.sealing import seal
from favmcp.domains.bookings.models import Booking, BookingPayment, BookingStatus
from favmcp.domains.messaging.models import ChannelConfig, Message, MessageStatus, Provider
from favmcp.domains.messaging.status import advance
from favmcp.registry.context import ToolContext
from tests.support import FakeClock, Owner, call, confirmed, error_code, join, unique_email

TZ = ZoneInfo("Europe/Amsterdam")


async def ok(app: App, key: str, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


async def every(app: App, key: str, tool: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """All items of a list tool, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await ok(app, key, tool, {**args, "limit": 100, **({"cursor": cursor} if cursor else {})})
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def add_bookings(app: App, owner: Owner, rows: list[tuple[str, str, str, datetime, BookingStatus, bool]]) -> None:
    """Bookings as rows (member, service, staff, start, status, late cancel): the outcomes' own rules are tested in
    test_booking_outcomes; here only what the report counts matters."""

    async def work(ctx: ToolContext) -> None:
        for member_id, service_id, staff_id, starts_at, status, late in rows:
            ctx.db.add(
                Booking(
                    id=new_id("bkg"),
                    workspace_id=ctx.workspace_id,
                    member_id=member_id,
                    service_id=service_id,
                    staff_user_id=staff_id,
                    status=status,
                    starts_at=starts_at,
                    ends_at=starts_at + timedelta(hours=1),
                    blocked_from=starts_at,
                    blocked_until=starts_at + timedelta(hours=1),
                    unit_amount=6000,
                    currency="EUR",
                    payment=BookingPayment.none,
                    late_cancel=late,
                    created_at=ctx.now,
                    updated_at=ctx.now,
                    cancelled_at=ctx.now if status == BookingStatus.cancelled else None,
                )
            )
        await ctx.db.flush()

    await app.runner.run_system(owner.workspace_id, "test", work)


def rate(no_show: int, completed: int) -> str | None:
    whole = no_show + completed
    return str((Decimal(no_show) * 100 / whole).quantize(Decimal("0.1"), ROUND_HALF_UP)) if whole else None


async def new_member(app: App, owner: Owner, name: str) -> str:
    return str((await ok(app, owner.key, "create_member", {"name": name, "email": unique_email("m")}))["id"])


async def new_service(app: App, owner: Owner, name: str) -> str:
    args = {"name": name, "duration_minutes": 60, "unit_amount": 6000}
    return str((await ok(app, owner.key, "create_service", args))["id"])


async def test_no_show_report_is_what_list_bookings_counts(app: App, owner: Owner, clock: FakeClock) -> None:
    staff = await join(app, owner)
    massage, yoga = await new_service(app, owner, "Massage"), await new_service(app, owner, "Yoga")
    ann, bob, cat, dan = [await new_member(app, owner, n) for n in ("Ann", "Bob", "Cat", "Dan")]
    today = clock.current.astimezone(TZ).date()
    first, last = today - timedelta(days=20), today - timedelta(days=1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=TZ)  # local midnight of from_date
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=TZ)
    c, n, x = BookingStatus.completed, BookingStatus.no_show, BookingStatus.cancelled
    me, them = owner.user_id, staff.user_id
    rows = [
        # Ann: 15 completed and 1 no-show: 1/16 = 6.25% rounds half up to "6.3"
        *[(ann, massage, me, start + timedelta(days=i, hours=9), c, False) for i in range(15)],
        (ann, massage, me, start, n, False),  # at from_date's local midnight: inside
        # Bob: 1 completed, 2 no-shows (66.7), a late and an in-time cancellation
        (bob, yoga, them, start + timedelta(days=2, hours=10), c, False),
        (bob, yoga, them, start + timedelta(days=3, hours=10), n, False),
        (bob, massage, them, start + timedelta(days=4, hours=10), n, False),
        (bob, yoga, them, start + timedelta(days=5, hours=10), x, True),
        (bob, yoga, them, start + timedelta(days=6, hours=10), x, False),
        # Cat: only a late cancellation (rate null); a confirmed booking that never ended
        (cat, yoga, me, start + timedelta(days=7, hours=10), x, True),
        (cat, yoga, me, start + timedelta(days=8, hours=10), BookingStatus.confirmed, False),
        # Dan: only completed (not in the breakdowns); outside the range on both sides
        (dan, massage, them, start + timedelta(days=9, hours=10), c, False),
        (dan, massage, them, end, n, False),  # the local midnight after to_date: outside
        (dan, massage, them, start - timedelta(seconds=1), n, False),
    ]
    await add_bookings(app, owner, rows)

    report = await ok(app, owner.key, "no_show_report", {"from_date": str(first), "to_date": str(last)})
    assert datetime.fromisoformat(report["starts_from"]) == start
    assert datetime.fromisoformat(report["starts_to"]) == end

    # Counted again from list_bookings over the answer's range.
    listed = await every(
        app, owner.key, "list_bookings", {"starts_from": report["starts_from"], "starts_to": report["starts_to"]}
    )
    assert len(listed) == len(rows) - 2
    tallies: dict[str, dict[str, Counter[str]]] = {k: defaultdict(Counter) for k in ("member", "service", "staff")}
    for b in listed:
        outcome = "late" if b["status"] == "cancelled" and b["late_cancel"] else b["status"]
        for key, field in (("member", "member_id"), ("service", "service_id"), ("staff", "staff_user_id")):
            tallies[key][b[field]][outcome] += 1
    whole: Counter[str] = sum(tallies["member"].values(), Counter())

    def figures(t: Counter[str]) -> dict[str, Any]:
        return {
            "completed": t["completed"],
            "no_show": t["no_show"],
            "late_cancelled": t["late"],
            "no_show_rate": rate(t["no_show"], t["completed"]),
        }

    assert report["total"] == figures(whole) == {
        "completed": 17, "no_show": 3, "late_cancelled": 2, "no_show_rate": "15.0"
    }  # fmt: skip

    def expected(key: str) -> list[dict[str, Any]]:
        found = [{"id": i, **figures(t)} for i, t in tallies[key].items() if t["no_show"] + t["late"]]
        return sorted(found, key=lambda r: (-r["no_show"], -r["late_cancelled"], r["id"]))

    def without_names(rows_: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "name"} for r in rows_]

    assert without_names(report["by_customer"]) == expected("member")
    assert without_names(report["by_service"]) == expected("service")
    assert without_names(report["by_staff"]) == expected("staff")
    by_customer = {r["id"]: r for r in report["by_customer"]}
    assert set(by_customer) == {ann, bob, cat}  # Dan had no no-show or late cancellation in the range
    assert by_customer[ann]["no_show_rate"] == "6.3" and by_customer[ann]["name"] == "Ann"
    assert by_customer[bob]["no_show_rate"] == "66.7" and by_customer[cat]["no_show_rate"] is None
    assert [r["name"] for r in report["by_service"]] == ["Massage", "Yoga"]  # 2 no-shows, then 1 (and 2 late)
    assert {r["id"] for r in report["by_staff"]} == {me, them}

    top = await ok(app, owner.key, "no_show_report", {"from_date": str(first), "to_date": str(last), "top": 1})
    assert top["by_customer"] == report["by_customer"][:1] and top["total"] == report["total"]
    bad = await call(app, owner.key, "no_show_report", {"from_date": str(last), "to_date": str(first)})
    assert error_code(bad) == "validation_failed"

    # Staff have no reports:read; with no campaign started the campaign report answers an empty list with a note
    # (test_campaigns counts a campaign's figures against get_campaign_stats).
    for tool, args in (
        ("no_show_report", {"from_date": str(first), "to_date": str(last)}),
        ("inactive_members_report", {"days": 30}),
        ("campaign_performance_report", {}),
    ):
        assert error_code(await call(app, staff.key, tool, args)) == "forbidden", tool
    campaigns = await ok(app, owner.key, "campaign_performance_report", {})
    assert campaigns["items"] == [] and campaigns["note"] == "No campaign started in the range."


async def test_inactive_members_are_what_the_list_tools_show(app: App, owner: Owner, clock: FakeClock) -> None:
    service = await new_service(app, owner, "Massage")
    names = ("old visit", "recent visit", "never", "recent order", "old order", "no-show only", "merged", "erased")
    old, recent, never, ordered, old_order, no_show, merged, erased = [await new_member(app, owner, n) for n in names]
    returned = await new_member(app, owner, "cancelled order")
    survivor = await new_member(app, owner, "survivor")
    now = clock.current
    c = BookingStatus.completed
    await add_bookings(
        app,
        owner,
        [
            (old, service, owner.user_id, now - timedelta(days=40), c, False),
            (recent, service, owner.user_id, now - timedelta(days=10), c, False),
            (ordered, service, owner.user_id, now - timedelta(days=200), c, False),
            (no_show, service, owner.user_id, now - timedelta(days=100), c, False),
            (no_show, service, owner.user_id, now - timedelta(days=2), BookingStatus.no_show, False),
            (survivor, service, owner.user_id, now - timedelta(days=1), c, False),
            (merged, service, owner.user_id, now - timedelta(days=90), c, False),
        ],
    )
    product = await ok(app, owner.key, "create_product", {"name": "Oil", "unit_amount": 1500, "initial_stock": 10})

    async def paid_order(member_id: str, days_ago: int) -> str:
        clock.current = now - timedelta(days=days_ago)
        args = {"member_id": member_id, "lines": [{"product_id": product["id"], "quantity": 1}]}
        made = await ok(app, owner.key, "create_order", args)
        pay = {"order_id": made["id"], "amount": made["total"], "method": "cash", "idempotency_key": uuid4().hex}
        await ok(app, owner.key, "record_payment", pay)
        clock.current = now
        return str(made["id"])

    await paid_order(ordered, 5)
    await paid_order(old_order, 50)
    cancelled = await confirmed(app, owner.key, "cancel_order", {"order_id": await paid_order(returned, 3)})
    assert cancelled.ok, cancelled.data  # paid, then cancelled with a refund due: no visit
    await confirmed(app, owner.key, "merge_members", {"survivor_id": survivor, "duplicate_id": merged})
    await confirmed(app, owner.key, "delete_member", {"member_id": erased})
    gold = await ok(app, owner.key, "create_membership_tier", {"name": "Gold", "threshold": 100000})
    await ok(app, owner.key, "enrol_membership", {"member_id": old, "tier_id": gold["id"]})
    await ok(app, owner.key, "enrol_membership", {"member_id": recent, "tier_id": gold["id"]})

    # Counted again: every active member, their last completed booking and last paid order, their tier and spend.
    since = now - timedelta(days=30)
    members = await every(app, owner.key, "search_members", {})
    in_gold = {m["id"] for m in await every(app, owner.key, "search_members", {"tier_id": gold["id"]})}
    expected = []
    for m in members:
        visits = [
            datetime.fromisoformat(b["starts_at"])
            for b in await every(app, owner.key, "list_bookings", {"member_id": m["id"], "status": "completed"})
        ]
        for order in await every(app, owner.key, "list_orders", {"member_id": m["id"]}):
            if order["status"] in ("paid", "fulfilled"):  # paid when its last payment moved (list_payments)
                payments = await every(app, owner.key, "list_payments", {"order_id": order["id"]})
                visits.append(max(datetime.fromisoformat(p["paid_at"]) for p in payments if p["paid_at"]))
        last = max(visits, default=None)
        if last is None or last < since:
            profile = await ok(app, owner.key, "get_member_profile", {"member_id": m["id"]})
            expected.append(
                {
                    "member_id": m["id"],
                    "name": m["name"],
                    "last_visit_at": last,
                    "days_inactive": (now - last).days if last else None,
                    "tier_id": gold["id"] if m["id"] in in_gold else None,
                    "tier_name": "Gold" if m["id"] in in_gold else None,
                    "lifetime_spend": profile["money"]["lifetime_spend"],
                    "currency": profile["money"]["currency"],
                }
            )
    expected.sort(key=lambda r: (r["last_visit_at"] is not None, r["last_visit_at"] or now, r["member_id"]))

    def answered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**i, "last_visit_at": datetime.fromisoformat(i["last_visit_at"]) if i["last_visit_at"] else None}
            for i in items
        ]

    # Paged two at a time: the pages join up to the whole, oldest activity first.
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await ok(
            app,
            owner.key,
            "inactive_members_report",
            {"days": 30, "limit": 2, **({"cursor": cursor} if cursor else {})},
        )
        pages += page["items"]
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if not cursor:
            break
    assert answered(pages) == expected
    listed = [i["member_id"] for i in pages]
    assert listed[0] == never and set(listed) == {never, returned, old, old_order, no_show}
    assert merged not in listed and erased not in listed and recent not in listed and ordered not in listed
    spend = {i["member_id"]: i["lifetime_spend"] for i in pages}
    assert spend[old_order] == 1500 and spend[never] == 0

    # The tier filter: only Gold's inactive members (Ann's "old visit"; "recent visit" is Gold but active).
    only_gold = await ok(app, owner.key, "inactive_members_report", {"days": 30, "tier_id": gold["id"]})
    assert answered(only_gold["items"]) == [e for e in expected if e["member_id"] in in_gold]
    assert [i["member_id"] for i in only_gold["items"]] == [old]

    # Without invoices:read the spend is left out.
    reader = await ok(app, owner.key, "create_api_key", {"name": "reports", "scopes": ["reports:read"]})
    blind = await ok(app, reader["api_key"], "inactive_members_report", {"days": 30})
    assert [i["member_id"] for i in blind["items"]] == listed[: len(blind["items"])]
    assert all(i["lifetime_spend"] is None and i["currency"] is None for i in blind["items"])


async def test_campaign_performance_is_what_get_campaign_stats_counts(app: App, owner: Owner, clock: FakeClock) -> None:
    """Campaigns by the local date they started, each row the figures of get_campaign_stats (reach: messages that
    left; delivered: delivered or read), revenue in the workspace's currency."""

    async def channel(ctx: ToolContext) -> None:
        ctx.db.add(
            ChannelConfig(
                id=new_id("chn"), workspace_id=ctx.workspace_id, channel=Channel.email, provider=Provider.smtp,
                sender="studio@example.com", settings={"quiet_hours": None},
                secrets=seal(ctx.settings.secret_key, "messaging_channel", "{}"),
                created_at=ctx.now, updated_at=ctx.now,
            )
        )  # fmt: skip

    await app.runner.run_system(owner.workspace_id, "test", channel)
    app.settings.public_url = "https://studio.favmcp.test"  # marketing email's unsubscribe link needs it
    await ok(
        app,
        owner.key,
        "set_approval_policy",
        {"rules": [{"channel": "email", "kind": "marketing", "needs_approval": False}]},
    )
    template = await ok(
        app,
        owner.key,
        "create_message_template",
        {
            "channel": "email",
            "name": "hello",
            "kind": "marketing",
            "subject": "Hi",
            "body": "Hi {{first_name}}",
            "variables": ["first_name"],
        },
    )
    consent = [{"channel": "email", "granted": True}]
    for name in ("Ann", "Bob", "Cat"):
        await ok(app, owner.key, "create_member", {"name": name, "email": unique_email("m"), "consent": consent})
    first_day = clock.current.astimezone(TZ).date()
    ids = []
    for name in ("First", "Second"):
        made = await ok(
            app, owner.key, "create_campaign", {"name": name, "channel": "email", "template_id": template["id"]}
        )
        assert (await ok(app, owner.key, "send_campaign", {"campaign_id": made["id"]}))["queued"] == 3
        ids.append(made["id"])
        clock.advance(days=1)

    async def provider_says(ctx: ToolContext) -> None:  # two of the first campaign's messages left, one was read
        first = await ctx.db.all(ctx.db.select(Message, col(Message.campaign_id) == ids[0]).order_by(col(Message.id)))
        await advance(ctx, MessageStatus.sent, col(Message.id).in_([m.id for m in first[:2]]), at=ctx.now)
        await advance(ctx, MessageStatus.read, col(Message.id) == first[0].id, at=ctx.now)

    await app.runner.run_system(owner.workspace_id, "test", provider_says)
    report = await ok(app, owner.key, "campaign_performance_report", {})
    assert [r["campaign_id"] for r in report["items"]] == [ids[1], ids[0]] and report["note"] is None
    for row in report["items"]:
        stats = await ok(app, owner.key, "get_campaign_stats", {"campaign_id": row["campaign_id"]})
        counts = stats["counts"]
        assert row["reach"] == counts["sent"] + counts["delivered"] + counts["read"]
        assert row["delivered"] == counts["delivered"] + counts["read"]
        assert (row["replies"], row["bookings"], row["revenue"]) == (stats["replies"], stats["bookings"], 0)
        assert row["currency"] == "EUR"
    assert [(r["reach"], r["delivered"]) for r in report["items"]] == [(0, 0), (2, 1)]
    only_first = await ok(app, owner.key, "campaign_performance_report", {"to_date": str(first_day)})
    assert [r["campaign_id"] for r in only_first["items"]] == [ids[0]]
    later = str(first_day + timedelta(days=5))
    empty = await ok(app, owner.key, "campaign_performance_report", {"from_date": later})
    assert empty["items"] == [] and empty["note"] == "No campaign started in the range."
