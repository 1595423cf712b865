"""Bookings under load: availability for a busy month, and create_booking from 50 concurrent HTTP clients.

    uv run python tools/bench_bookings.py [--database-url URL] [--runs 20] [--clients 50] [--calls 8]

Set-up (not timed): a workspace open 08:00-20:00 every day, one 60-minute service with a 15-minute buffer after it
delivered by 20 staff, 2,500 customers and 2,000 confirmed bookings spread over the next 31 days (rows inserted
in bulk, so that the set-up takes seconds).

Figures:
- `get_available_slots`, first page (100 slots) over 31 days for all 20 staff, through the runner exactly as an
  MCP call runs it (credential, scope, validation, queries, serialisation): median and p90 of --runs calls,
  beside `get_booking_settings` (the runner's floor for a read of this domain) timed in alternation. Target: the
  first page under 50 ms.
- `create_booking` over streamable HTTP (`favmcp serve --http`, one process), --clients clients at once, each on
  its own connection making --calls bookings of distinct free slots for distinct customers: throughput, p50, p99,
  refusals; beside `create_member` under the same load (a plain insert through the same path).
- A contested round: --clients clients at once, in groups of 10 on 5 slots: exactly 5 bookings may exist.
- Invariants after the runs, read straight from the database: no staff member and no customer holds two active
  bookings that overlap (buffers included for staff). Any break is printed and fails the run.

SQLite in a throwaway FAVMCP_HOME by default; --database-url runs on a fresh Postgres database created beside the
given one and dropped afterwards. Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from contextlib import AsyncExitStack, ExitStack
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import text

from bench_mcp import (
    TIMEOUT,
    TLS,
    Post,
    Stats,
    bench_env,
    clean_environ,
    free_port,
    fresh_postgres_beside,
    progress,
    replay,
    spawned,
    wait_healthy,
)
from bench_search_members import owner_key
from favmcp import logging as favlog
from favmcp.app import App
from favmcp.auth.models import Role, User
from favmcp.config import Settings
from favmcp.core.ids import new_id
from favmcp.domains.bookings.models import Booking, BookingStatus
from favmcp.domains.members.models import Member

STAFF = 20
CUSTOMERS = 2500
BOOKINGS = 2000
DAYS = 31
TIMEZONE = "Europe/Amsterdam"
DURATION = 60
BUFFER_AFTER = 15
SLOTS_TARGET_MS = 50.0


def ok(result: Any) -> dict[str, Any]:
    if not result.ok:
        raise RuntimeError(f"a set-up call failed: {result.data}")
    return dict(result.data)


async def seed(app: App) -> dict[str, Any]:
    """The busy workspace; returns the owner's key, the service, the staff, the customers and the first day."""
    key, workspace_id = await owner_key(app)

    async def call(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return ok(await app.runner.call(tool, args, credential=key))

    await call("update_workspace", {"timezone": TIMEZONE})
    every_day = {
        day: [{"open": "08:00", "close": "20:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    await call("set_business_hours", {"weekly": every_day})
    await call("update_booking_settings", {"min_notice_minutes": 0, "max_advance_days": 120, "slot_step_minutes": 15})
    service = await call(
        "create_service",
        {"name": "Massage", "duration_minutes": DURATION, "unit_amount": 6000, "buffer_after_minutes": BUFFER_AFTER},
    )
    now = datetime.now(UTC)
    staff = [new_id("usr") for _ in range(STAFF)]
    customers = [new_id("mem") for _ in range(CUSTOMERS)]
    async with app.db.transaction() as session:
        session.add_all(
            User(id=uid, workspace_id=workspace_id, email=f"staff{i}@bench.example", name=f"Staff {i}",
                 role=Role.staff, created_at=now)
            for i, uid in enumerate(staff)
        )  # fmt: skip
        session.add_all(
            Member(id=mid, workspace_id=workspace_id, name=f"Customer {i}", email=f"c{i}@bench.example",
                   created_at=now, updated_at=now, last_activity_at=now)
            for i, mid in enumerate(customers)
        )  # fmt: skip
    await call("assign_staff_to_service", {"service_id": service["id"], "staff_ids": staff})
    tz = ZoneInfo(TIMEZONE)
    first_day = (now.astimezone(tz) + timedelta(days=1)).date()
    rows = []
    # 2,000 bookings: every staff member at 09:00, 13:00 and 16:00 local on most days, never overlapping.
    for n, (day, hour, s) in enumerate(itertools.product(range(DAYS), (9, 13, 16, 11), range(STAFF))):
        if n >= BOOKINGS:
            break
        starts = datetime.combine(first_day + timedelta(days=day), clock_time(hour), tzinfo=tz).astimezone(UTC)
        ends = starts + timedelta(minutes=DURATION)
        rows.append(
            Booking(id=new_id("bkg"), workspace_id=workspace_id, member_id=customers[n % CUSTOMERS],
                    service_id=service["id"], staff_user_id=staff[s], status=BookingStatus.confirmed,
                    starts_at=starts, ends_at=ends, blocked_from=starts,
                    blocked_until=ends + timedelta(minutes=BUFFER_AFTER), unit_amount=6000, currency="EUR",
                    created_at=now, updated_at=now)
        )  # fmt: skip
    async with app.db.transaction() as session:
        session.add_all(rows)
    return {
        "key": key,
        "service_id": service["id"],
        "staff": staff,
        "customers": customers[BOOKINGS:],  # those without a booking yet: the HTTP rounds book them
        "first_day": first_day,
    }


async def timed(app: App, key: str, tool: str, args: dict[str, Any]) -> float:
    started = time.perf_counter()
    result = await app.runner.call(tool, args, credential=key)
    elapsed = (time.perf_counter() - started) * 1000
    if not result.ok:
        raise RuntimeError(f"{tool} failed: {result.data}")
    return elapsed


async def bench_slots(app: App, world: dict[str, Any], runs: int) -> dict[str, Stats]:
    first = world["first_day"]
    args = {
        "service_id": world["service_id"],
        "from_date": first.isoformat(),
        "to_date": (first + timedelta(days=DAYS - 1)).isoformat(),
        "limit": 100,
    }
    page = ok(await app.runner.call("get_available_slots", args, credential=world["key"]))
    if len(page["items"]) != 100:
        raise RuntimeError(f"the first page has {len(page['items'])} slots, not 100")
    slots: list[float] = []
    floor: list[float] = []
    for _ in range(3):  # warm both
        await timed(app, world["key"], "get_available_slots", args)
        await timed(app, world["key"], "get_booking_settings", {})
    for _ in range(runs):
        slots.append(await timed(app, world["key"], "get_available_slots", args))
        floor.append(await timed(app, world["key"], "get_booking_settings", {}))
    return {"get_available_slots": Stats.of(slots), "get_booking_settings": Stats.of(floor)}


async def free_slots(app: App, world: dict[str, Any], wanted: int, skip_days: int) -> list[dict[str, Any]]:
    """`wanted` free slots that share neither staff and time nor overlap one another per staff member: walks the
    offered slots from `skip_days` on and keeps, per staff member, slots that do not overlap those kept."""
    first = world["first_day"] + timedelta(days=skip_days)
    args: dict[str, Any] = {
        "service_id": world["service_id"],
        "from_date": first.isoformat(),
        "to_date": (first + timedelta(days=60)).isoformat(),
        "limit": 100,
    }
    kept: list[dict[str, Any]] = []
    busy_until: dict[str, datetime] = {}
    while len(kept) < wanted:
        page = ok(await app.runner.call("get_available_slots", args, credential=world["key"]))
        for slot in page["items"]:
            starts = datetime.fromisoformat(slot["starts_at"])
            if starts >= busy_until.get(slot["staff_user_id"], datetime.min.replace(tzinfo=UTC)):
                kept.append(slot)
                busy_until[slot["staff_user_id"]] = starts + timedelta(minutes=DURATION + BUFFER_AFTER)
        if not page["has_more"]:
            break
        args["cursor"] = page["next_cursor"]
    if len(kept) < wanted:
        raise RuntimeError(f"only {len(kept)} free slots found, {wanted} wanted")
    return kept[:wanted]


async def load(post: Post, arguments: list[dict[str, Any]], clients: int) -> tuple[Stats, float, int]:
    """`clients` clients at once, each on its own connection, sharing out `arguments` one call each in turn."""
    ids = itertools.count(1)
    queue = iter(arguments)
    samples: list[float] = []
    refused = 0

    async def client(http: httpx2.AsyncClient) -> None:
        nonlocal refused
        for args in queue:
            started = time.perf_counter()
            answered = await replay(http, post, next(ids), args)
            samples.append((time.perf_counter() - started) * 1000)
            refused += not answered

    async with AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(httpx2.AsyncClient(timeout=TIMEOUT, verify=TLS)) for _ in range(clients)
        ]
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for http in https:
                tg.start_soon(client, http)
        seconds = time.perf_counter() - started
    return Stats.of(samples), len(samples) / seconds, refused


async def bench_http(url: str, key: str, world: dict[str, Any], slots: list[dict[str, Any]], clients: int) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    customers = iter(world["customers"])

    def booking(slot: dict[str, Any]) -> dict[str, Any]:
        return {"member_id": next(customers), "service_id": world["service_id"], "starts_at": slot["starts_at"],
                "staff_id": slot["staff_user_id"]}  # fmt: skip

    warm, contested_slots, spread = slots[:clients], slots[clients : clients + 5], slots[clients + 5 :]
    posts: dict[str, Post] = {}

    async def capture(tool: str, args: dict[str, Any]) -> Post:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=TIMEOUT, verify=TLS, event_hooks={"request": [keep]}) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):
            await client.call_tool(tool, args)
        return last_call(tool)

    sent: list[httpx2.Request] = []

    async def keep(request: httpx2.Request) -> None:
        sent.append(request)

    def last_call(tool: str) -> Post:
        for request in reversed(sent):
            body = json.loads(request.content)
            if body.get("method") == "tools/call" and body["params"]["name"] == tool:
                kept = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
                return Post(str(request.url), kept, body)
        raise RuntimeError(f"no tools/call of {tool} was sent")

    posts["create_booking"] = await capture("create_booking", booking(warm[0]))
    posts["create_member"] = await capture("create_member", {"name": "Warm Up", "email": "warm@bench.example"})
    await load(posts["create_booking"], [booking(s) for s in warm[1:]], clients)  # connections and caches warm
    members = [{"name": f"New {n}", "email": f"new{n}@bench.example"} for n in range(len(spread))]
    member_stats, member_rate, member_refused = await load(posts["create_member"], members, clients)
    book_stats, book_rate, book_refused = await load(posts["create_booking"], [booking(s) for s in spread], clients)
    contested = [booking(contested_slots[n % 5]) for n in range(clients)]
    _, _, contested_refused = await load(posts["create_booking"], contested, clients)
    return {
        "create_booking": {"stats": book_stats, "per_second": book_rate, "refused": book_refused,
                           "calls": len(spread)},
        "create_member": {"stats": member_stats, "per_second": member_rate, "refused": member_refused,
                          "calls": len(members)},
        "contested": {"calls": clients, "slots": 5, "booked": clients - contested_refused},
    }  # fmt: skip


OVERLAPS = {
    "staff": """
        SELECT count(*) FROM bookings a JOIN bookings b
          ON a.workspace_id = b.workspace_id AND a.staff_user_id = b.staff_user_id AND a.id < b.id
         AND a.blocked_from < b.blocked_until AND b.blocked_from < a.blocked_until
         WHERE a.class_session_id IS NULL AND b.class_session_id IS NULL
           AND a.status IN ('pending', 'confirmed', 'checked_in') AND b.status IN ('pending', 'confirmed', 'checked_in')
    """,
    "customer": """
        SELECT count(*) FROM bookings a JOIN bookings b
          ON a.workspace_id = b.workspace_id AND a.member_id = b.member_id AND a.id < b.id
         AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at
         WHERE a.status IN ('pending', 'confirmed', 'checked_in') AND b.status IN ('pending', 'confirmed', 'checked_in')
    """,
}


async def invariant_breaks(app: App) -> dict[str, int]:
    async with app.db.transaction() as session:
        return {name: int((await session.execute(text(sql))).scalar_one()) for name, sql in OVERLAPS.items()}


def row(label: str, stats: Stats) -> str:
    return f"  {label:<34} median {stats.median_ms:8.2f} ms   p90 {stats.p90_ms:8.2f} ms   p99 {stats.p99_ms:8.2f} ms"


def run(options: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="favmcp-bench-bookings-") as tmp, ExitStack() as stack:
        url = stack.enter_context(fresh_postgres_beside(options.database_url)) if options.database_url else None
        env = bench_env(tmp, url)
        settings = Settings.from_env({**clean_environ(), **env})
        favlog.configure("WARNING")

        async def prepare() -> tuple[dict[str, Any], dict[str, Stats], list[dict[str, Any]]]:
            app = await App.open(settings, upgrade=True)
            try:
                progress("seeding 20 staff, 2,500 customers, 2,000 bookings")
                world = await seed(app)
                progress("get_available_slots, first page")
                slot_stats = await bench_slots(app, world, options.runs)
                wanted = options.clients * (options.calls + 1) + 5
                progress(f"finding {wanted} free slots for the HTTP rounds")
                slots = await free_slots(app, world, wanted, skip_days=DAYS + 1)
                return world, slot_stats, slots
            finally:
                await app.close()

        world, slot_stats, slots = anyio.run(prepare)
        log = stack.enter_context((Path(tmp) / "server.log").open("a"))
        port = free_port()
        proc = stack.enter_context(spawned(["-m", "favmcp", "serve", "--http", "--port", str(port)], env, log))
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc)
        progress(f"create_booking from {options.clients} concurrent HTTP clients")
        http = anyio.run(bench_http, base, world["key"], world, slots, options.clients)

        async def check() -> dict[str, int]:
            app = await App.open(settings)
            try:
                return await invariant_breaks(app)
            finally:
                await app.close()

        breaks = anyio.run(check)

    database = "postgres" if url else "sqlite"
    first_page = slot_stats["get_available_slots"]
    print(f"favmcp bookings on {database}: {STAFF} staff, {BOOKINGS} bookings over {DAYS} days, {options.runs} runs")
    print("availability (through the runner, server-side):")
    print(row("get_available_slots first page", first_page))
    print(row("get_booking_settings (floor)", slot_stats["get_booking_settings"]))
    ratio = first_page.median_ms / slot_stats["get_booking_settings"].median_ms
    met = "met" if first_page.median_ms < SLOTS_TARGET_MS else "MISSED"
    print(
        f"  first page {first_page.median_ms:.1f} ms vs target {SLOTS_TARGET_MS:.0f} ms: {met}; {ratio:.1f}x the floor"
    )
    print(f"HTTP, {options.clients} concurrent clients, one server process:")
    for name in ("create_booking", "create_member"):
        figures = http[name]
        print(
            row(name, figures["stats"]) + f"   {figures['per_second']:6.1f}/s   "
            f"{figures['refused']} of {figures['calls']} refused"
        )
    contested = http["contested"]
    print(f"  contested: {contested['calls']} calls on {contested['slots']} slots -> {contested['booked']} booked")
    print(f"invariant breaks: staff overlaps {breaks['staff']}, customer overlaps {breaks['customer']}")
    healthy = (
        not any(breaks.values())
        and contested["booked"] == contested["slots"]
        and http["create_booking"]["refused"] == 0
    )
    summary = {
        "database": database,
        "slots_first_page": first_page.as_json(),
        "slots_floor": slot_stats["get_booking_settings"].as_json(),
        "http": {
            name: {**{k: v for k, v in http[name].items() if k != "stats"}, "stats": http[name]["stats"].as_json()}
            for name in ("create_booking", "create_member")
        },
        "contested": contested,
        "invariant_breaks": breaks,
        "healthy": healthy,
    }
    print(json.dumps(summary))
    return healthy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="A Postgres server to run on (a fresh database is made beside it).")
    parser.add_argument("--runs", type=int, default=20, help="Timed get_available_slots calls (default 20).")
    parser.add_argument("--clients", type=int, default=50, help="Concurrent HTTP clients (default 50).")
    parser.add_argument("--calls", type=int, default=8, help="Bookings per client in the load round (default 8).")
    options = parser.parse_args()
    if min(options.runs, options.clients, options.calls) < 1:
        parser.error("--runs, --clients and --calls must be at least 1")
    sys.exit(0 if run(options) else 1)


if __name__ == "__main__":
    main()
