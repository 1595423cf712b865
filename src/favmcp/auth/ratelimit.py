"""Fixed-window counters in the database: one atomic upsert per hit, so concurrent requests and replicas agree."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from favmcp.auth.models import RateLimitBucket
from favmcp.core.errors import rate_limited
from favmcp.db.scoped import insert_for

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


async def hit(session: AsyncSession, key: str, limit: int, window: timedelta, now: datetime) -> None:
    """Count one request against `key`; refuse (and count nothing) once `limit` is reached in this window."""
    seconds = int(window.total_seconds())
    start = int(now.timestamp()) // seconds * seconds
    ends = datetime.fromtimestamp(start + seconds, tz=now.tzinfo)
    table = RateLimitBucket.__table__  # type: ignore[attr-defined]
    stmt = insert_for(session, table).values(key=f"{key}:{seconds}:{start}", count=1, expires_at=ends)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"count": table.c.count + 1}, where=table.c.count < limit
    ).returning(table.c.count)
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        retry = max(1, int((ends - now).total_seconds()))
        raise rate_limited("Too many requests; try again later.", retry_after=retry)
