"""The reports on a big workspace: each report a few times through the runner, medians per report.

    uv run python tools/bench_reports.py [--database-url URL] [--runs 5] [--scale 1.0]

Set-up (not timed, rows inserted in bulk with executemany in batches, never through tools): one workspace with
100,000 members, 1,000,000 past bookings over two years (completed, no-show, cancelled; 5 services, 20 staff),
250,000 paid invoices (one line each: a booking's service, a plan, or a free line) and 50,000 paid orders (one
product line each), one payment each (300,000), 15,000 refunds, 20,000 memberships on 5 plans. --scale shrinks
every count (0.01 for a quick try).

Figures: the median of --runs calls of every report that exists (of the catalog's six), through the runner exactly
as an MCP call runs it, over the last 365 local days (revenue also by month and by day over 92 days). Target:
every report under 1 s on Postgres.

SQLite in a throwaway FAVMCP_HOME by default; --database-url runs on a fresh Postgres database created beside the
given one and dropped afterwards. Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from sqlalchemy import insert, text

from bench_mcp import clean_environ, fresh_postgres_beside, progress
from bench_search_members import owner_key
from favmcp import logging as favlog
from favmcp.app import App
from favmcp.auth.models import Role, User
from favmcp.composition import all_specs
from favmcp.config import Settings
from favmcp.core.ids import new_id
from favmcp.domains.bookings.models import Booking, BookingStatus
from favmcp.domains.invoices.models import Invoice, InvoiceLine, InvoiceStatus
from favmcp.domains.members.models import Member
from favmcp.domains.orders.models import Order, OrderLine, OrderStatus
from favmcp.domains.payments.models import Payment, PaymentStatus, Refund, RefundStatus
from favmcp.domains.subscriptions.models import PlanKind, Subscription, SubscriptionStatus

MEMBERS = 100_000
BOOKINGS = 1_000_000
INVOICES = 250_000
ORDERS = 50_000
REFUNDS = 15_000
SUBSCRIPTIONS = 20_000
STAFF = 20
DAYS = 730
BATCH = 10_000
TIMEZONE = "Europe/Amsterdam"
TARGET_MS = 1000.0
REPORTS = (
    "get_dashboard_stats",
    "revenue_report",
    "no_show_report",
    "inactive_members_report",
    "campaign_performance_report",
    "membership_report",
)


def ok(result: Any) -> dict[str, Any]:
    if not result.ok:
        raise RuntimeError(f"a set-up call failed: {result.data}")
    return dict(result.data)


def rows_of(objects: Iterable[Any]) -> list[dict[str, Any]]:
    """Model objects as column dicts (their defaults filled in), for one executemany."""
    return [{c.name: getattr(o, c.name) for c in o.__table__.columns} for o in objects]


async def bulk(app: App, model: Any, objects: Iterable[Any]) -> None:
    batch: list[Any] = []
    for obj in objects:
        batch.append(obj)
        if len(batch) >= BATCH:
            async with app.db.transaction() as session:
                await session.execute(insert(model), rows_of(batch))
            batch = []
    if batch:
        async with app.db.transaction() as session:
            await session.execute(insert(model), rows_of(batch))


async def seed(app: App, scale: float) -> dict[str, Any]:
    key, ws = await owner_key(app)

    async def call(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return ok(await app.runner.call(tool, args, credential=key))

    await call("update_workspace", {"timezone": TIMEZONE})
    services = [
        (await call("create_service", {"name": f"Service {i}", "duration_minutes": 60, "unit_amount": 5000}))["id"]
        for i in range(5)
    ]
    plans = [
        (
            await call(
                "create_plan",
                {"kind": "membership", "name": f"Plan {i}", "unit_amount": 2900 + 1000 * i, "interval": interval},
            )
        )["id"]
        for i, interval in enumerate(("month", "month", "week", "year", "month"))
    ]
    products = [
        (await call("create_product", {"name": f"Product {i}", "unit_amount": 1500, "track_stock": False}))["id"]
        for i in range(5)
    ]
    rnd = random.Random(13)
    now = datetime.now(UTC).replace(microsecond=0)
    n = {
        k: max(1, int(v * scale))
        for k, v in {
            "members": MEMBERS, "bookings": BOOKINGS, "invoices": INVOICES, "orders": ORDERS,
            "refunds": REFUNDS, "subscriptions": SUBSCRIPTIONS,
        }.items()
    }  # fmt: skip

    def past() -> datetime:
        return now - timedelta(seconds=rnd.randrange(DAYS * 86400))

    staff = [new_id("usr") for _ in range(STAFF)]
    async with app.db.transaction() as session:
        session.add_all(
            User(id=uid, workspace_id=ws, email=f"staff{i}@bench.example", name=f"Staff {i}", role=Role.staff,
                 created_at=now)
            for i, uid in enumerate(staff)
        )  # fmt: skip
    members = [new_id("mem") for _ in range(n["members"])]
    progress(f"{n['members']} members")
    await bulk(
        app,
        Member,
        (
            Member(id=m, workspace_id=ws, name=f"Member {i}", email=f"m{i}@bench.example", created_at=(t := past()),
                   updated_at=t, last_activity_at=t)
            for i, m in enumerate(members)
        ),
    )  # fmt: skip
    progress(f"{n['bookings']} bookings")
    statuses = [BookingStatus.completed] * 80 + [BookingStatus.no_show] * 8 + [BookingStatus.cancelled] * 12

    def booking() -> Booking:
        starts = past()
        return Booking(
            id=new_id("bkg"), workspace_id=ws, member_id=rnd.choice(members), service_id=rnd.choice(services),
            staff_user_id=rnd.choice(staff), status=rnd.choice(statuses), starts_at=starts,
            ends_at=starts + timedelta(hours=1), blocked_from=starts, blocked_until=starts + timedelta(hours=1),
            unit_amount=5000, currency="EUR", created_at=starts - timedelta(days=3),
            updated_at=starts,
        )  # fmt: skip

    await bulk(app, Booking, (booking() for _ in range(n["bookings"])))
    progress(f"{n['invoices']} invoices, {n['orders']} orders, their payments, {n['refunds']} refunds")
    invoices: list[Invoice] = []
    lines: list[InvoiceLine] = []
    payments: list[Payment] = []
    for i in range(n["invoices"]):
        paid_at = past()
        amount = rnd.choice((2900, 5000, 6500, 12000))
        inv = new_id("inv")
        invoices.append(
            Invoice(id=inv, workspace_id=ws, member_id=rnd.choice(members), status=InvoiceStatus.paid,
                    number=f"B-{i}", currency="EUR", subtotal=amount, total=amount, amount_paid=amount,
                    created_at=paid_at, updated_at=paid_at, finalized_at=paid_at, paid_at=paid_at,
                    due_date=paid_at.date())
        )  # fmt: skip
        kind = i % 5
        lines.append(
            InvoiceLine(id=new_id("inl"), workspace_id=ws, invoice_id=inv, position=0, description="Line",
                        quantity=1, unit_amount=amount, tax_rate="0", currency="EUR", net=amount, tax=0,
                        gross=amount, service_id=rnd.choice(services) if kind < 3 else None,
                        plan_id=rnd.choice(plans) if kind == 3 else None)
        )  # fmt: skip
        payments.append(
            Payment(id=new_id("pay"), workspace_id=ws, member_id=invoices[-1].member_id, invoice_id=inv,
                    method="card_terminal", status=PaymentStatus.succeeded, currency="EUR", amount=amount,
                    amount_applied=amount, paid_at=paid_at, created_at=paid_at)
        )  # fmt: skip
    orders: list[Order] = []
    order_lines: list[OrderLine] = []
    for _ in range(n["orders"]):
        paid_at = past()
        order = new_id("ord")
        member = rnd.choice(members)
        orders.append(
            Order(id=order, workspace_id=ws, member_id=member, status=OrderStatus.paid, currency="EUR",
                  subtotal=3000, discount=0, tax=0, total=3000, amount_paid=3000, created_at=paid_at,
                  updated_at=paid_at, paid_at=paid_at)
        )  # fmt: skip
        order_lines.append(
            OrderLine(id=new_id("orl"), workspace_id=ws, order_id=order, position=0, product_id=rnd.choice(products),
                      name="Product", quantity=2, unit_amount=1500, currency="EUR", tax_rate="0", discount=0,
                      net=3000, tax=0, total=3000)
        )  # fmt: skip
        payments.append(
            Payment(id=new_id("pay"), workspace_id=ws, member_id=member, order_id=order, method="cash",
                    status=PaymentStatus.succeeded, currency="EUR", amount=3000, amount_applied=3000,
                    paid_at=paid_at, created_at=paid_at)
        )  # fmt: skip
    refunds: list[Refund] = []
    for payment in rnd.sample(payments, n["refunds"]):
        back = payment.amount // 2
        payment.status, payment.amount_refunded = PaymentStatus.partially_refunded, back
        assert payment.paid_at is not None
        settled = min(now, payment.paid_at + timedelta(days=rnd.randrange(1, 30)))
        refunds.append(
            Refund(id=new_id("ref"), workspace_id=ws, payment_id=payment.id, member_id=payment.member_id,
                   invoice_id=payment.invoice_id, order_id=payment.order_id, status=RefundStatus.succeeded,
                   currency="EUR", amount=back, created_at=settled, settled_at=settled)
        )  # fmt: skip
    for model, objects in (
        (Invoice, invoices), (InvoiceLine, lines), (Order, orders), (OrderLine, order_lines),
        (Payment, payments), (Refund, refunds),
    ):  # fmt: skip
        await bulk(app, model, objects)
    progress(f"{n['subscriptions']} memberships")
    sub_statuses = [SubscriptionStatus.active] * 70 + [SubscriptionStatus.cancelled] * 20
    sub_statuses += [SubscriptionStatus.paused] * 5 + [SubscriptionStatus.past_due] * 5

    def subscription(i: int) -> Subscription:
        created = past()
        status = rnd.choice(sub_statuses)
        cancelled = created + timedelta(days=30) if status == SubscriptionStatus.cancelled else None
        plan = i % len(plans)
        return Subscription(
            id=new_id("sub"), workspace_id=ws, member_id=rnd.choice(members), plan_id=plans[plan],
            kind=PlanKind.membership, status=status, unit_amount=2900 + 1000 * plan, currency="EUR",
            interval=("month", "month", "week", "year", "month")[plan], interval_count=1, anchor_at=created,
            current_period_start=created, cancelled_at=cancelled, ended_at=cancelled, created_at=created,
            updated_at=created,
        )  # fmt: skip

    await bulk(app, Subscription, (subscription(i) for i in range(n["subscriptions"])))
    async with app.db.transaction() as session:  # statistics as autovacuum would leave them after a bulk load
        await session.execute(text("ANALYZE"))
    today = now.astimezone(ZoneInfo(TIMEZONE)).date()
    return {"key": key, "today": today, "counts": n}


def cases(today: date) -> list[tuple[str, str, dict[str, Any]]]:
    year = {"from_date": (today - timedelta(days=364)).isoformat(), "to_date": today.isoformat()}
    quarter = {"from_date": (today - timedelta(days=91)).isoformat(), "to_date": today.isoformat()}
    return [
        ("get_dashboard_stats", "365 days", year),
        ("revenue_report", "365 days by week", {**year, "group_by": "week"}),
        ("revenue_report", "365 days by month", {**year, "group_by": "month"}),
        ("revenue_report", "92 days by day", {**quarter, "group_by": "day"}),
        ("no_show_report", "365 days", year),
        ("inactive_members_report", "90 days", {"days": 90}),
        ("campaign_performance_report", "365 days", year),
        ("membership_report", "365 days", year),
    ]


async def measure(app: App, key: str, today: date, runs: int) -> list[dict[str, Any]]:
    served = {spec.name for spec in all_specs()}
    out = []
    for tool, label, args in cases(today):
        if tool not in served:
            continue
        samples = []
        error = None
        for _ in range(runs):
            started = time.perf_counter()
            result = await app.runner.call(tool, args, credential=key)
            samples.append((time.perf_counter() - started) * 1000)
            if not result.ok:
                error = result.data.get("error", {}).get("code")
                break
        out.append({"tool": tool, "case": label, "median_ms": round(statistics.median(samples), 1), "error": error})
    return out


def run(options: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="favmcp-bench-reports-") as tmp, ExitStack() as stack:
        url = stack.enter_context(fresh_postgres_beside(options.database_url)) if options.database_url else None
        env = {"FAVMCP_HOME": str(Path(tmp) / "home"), "FAVMCP_NO_DISPATCHER": "1"}
        if url:
            env["FAVMCP_DATABASE_URL"] = url
        settings = Settings.from_env({**clean_environ(), **env})
        favlog.configure("WARNING")

        async def go() -> tuple[dict[str, Any], float, list[dict[str, Any]]]:
            app = await App.open(settings, upgrade=True)
            try:
                started = time.perf_counter()
                world = await seed(app, options.scale)
                seeded = time.perf_counter() - started
                progress(f"seeded in {seeded:.0f} s; timing the reports")
                return world, seeded, await measure(app, world["key"], world["today"], options.runs)
            finally:
                await app.close()

        world, seeded, figures = anyio.run(go)
    database = "postgres" if url else "sqlite"
    print(f"favmcp reports on {database}: {world['counts']}, seeded in {seeded:.0f} s, {options.runs} runs each")
    healthy = True
    for f in figures:
        met = f["error"] or ("met" if f["median_ms"] < TARGET_MS else "MISSED")
        healthy &= f["error"] is None and (database != "postgres" or f["median_ms"] < TARGET_MS)
        print(f"  {f['tool']:<30} {f['case']:<20} median {f['median_ms']:9.1f} ms   {met}")
    print(json.dumps({"database": database, "counts": world["counts"], "seed_s": round(seeded), "reports": figures}))
    return healthy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="A Postgres server to run on (a fresh database is made beside it).")
    parser.add_argument("--runs", type=int, default=5, help="Calls per report (default 5).")
    parser.add_argument("--scale", type=float, default=1.0, help="Shrink every count (default 1: the full set).")
    options = parser.parse_args()
    if options.runs < 1 or not 0 < options.scale <= 1:
        parser.error("--runs must be at least 1 and --scale in (0, 1]")
    sys.exit(0 if run(options) else 1)


if __name__ == "__main__":
    main()
