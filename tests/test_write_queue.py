"""SQLite writers of one process take turns in arrival order (Database.write_session), not by racing on SQLite's
busy handler, which sleeps and retries and lets a late writer overtake an early one for seconds.

SQLite only: on Postgres writers never wait for one another as a whole, so there is no queue to test.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from favmcp.db.engine import Database
from favmcp.db.migrate import upgrade

WRITERS = 40


async def test_sqlite_writers_commit_in_arrival_order(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}")
    await upgrade(db)
    expires = datetime.now(UTC) + timedelta(hours=1)
    entered: list[int] = []

    async def writer(n: int) -> None:
        async with db.transaction() as session:
            entered.append(n)
            await session.execute(
                text("INSERT INTO rate_limit_buckets (key, count, expires_at) VALUES (:key, :n, :expires)"),
                {"key": f"writer-{n}", "n": n, "expires": expires},
            )
            await asyncio.sleep(0.002)  # hold the write lock across a hop, as a real unit of work does

    try:
        async with asyncio.TaskGroup() as group:
            for n in range(WRITERS):
                group.create_task(writer(n))
                await asyncio.sleep(0)  # each writer has asked for its turn before the next one starts
        assert entered == list(range(WRITERS))
        async with db.read_sessions() as session:
            stored = (await session.execute(text("SELECT count FROM rate_limit_buckets ORDER BY rowid"))).scalars()
            assert list(stored) == list(range(WRITERS))
    finally:
        await db.dispose()
