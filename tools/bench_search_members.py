"""search_members at 100k members, on SQLite and on Postgres: first page, a late page, text and tag filters.

    uv run python tools/bench_search_members.py [--members 100000] [--runs 30] [--postgres URL]

Keyset pagination means a late page should cost what the first one does; the figures say whether it does.
The members are inserted in bulk (not through tools) so that the set-up takes seconds; the timed calls go
through the runner exactly as an MCP call does (credential, scope, validation, query, serialisation).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from favmcp.app import App
from favmcp.config import Settings
from favmcp.core.ids import new_id
from favmcp.domains.members.models import Member, MemberTag
from favmcp.effects.models import OutboxMessage
from favmcp.effects.outbox import open_body


async def owner_key(app: App) -> tuple[str, str]:
    email = f"bench.{uuid.uuid4().hex[:8]}@example.com"
    args = {"email": email, "organisation_name": "Bench", "owner_name": "Bench"}
    req = await app.runner.call("register_organisation_request", args, credential=None)
    async with app.db.transaction() as session:
        stmt = select(OutboxMessage).where(col(OutboxMessage.recipient) == email)
        message = (await session.execute(stmt)).scalar_one()
    code = re.search(r"\b(\d{6})\b", open_body(app.settings, message))
    assert code
    ver = await app.runner.call(
        "register_organisation_verify", {"request_id": req.data["request_id"], "code": code.group(1)}, credential=None
    )
    return ver.data["api_key"], ver.data["workspace_id"]


async def fill(app: App, workspace_id: str, count: int) -> None:
    now = datetime.now(UTC)
    batch = 5000
    for start in range(0, count, batch):
        members = [
            {
                "id": new_id("mem"),
                "workspace_id": workspace_id,
                "status": "active",
                "name": f"Member {i} {'Lovelace' if i % 1000 == 0 else 'Smith'}",
                "email": f"member{i}@bench.example",
                "phone": None,
                "lifecycle": "customer",
                "created_at": now,
                "updated_at": now,
                "last_activity_at": now,
            }
            for i in range(start, min(count, start + batch))
        ]
        tags = [
            {"workspace_id": workspace_id, "member_id": m["id"], "tag": "vip", "created_at": now}
            for n, m in enumerate(members)
            if n % 50 == 0
        ]
        async with app.db.transaction() as session:
            await session.execute(insert(Member), members)
            await session.execute(insert(MemberTag), tags)


async def timed(app: App, key: str, args: dict[str, Any], runs: int) -> tuple[float, dict[str, Any]]:
    samples = []
    data: dict[str, Any] = {}
    for _ in range(runs):
        started = time.perf_counter()
        result = await app.runner.call("search_members", args, credential=key)
        samples.append((time.perf_counter() - started) * 1000)
        assert result.ok, result.data
        data = result.data
    return statistics.median(samples), data


async def bench(url: str, home: Path, count: int, runs: int) -> dict[str, float]:
    settings = Settings.from_env({"FAVMCP_HOME": str(home), "FAVMCP_DATABASE_URL": url, "FAVMCP_SECRET_KEY": "b"})
    app = await App.open(settings, upgrade=True)
    try:
        key, workspace_id = await owner_key(app)
        started = time.perf_counter()
        await fill(app, workspace_id, count)
        async with app.db.transaction() as session:  # statistics as autovacuum would leave them after a bulk load
            await session.execute(text("ANALYZE"))
        print(f"  inserted {count} members in {time.perf_counter() - started:.1f} s")
        first, page = await timed(app, key, {"limit": 20}, runs)
        cursor = page["next_cursor"]
        walked = 20
        while walked < int(count * 0.9):  # walk to a late page with big pages
            late_page = await app.runner.call("search_members", {"limit": 100, "cursor": cursor}, credential=key)
            cursor = late_page.data["next_cursor"]
            walked += 100
        late, _ = await timed(app, key, {"limit": 20, "cursor": cursor}, runs)
        text_search, found = await timed(app, key, {"text": "lovelace", "limit": 20}, runs)
        tag, _ = await timed(app, key, {"tag": "vip", "limit": 20}, runs)
        assert found["items"], "the text search should find members"
        return {"first_page": first, "late_page": late, "text": text_search, "tag": tag}
    finally:
        await app.close()


async def admin(base_url: str, sql: str) -> None:
    base = make_url(base_url)
    conn = await asyncpg.connect(host=base.host, port=base.port or 5432, user=base.username, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    a = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite")
        results["sqlite"] = await bench(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", Path(tmp), a.members, a.runs)
        print("Postgres")
        name = f"favmcp_bench_{uuid.uuid4().hex[:8]}"
        await admin(a.postgres, f'CREATE DATABASE "{name}"')
        try:
            url = make_url(a.postgres).set(database=name).render_as_string(hide_password=False)
            results["postgres"] = await bench(url, Path(tmp), a.members, a.runs)
        finally:
            await admin(a.postgres, f'DROP DATABASE "{name}" WITH (FORCE)')
    print(f"\nsearch_members over {a.members} members, median of {a.runs} calls (ms)")
    print(f"{'engine':10} {'first page':>11} {'late page':>10} {'late/first':>11} {'text':>8} {'tag':>8}")
    for engine, r in results.items():
        ratio = r["late_page"] / r["first_page"]
        print(
            f"{engine:10} {r['first_page']:11.2f} {r['late_page']:10.2f} {ratio:11.2f} {r['text']:8.2f} {r['tag']:8.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
