"""Fixed-window counters in the database, so concurrent requests and replicas agree: `hit` makes one atomic upsert
per request (codes, sign-ins); `CallLimits` counts tool calls in memory and reconciles with the database about once
a second."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from favmcp.auth.models import RateLimitBucket
from favmcp.core.clock import Clock
from favmcp.core.errors import rate_limited
from favmcp.db.engine import Database
from favmcp.db.scoped import insert_for
from favmcp.registry.spec import ToolSpec

log = structlog.get_logger("favmcp.ratelimit")

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


class CallClass(StrEnum):
    reads = "reads"
    writes = "writes"
    sends = "sends"  # open-world tools: they reach customers (messages, invoices, campaigns)


def class_of(spec: ToolSpec) -> CallClass:
    if spec.effect.open_world:
        return CallClass.sends
    return CallClass.writes if spec.mutating else CallClass.reads


CALL_WINDOW = 60  # seconds: the limits are per minute
RECONCILE_EVERY = 1.0  # seconds between a process's reconciliations with the database


@dataclass
class _Bucket:
    window: int  # the window's start, in seconds since the epoch
    shared: int = 0  # every process's calls in this window, as the database counted them at the last reconciliation
    pending: int = 0  # this process's calls since


class CallLimits:
    """Calls per credential (or client address) and class of tool, per minute, shared by every process.

    `take` decides in memory, with no await: a bucket refuses once the shared total and this process's own calls
    since reach the limit. About once a second `reconcile` adds each bucket's new calls to its row of
    rate_limit_buckets and reads back the total of all processes, in one upsert. Between reconciliations each
    process may admit what it last saw left, so the processes together may pass a limit by a second's calls."""

    def __init__(self, db: Database, limits: Mapping[CallClass, int], clock: Clock, secret: bytes) -> None:
        self.db = db
        self.limits = limits  # per minute; 0: no limit
        self.clock = clock
        self.secret = secret
        self.buckets: dict[tuple[str, CallClass], _Bucket] = {}
        self._next_reconcile = 0.0
        self._reconciling = False

    def subject(self, key_id: str | None, client_address: str, *, per_address: bool = False) -> str:
        """Whose calls count together: the credential's, else the address's, by an HMAC (as the one-time codes'
        buckets): no address is stored. Every replica shares the secret, so they name an address alike.
        per_address: each address's calls with the credential count apart (a publishable key, which every visitor
        of a page shares: one busy visitor must not use up the page's key for the others)."""
        if key_id is not None and not per_address:
            return key_id
        address = "addr:" + hmac.new(self.secret, client_address.encode(), hashlib.sha256).hexdigest()[:32]
        return address if key_id is None else f"{key_id}:{address}"

    def take(self, subject: str, kind: CallClass) -> None:
        """Count one call of `subject`, or raise `rate_limited` (counting nothing) when its class is over."""
        limit = self.limits[kind]
        if limit <= 0:
            return
        now = self.clock.now().timestamp()
        start = int(now) // CALL_WINDOW * CALL_WINDOW
        bucket = self.buckets.get((subject, kind))
        if bucket is None or bucket.window != start:
            bucket = self.buckets[(subject, kind)] = _Bucket(start)
        if bucket.shared + bucket.pending >= limit:
            retry = max(1, math.ceil(start + CALL_WINDOW - now))
            raise rate_limited(f"Too many {kind.value} for this credential this minute (limit {limit}).", retry)
        bucket.pending += 1

    @property
    def due(self) -> bool:
        return not self._reconciling and bool(self.buckets) and time.monotonic() >= self._next_reconcile

    async def reconcile(self) -> None:
        """Add every bucket's calls since the last time to the shared counts and learn the totals; the buckets of
        past windows are dropped. A failure keeps the calls for the next attempt."""
        if self._reconciling:
            return
        self._reconciling = True
        self._next_reconcile = time.monotonic() + RECONCILE_EVERY
        try:
            current = int(self.clock.now().timestamp()) // CALL_WINDOW * CALL_WINDOW
            for key in [key for key, bucket in self.buckets.items() if bucket.window < current]:
                del self.buckets[key]
            # Sorted: two processes upsert the same rows in one order, so they cannot deadlock.
            batch = sorted(
                (f"calls:{kind.value}:{subject}:{bucket.window}", bucket, bucket.pending)
                for (subject, kind), bucket in self.buckets.items()
            )
            if not batch:
                return
            for _, bucket, taken in batch:
                bucket.pending -= taken
            try:
                totals = await self._add(batch)
            except Exception:
                for _, bucket, taken in batch:
                    bucket.pending += taken
                log.exception("rate_limit_reconcile_failed")
                return
            for row_key, bucket, _ in batch:
                bucket.shared = totals.get(row_key, bucket.shared)
        finally:
            self._reconciling = False

    async def _add(self, batch: list[tuple[str, _Bucket, int]]) -> dict[str, int]:
        table = RateLimitBucket.__table__  # type: ignore[attr-defined]
        rows = [
            {
                "key": row_key,
                "count": taken,
                "expires_at": datetime.fromtimestamp(bucket.window + CALL_WINDOW, tz=UTC),
            }
            for row_key, bucket, taken in batch
        ]
        async with self.db.transaction() as session:
            stmt = insert_for(session, table).values(rows)
            stmt = stmt.on_conflict_do_update(
                index_elements=["key"], set_={"count": table.c.count + stmt.excluded.count}
            ).returning(table.c.key, table.c.count)
            return {row_key: count for row_key, count in (await session.execute(stmt)).all()}
