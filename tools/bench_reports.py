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
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from sqlalchemy import insert, text

from bench_mcp import bench_env, clean_environ, fresh_postgres_beside, progress
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


class Loader:
    """Bulk rows for one table: each row is a template (a model object with its defaults) with a few fields changed.
    Postgres: COPY (asyncpg's copy_records_to_table); SQLite: executemany, in batches of BATCH rows."""

    def __init__(self, app: App, template: Any) -> None:
        self.app, self.table = app, template.__table__
        self.columns = [c.name for c in self.table.columns]
        self.base = {name: _plain(getattr(template, name)) for name in self.columns}
        self.batch: list[dict[str, Any]] = []

    async def add(self, **fields: Any) -> None:
        self.batch.append({**self.base, **{k: _plain(v) for k, v in fields.items()}})
        if len(self.batch) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        rows, self.batch = self.batch, []
        if not rows:
            return
        async with self.app.db.transaction() as session:
            connection = await session.connection()
            if connection.dialect.name == "postgresql":
                raw = (await connection.get_raw_connection()).driver_connection
                records = [tuple(row[c] for c in self.columns) for row in rows]
                await raw.copy_records_to_table(self.table.name, records=records, columns=self.columns)
            else:
                await session.execute(insert(self.table), rows)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


async def seed(app: App, scale: float) -> dict[str, Any]:
    key, ws = await owner_key(app)

    async def call(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return ok(await app.runner.call(tool, args, credential=key))

    await call("update_workspace", {"timezone": TIMEZONE})
    services = [
        (await call("create_service", {"name": f"Service {i}", "duration_minutes": 60, "unit_amount": 5000}))["id"]
        for i in range(5)
    ]
    intervals = ("month", "month", "week", "year", "month")
    plans = [
        (
            await call(
                "create_plan",
                {"kind": "membership", "name": f"Plan {i}", "unit_amount": 2900 + 1000 * i, "interval": interval},
            )
        )["id"]
        for i, interval in enumerate(intervals)
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
    progress(f"{n['members']} members")
    members = [new_id("mem") for _ in range(n["members"])]
    load = Loader(app, Member(id="", workspace_id=ws, name="", created_at=now, updated_at=now, last_activity_at=now))
    for i, m in enumerate(members):
        t = past()
        await load.add(id=m, name=f"Member {i}", email=f"m{i}@bench.example", created_at=t, updated_at=t,
                       last_activity_at=t)  # fmt: skip
    await load.flush()
    progress(f"{n['bookings']} bookings")
    statuses = [BookingStatus.completed] * 80 + [BookingStatus.no_show] * 8 + [BookingStatus.cancelled] * 12
    load = Loader(
        app,
        Booking(id="", workspace_id=ws, member_id="", service_id="", staff_user_id="", status=BookingStatus.completed,
                starts_at=now, ends_at=now, blocked_from=now, blocked_until=now, unit_amount=5000, currency="EUR",
                created_at=now, updated_at=now),
    )  # fmt: skip
    for _ in range(n["bookings"]):
        starts = past()
        ends = starts + timedelta(hours=1)
        await load.add(
            id=new_id("bkg"), member_id=rnd.choice(members), service_id=rnd.choice(services),
            staff_user_id=rnd.choice(staff), status=rnd.choice(statuses), starts_at=starts, ends_at=ends,
            blocked_from=starts, blocked_until=ends, created_at=starts - timedelta(days=3), updated_at=starts,
        )  # fmt: skip
    await load.flush()
    progress(f"{n['invoices']} invoices, {n['orders']} orders, their payments, {n['refunds']} refunds")
    payments: list[dict[str, Any]] = []
    invoices = Loader(app, Invoice(id="", workspace_id=ws, member_id="", status=InvoiceStatus.paid, currency="EUR",
                                   created_at=now, updated_at=now))  # fmt: skip
    lines = Loader(app, InvoiceLine(id="", workspace_id=ws, invoice_id="", position=1, description="Line", quantity=1,
                                    unit_amount=0, tax_rate="0", currency="EUR", net=0, tax=0, gross=0))  # fmt: skip
    for i in range(n["invoices"]):
        paid_at = past()
        amount = rnd.choice((2900, 5000, 6500, 12000))
        inv, member = new_id("inv"), rnd.choice(members)
        await invoices.add(id=inv, member_id=member, number=f"B-{i}", subtotal=amount, total=amount,
                           amount_paid=amount, created_at=paid_at, updated_at=paid_at, finalized_at=paid_at,
                           paid_at=paid_at, due_date=paid_at.date())  # fmt: skip
        kind = i % 5
        await lines.add(id=new_id("inl"), invoice_id=inv, unit_amount=amount, net=amount, gross=amount,
                        service_id=rnd.choice(services) if kind < 3 else None,
                        plan_id=rnd.choice(plans) if kind == 3 else None)  # fmt: skip
        payments.append({"id": new_id("pay"), "member_id": member, "invoice_id": inv, "amount": amount,
                         "amount_applied": amount, "paid_at": paid_at, "created_at": paid_at})  # fmt: skip
    await invoices.flush()
    await lines.flush()
    orders = Loader(app, Order(id="", workspace_id=ws, member_id="", status=OrderStatus.paid, currency="EUR",
                               subtotal=3000, discount=0, tax=0, total=3000, amount_paid=3000, created_at=now,
                               updated_at=now))  # fmt: skip
    order_lines = Loader(app, OrderLine(id="", workspace_id=ws, order_id="", position=0, product_id="",
                                        name="Product", quantity=2, unit_amount=1500, currency="EUR", tax_rate="0",
                                        discount=0, net=3000, tax=0, total=3000))  # fmt: skip
    for _ in range(n["orders"]):
        paid_at = past()
        order, member = new_id("ord"), rnd.choice(members)
        await orders.add(id=order, member_id=member, created_at=paid_at, updated_at=paid_at, paid_at=paid_at)
        await order_lines.add(id=new_id("orl"), order_id=order, product_id=rnd.choice(products))
        payments.append({"id": new_id("pay"), "member_id": member, "order_id": order, "amount": 3000,
                         "amount_applied": 3000, "paid_at": paid_at, "created_at": paid_at})  # fmt: skip
    await orders.flush()
    await order_lines.flush()
    refunds = Loader(app, Refund(id="", workspace_id=ws, payment_id="", member_id="", status=RefundStatus.succeeded,
                                 currency="EUR", amount=1, created_at=now))  # fmt: skip
    refunded = []
    for payment in rnd.sample(payments, n["refunds"]):
        back = payment["amount"] // 2
        payment.update(status=PaymentStatus.partially_refunded, amount_refunded=back)
        settled = min(now, payment["paid_at"] + timedelta(days=rnd.randrange(1, 30)))
        refunded.append(dict(id=new_id("ref"), payment_id=payment["id"], member_id=payment["member_id"],
                             invoice_id=payment.get("invoice_id"), order_id=payment.get("order_id"), amount=back,
                             created_at=settled, settled_at=settled))  # fmt: skip
    load = Loader(app, Payment(id="", workspace_id=ws, member_id="", method="card_terminal",
                               status=PaymentStatus.succeeded, currency="EUR", amount=1, created_at=now))  # fmt: skip
    for payment in payments:
        await load.add(**payment)
    await load.flush()
    for refund in refunded:
        await refunds.add(**refund)
    await refunds.flush()
    progress(f"{n['subscriptions']} memberships")
    sub_statuses = [SubscriptionStatus.active] * 70 + [SubscriptionStatus.cancelled] * 20
    sub_statuses += [SubscriptionStatus.paused] * 5 + [SubscriptionStatus.past_due] * 5
    load = Loader(app, Subscription(id="", workspace_id=ws, member_id="", plan_id="", kind=PlanKind.membership,
                                    status=SubscriptionStatus.active, unit_amount=0, currency="EUR", interval_count=1,
                                    created_at=now, updated_at=now))  # fmt: skip
    for i in range(n["subscriptions"]):
        created = past()
        status = rnd.choice(sub_statuses)
        cancelled = created + timedelta(days=30) if status == SubscriptionStatus.cancelled else None
        plan = i % len(plans)
        await load.add(id=new_id("sub"), member_id=rnd.choice(members), plan_id=plans[plan], status=status,
                       unit_amount=2900 + 1000 * plan, interval=intervals[plan], anchor_at=created,
                       current_period_start=created, cancelled_at=cancelled, ended_at=cancelled, created_at=created,
                       updated_at=created)  # fmt: skip
    await load.flush()
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
        settings = Settings.from_env({**clean_environ(), **bench_env(tmp, url)})
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
