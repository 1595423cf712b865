"""Delivers the outbox: claims due rows with a lease, sends, marks them; retries with backoff.

Several dispatchers may run against one Postgres: a row is claimed with FOR UPDATE SKIP LOCKED and a
lease, so no two workers hold it at once. SQLite serialises writers, which gives the same guarantee.

Leases are short and renewed while the worker goes through its batch, so the messages of a worker that died
(kill -9, a lost machine) are taken over within LEASE; codes are only valid for minutes. Delivery is at least
once: a worker that dies between the SMTP send and marking the row sent leaves it to be sent again, with the
same Message-ID, by which receivers drop the copy.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import anyio
import structlog
from sqlalchemy import or_, select, update
from sqlmodel import col

from favmcp.core.clock import Clock, SystemClock
from favmcp.db.engine import Database
from favmcp.db.maintenance import purge_expired
from favmcp.effects.channels.email import EmailChannel
from favmcp.effects.models import OutboxMessage, OutboxStatus, Undeliverable
from favmcp.effects.outbox import open_body, open_html

log = structlog.get_logger("favmcp.outbox")

LEASE = timedelta(seconds=6)
RENEW_EVERY = timedelta(seconds=2)  # several renewals fit in one lease, so a slow database costs no lease
MAX_ATTEMPTS = 8
PURGE_EVERY = timedelta(minutes=10)


class Channel(Protocol):
    """A channel other than email (a provider's API): what it answers (ids, statuses) is kept on the row."""

    name: str

    async def send(self, message: OutboxMessage, body: str) -> dict[str, Any] | None: ...


@runtime_checkable
class Retrying(Protocol):
    """A channel with its own retry schedule (webhooks retry for days); others use `backoff` and MAX_ATTEMPTS."""

    def retry_in(self, attempts: int) -> timedelta | None:
        """The wait before the next attempt after `attempts` failed ones; None: give up."""


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s ... capped at one hour."""
    return timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))


def retry_wait(channel: Channel | None, attempts: int) -> timedelta | None:
    """How long a message waits after `attempts` failed attempts; None: it has failed for good."""
    if isinstance(channel, Retrying):
        return channel.retry_in(attempts)
    return backoff(attempts) if attempts < MAX_ATTEMPTS else None


class Dispatcher:
    def __init__(
        self,
        db: Database,
        email: EmailChannel,
        secret_keys: Sequence[bytes],
        *,
        clock: Clock | None = None,
        batch: int = 20,
        renew_every: timedelta = RENEW_EVERY,
        channels: Mapping[str, Channel] | None = None,
    ) -> None:
        self.db = db
        self.email = email
        self.channels = dict(channels or {})
        self.secret_keys = secret_keys
        self.clock = clock or SystemClock()
        self.batch = batch
        self.renew_every = renew_every
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    async def claim(self) -> list[OutboxMessage]:
        now = self.clock.now()
        async with self.db.transaction() as session:
            due = (
                select(col(OutboxMessage.id))
                .where(
                    col(OutboxMessage.status) == OutboxStatus.pending,
                    col(OutboxMessage.next_attempt_at) <= now,
                    or_(col(OutboxMessage.locked_until).is_(None), col(OutboxMessage.locked_until) < now),
                )
                # Oldest first, also among messages due at once: a dead worker's messages, free again once its
                # lease is over, come before newer ones rather than wait behind the whole backlog.
                .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            )
            ids = list((await session.execute(due)).scalars())
            if not ids:
                return []
            await session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(ids))
                .values(locked_until=now + LEASE, locked_by=self.worker_id)
            )
            rows = (await session.execute(select(OutboxMessage).where(col(OutboxMessage.id).in_(ids)))).scalars()
            return list(rows)

    async def still_mine(self, message: OutboxMessage) -> bool:
        """Renew this worker's lease just before sending; a lease that ran out may belong to another worker now."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            renewed = await session.execute(
                update(OutboxMessage)
                .where(
                    col(OutboxMessage.id) == message.id,
                    col(OutboxMessage.locked_by) == self.worker_id,
                    col(OutboxMessage.locked_until) > now,
                    col(OutboxMessage.status) == OutboxStatus.pending,
                )
                .values(locked_until=now + LEASE)
                .returning(col(OutboxMessage.id))
            )
            return renewed.first() is not None

    async def renew_leases(self) -> int:
        """Extend every lease this worker still holds; returns how many."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            renewed = await session.execute(
                update(OutboxMessage)
                .where(
                    col(OutboxMessage.locked_by) == self.worker_id,
                    col(OutboxMessage.locked_until) > now,
                    col(OutboxMessage.status) == OutboxStatus.pending,
                )
                .values(locked_until=now + LEASE)
                .returning(col(OutboxMessage.id))
            )
            return len(renewed.all())

    async def _renew_until(self, done: anyio.Event) -> None:
        while True:
            with anyio.move_on_after(self.renew_every.total_seconds()):
                await done.wait()
            if done.is_set():
                return
            try:
                await self.renew_leases()
            except Exception:  # the next beat tries again; a lease that lapses meanwhile is caught by still_mine
                log.exception("outbox_lease_renewal_failed")

    async def deliver(self, message: OutboxMessage) -> None:
        if not await self.still_mine(message):
            log.info("outbox_lease_lost", message_id=message.id)
            return
        error: str | None = None
        refused = False
        answer: dict[str, Any] | None = None
        channel = self.channels.get(message.channel)
        try:
            if channel is None:
                await self.email.send(
                    message, open_body(self.secret_keys, message), open_html(self.secret_keys, message)
                )
            else:
                answer = await channel.send(message, open_body(self.secret_keys, message))
        except Undeliverable as exc:  # refused for good: failed now, no retries
            error, refused = str(exc)[:500], True
        except Exception as exc:  # a provider failure (or a body no secret opens) is data: recorded and retried
            error = f"{type(exc).__name__}: {exc}"[:500]
        now = self.clock.now()
        values: dict[str, object] = {"attempts": OutboxMessage.attempts + 1, "locked_until": None, "locked_by": None}
        if error is None:
            via = self.email.name if channel is None else channel.name
            values.update(status=OutboxStatus.sent, sent_at=now, delivered_via=via, last_error=None)
            if answer is not None:
                values.update(payload={**message.payload, "result": answer})
        else:
            wait = retry_wait(channel, message.attempts + 1)
            final = refused or wait is None
            values.update(
                status=OutboxStatus.failed if final else OutboxStatus.pending,
                next_attempt_at=now + (wait or timedelta(0)),
                last_error=error,
            )
            log.warning("outbox_delivery_failed", message_id=message.id, attempts=message.attempts + 1, final=final)
        async with self.db.transaction() as session:
            await session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == message.id, col(OutboxMessage.locked_by) == self.worker_id)
                .values(**values)
            )

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many messages were attempted."""
        messages = await self.claim()
        if not messages:
            return 0
        done = anyio.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._renew_until, done)
            try:
                for message in messages:
                    await self.deliver(message)
            finally:
                done.set()
        return len(messages)

    async def run_forever(self, idle: float = 0.5) -> None:
        """Deliver as messages come due; every PURGE_EVERY also purge expired rate limits, keys and codes."""
        purged_at: datetime | None = None
        while True:
            try:
                done = await self.run_once()
                now = self.clock.now()
                if purged_at is None or now - purged_at >= PURGE_EVERY:
                    purged_at = now
                    log.info("purged_expired", **await purge_expired(self.db, now))
            except Exception:
                log.exception("outbox_dispatch_error")
                done = 0
            if not done:
                await anyio.sleep(idle)
