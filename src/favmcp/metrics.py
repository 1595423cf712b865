"""Prometheus metrics: per tool, calls, errors by code and latency (observed by the runner where it logs each call);
the outbox's depth and the age of its oldest pending row, and failed webhook deliveries (read at scrape time)."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import and_, func, or_, select
from sqlmodel import col

from favmcp.core.clock import utc
from favmcp.db.engine import Database
from favmcp.effects.models import OutboxMessage, OutboxStatus

# Tool calls run from about a millisecond (a read) to seconds (a send through a provider).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# One query, on the status index: pending rows (depth and oldest) and webhook deliveries that failed for good.
_OUTBOX = (
    select(col(OutboxMessage.status), func.count(), func.min(col(OutboxMessage.created_at)))
    .where(
        or_(
            col(OutboxMessage.status) == OutboxStatus.pending,
            and_(col(OutboxMessage.status) == OutboxStatus.failed, col(OutboxMessage.channel) == "webhook"),
        )
    )
    .group_by(col(OutboxMessage.status))
)


class Metrics:
    """One process's metrics, in a registry of its own (so two apps in one process do not share counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter("favmcp_tool_calls", "Tool calls, by tool.", ["tool"], registry=self.registry)
        self.errors = Counter(
            "favmcp_tool_errors", "Tool calls that answered an error, by tool and code.", ["tool", "code"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "favmcp_tool_call_seconds", "Time to answer a tool call, by tool.", ["tool"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.outbox_pending = Gauge(
            "favmcp_outbox_pending", "Outbox messages waiting to be delivered.", registry=self.registry
        )
        self.outbox_oldest = Gauge(
            "favmcp_outbox_oldest_pending_seconds",
            "Age of the oldest pending outbox message (0 when none is pending).",
            registry=self.registry,
        )
        self.webhook_failures = Gauge(
            "favmcp_webhook_deliveries_failed",
            "Webhook deliveries that failed for good (every retry spent), as stored in the outbox.",
            registry=self.registry,
        )
        self._per_tool: dict[str, tuple[Counter, Histogram]] = {}

    def observe(self, tool: str, outcome: str, seconds: float) -> None:
        """One finished call; `outcome` is "ok" or the error's code. The labelled children are kept per tool, so a
        call costs two increments and no label lookup."""
        children = self._per_tool.get(tool)
        if children is None:
            children = self._per_tool[tool] = (self.calls.labels(tool), self.latency.labels(tool))
        calls, latency = children
        calls.inc()
        latency.observe(seconds)
        if outcome != "ok":
            self.errors.labels(tool, outcome).inc()

    async def scrape(self, db: Database, now: datetime) -> bytes:
        """The text exposition, with the outbox gauges read now."""
        async with db.reader.connect() as conn:
            rows = (await conn.execute(_OUTBOX)).all()
        found = {status: (count, oldest) for status, count, oldest in rows}
        pending, oldest = found.get(OutboxStatus.pending, (0, None))
        self.outbox_pending.set(pending)
        self.outbox_oldest.set(max(0.0, (now - utc(oldest)).total_seconds()) if oldest is not None else 0)
        self.webhook_failures.set(found.get(OutboxStatus.failed, (0, None))[0])
        return generate_latest(self.registry)
