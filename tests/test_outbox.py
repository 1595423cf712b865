"""The outbox: written with the change, delivered by workers over real SMTP, retried with backoff, sent once.

Dispatcher tests run on a database of their own (a fresh file on SQLite, a fresh database on the Postgres
server), because a dispatcher takes every due row: rows left pending by other tests would blur the counts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from favmcp.app import App
from favmcp.auth.models import OneTimeCode
from favmcp.db.engine import Database
from favmcp.effects.channels.email import LocalChannel, SmtpChannel
from favmcp.effects.dispatcher import LEASE, MAX_ATTEMPTS, Dispatcher
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.effects.outbox import open_body, queue_email
from tests.smtp_server import SmtpServer, closed_port, running_smtp_server
from tests.support import FakeClock, error_code, make_settings, unique_address, unique_email

SENDER = "favmcp <no-reply@favmcp.test>"
CODE = re.compile(r"\b(\d{6})\b")


# -- fixtures and helpers ----------------------------------------------------------------------------------


@pytest.fixture
async def worker_app(own_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    application = await App.open(make_settings(tmp_path, own_url), clock=clock, upgrade=True)
    yield application
    await application.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server


async def request_code(app: App, email: str, **extra: Any) -> dict[str, Any]:
    result = await app.runner.call(
        "register_organisation_request",
        {"email": email, "organisation_name": "Studio", "owner_name": "Ann Owner", **extra},
        credential=None,
        client_address=unique_address(),
    )
    assert result.ok, result.data
    return result.data


async def outbox_rows(db: Database, *, recipient: str | None = None) -> list[OutboxMessage]:
    async with db.transaction() as session:
        stmt = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if recipient is not None:
            stmt = stmt.where(col(OutboxMessage.recipient) == recipient)
        return list((await session.execute(stmt)).scalars())


async def outbox_count(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one())


async def only_row(db: Database, recipient: str) -> OutboxMessage:
    rows = await outbox_rows(db, recipient=recipient)
    assert len(rows) == 1, rows
    return rows[0]


async def queue_reminders(app: App, clock: FakeClock, count: int) -> list[OutboxMessage]:
    async with app.db.transaction() as session:
        return [
            queue_email(
                session,
                app.settings,
                to=f"member{i}@example.com",
                subject=f"Reminder {i}",
                body=f"See you at class {i}.",
                workspace_id=None,
                now=clock.now(),
            )
            for i in range(count)
        ]


def smtp_dispatcher(app: App, port: int, clock: FakeClock, *, db: Database | None = None, **kwargs: Any) -> Dispatcher:
    channel = SmtpChannel("127.0.0.1", port, SENDER, timeout=10)
    return Dispatcher(db or app.db, channel, app.settings.secret_keys, clock=clock, **kwargs)


# -- written in the same transaction as the change ---------------------------------------------------------


async def test_a_signup_request_writes_exactly_one_outbox_row(app: App, clock: FakeClock) -> None:
    email = unique_email()
    before = await outbox_count(app.db)
    first = await request_code(app, email, idempotency_key="signup-1")
    row = await only_row(app.db, email)
    assert await outbox_count(app.db) == before + 1
    assert (row.channel, row.status, row.attempts, row.workspace_id) == ("email", OutboxStatus.pending, 0, None)
    assert row.subject == "Your favmcp signup code" and CODE.search(open_body(app.settings, row))
    assert row.next_attempt_at == clock.now() and row.locked_until is None and row.sent_at is None
    async with app.db.transaction() as session:
        code_row = await session.get(OneTimeCode, first["request_id"])
    assert code_row is not None and code_row.created_at == row.created_at  # one unit of work, one `now`

    replay = await request_code(app, email, idempotency_key="signup-1")
    assert replay["request_id"] == first["request_id"]
    assert len(await outbox_rows(app.db, recipient=email)) == 1, "a replayed request must not queue again"


async def test_concurrent_retries_of_one_request_queue_one_email(app: App) -> None:
    email = unique_email()
    racing = await asyncio.gather(
        *[
            app.runner.call(
                "register_organisation_request",
                {"email": email, "organisation_name": "Studio", "owner_name": "Ann Owner", "idempotency_key": "race"},
                credential=None,
                client_address=unique_address(),
            )
            for _ in range(8)
        ]
    )
    assert [r.data.get("error", {}).get("code") for r in racing if not r.ok] == []
    assert len({r.data["request_id"] for r in racing}) == 1
    assert len(await outbox_rows(app.db, recipient=email)) == 1, "concurrent retries of one request queue once"


async def test_refused_requests_write_no_outbox_row(app: App, clock: FakeClock) -> None:
    before = await outbox_count(app.db)
    args = {"organisation_name": "Studio", "owner_name": "Ann Owner"}
    for bad in ({"email": "not-an-email"}, {"email": unique_email(), "timezone": "Mars/Olympus"}):
        refused = await app.runner.call(
            "register_organisation_request", {**args, **bad}, credential=None, client_address=unique_address()
        )
        assert error_code(refused) == "validation_failed"
    assert await outbox_count(app.db) == before

    email, address = unique_email(), unique_address()

    async def ask(to: str) -> str | None:
        result = await app.runner.call(
            "register_organisation_request", {**args, "email": to}, credential=None, client_address=address
        )
        return error_code(result)

    assert [await ask(email) for _ in range(4)] == [None, None, None, "rate_limited"]
    assert len(await outbox_rows(app.db, recipient=email)) == 3
    other = unique_email()
    assert await ask(other) == "rate_limited", "the client address is limited too"
    assert await outbox_rows(app.db, recipient=other) == []
    assert await outbox_count(app.db) == before + 3

    clock.advance(hours=1)
    assert await ask(other) is None
    assert len(await outbox_rows(app.db, recipient=other)) == 1


# -- delivery over SMTP ------------------------------------------------------------------------------------


async def test_smtp_delivers_the_code_email_and_marks_it_sent(
    worker_app: App, smtp: SmtpServer, clock: FakeClock
) -> None:
    email = unique_email()
    requested = await request_code(worker_app, email)
    row = await only_row(worker_app.db, email)
    dispatcher = smtp_dispatcher(worker_app, smtp.port, clock)

    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0
    [received] = smtp.messages
    assert received.rcpt_tos == [email] and received.mail_from == "no-reply@favmcp.test"
    assert received.message["To"] == email and received.message["From"] == SENDER
    assert received.message["Subject"] == "Your favmcp signup code"
    assert received.message["Message-ID"] == f"<{row.id}@favmcp>"
    found = CODE.search(received.body)
    assert found and "valid for 10 minutes" in received.body

    sent = await only_row(worker_app.db, email)
    assert (sent.status, sent.delivered_via, sent.attempts) == (OutboxStatus.sent, "smtp", 1)
    assert sent.sent_at == clock.now() and sent.last_error is None
    assert sent.locked_by is None and sent.locked_until is None

    # The code that arrived by mail is the one that works.
    verified = await worker_app.runner.call(
        "register_organisation_verify", {"request_id": requested["request_id"], "code": found.group(1)}, credential=None
    )
    assert verified.ok, verified.data


async def test_smtp_down_retries_with_backoff_then_gives_up(worker_app: App, clock: FakeClock) -> None:
    email = unique_email()
    await request_code(worker_app, email)
    with closed_port() as port:
        dispatcher = smtp_dispatcher(worker_app, port, clock)
        expected_waits = [10, 20, 40, 80, 160, 320, 640]
        assert len(expected_waits) == MAX_ATTEMPTS - 1
        for attempt, wait in enumerate(expected_waits, start=1):
            tried_at = clock.now()
            assert await dispatcher.run_once() == 1
            row = await only_row(worker_app.db, email)
            assert (row.status, row.attempts) == (OutboxStatus.pending, attempt)
            assert row.last_error and "ConnectionRefused" in row.last_error
            assert row.next_attempt_at == tried_at + timedelta(seconds=wait)
            assert row.locked_by is None and row.sent_at is None and row.delivered_via is None
            assert await dispatcher.run_once() == 0, "not retried before its time"
            clock.advance(seconds=wait - 1)
            assert await dispatcher.run_once() == 0, "not retried before its time"
            clock.advance(seconds=1)

        assert await dispatcher.run_once() == 1
        row = await only_row(worker_app.db, email)
        assert (row.status, row.attempts) == (OutboxStatus.failed, MAX_ATTEMPTS)
        assert row.last_error and row.sent_at is None
        clock.advance(days=2)
        assert await dispatcher.run_once() == 0, "a failed message is never retried"


async def test_a_retry_succeeds_once_the_server_is_back(worker_app: App, smtp: SmtpServer, clock: FakeClock) -> None:
    email = unique_email()
    await request_code(worker_app, email)
    with closed_port() as port:
        assert await smtp_dispatcher(worker_app, port, clock).run_once() == 1
    assert (await only_row(worker_app.db, email)).attempts == 1

    working = smtp_dispatcher(worker_app, smtp.port, clock)
    assert await working.run_once() == 0 and smtp.messages == []
    clock.advance(seconds=10)
    assert await working.run_once() == 1
    row = await only_row(worker_app.db, email)
    assert (row.status, row.attempts, row.delivered_via, row.last_error) == (OutboxStatus.sent, 2, "smtp", None)
    assert [m.rcpt_tos for m in smtp.messages] == [[email]]


async def test_concurrent_workers_send_every_message_exactly_once(
    worker_app: App, own_url: str, smtp: SmtpServer, clock: FakeClock
) -> None:
    messages = await queue_reminders(worker_app, clock, 60)
    expected = {f"<{m.id}@favmcp>" for m in messages}

    databases = [Database(own_url) for _ in range(4)]  # four workers, four engines
    workers = [smtp_dispatcher(worker_app, smtp.port, clock, db=db, batch=5) for db in databases]

    async def drain(worker: Dispatcher) -> int:
        attempted = 0
        while done := await worker.run_once():
            attempted += done
        return attempted

    try:
        per_worker = await asyncio.wait_for(asyncio.gather(*[drain(w) for w in workers]), timeout=120)
    finally:
        for db in databases:
            await db.dispose()

    assert sum(per_worker) == 60, f"each message is attempted once in all: {per_worker}"
    assert sum(1 for n in per_worker if n) >= 2, f"the workers should share the work: {per_worker}"
    received = smtp.by_message_id()
    assert set(received) == expected
    assert {mid: len(copies) for mid, copies in received.items() if len(copies) != 1} == {}
    rows = await outbox_rows(worker_app.db)
    assert len(rows) == 60
    assert {(r.status, r.attempts, r.delivered_via) for r in rows} == {(OutboxStatus.sent, 1, "smtp")}
    assert all(r.locked_by is None for r in rows)


async def test_a_stalled_worker_does_not_resend_what_another_worker_took_over(
    worker_app: App, smtp: SmtpServer, clock: FakeClock
) -> None:
    emails = [unique_email() for _ in range(3)]
    for email in emails:
        await request_code(worker_app, email)
    stalled = smtp_dispatcher(worker_app, smtp.port, clock)
    claimed = await stalled.claim()
    assert len(claimed) == 3
    clock.advance(seconds=LEASE.total_seconds() + 1)  # e.g. a slow SMTP server: 20 messages x 20 s timeout
    other = smtp_dispatcher(worker_app, smtp.port, clock)
    assert await other.run_once() == 3
    for message in claimed:  # the stalled worker wakes up and carries on with its batch
        await stalled.deliver(message)
    copies = {mid: len(found) for mid, found in smtp.by_message_id().items()}
    assert copies == {f"<{m.id}@favmcp>": 1 for m in claimed}


# -- a worker that dies or stalls --------------------------------------------------------------------------


async def test_a_vanished_workers_messages_are_taken_over_within_the_lease(
    worker_app: App, smtp: SmtpServer, clock: FakeClock
) -> None:
    assert timedelta(0) < LEASE <= timedelta(seconds=10), "codes live 10 minutes: a dead worker may hold mail seconds"
    messages = await queue_reminders(worker_app, clock, 3)
    vanished = smtp_dispatcher(worker_app, smtp.port, clock)
    claimed = await vanished.claim()
    assert {m.id for m in claimed} == {m.id for m in messages}
    # It sends the first one, then is killed -9 before marking it sent: it never renews or releases its leases.
    await vanished.email.send(claimed[0], open_body(worker_app.settings, claimed[0]))

    other = smtp_dispatcher(worker_app, smtp.port, clock)
    clock.advance(seconds=LEASE.total_seconds() - 1)
    assert await other.run_once() == 0, "a live lease is respected"
    clock.advance(seconds=2)
    assert await other.run_once() == 3, "taken over once the lease is over"
    rows = await outbox_rows(worker_app.db)
    assert {(r.status, r.attempts, r.locked_by) for r in rows} == {(OutboxStatus.sent, 1, None)}
    # At least once: the copy sent before the crash and the one sent after carry one Message-ID to dedupe by.
    copies = {mid: len(found) for mid, found in smtp.by_message_id().items()}
    assert copies == {f"<{m.id}@favmcp>": 2 if m.id == claimed[0].id else 1 for m in messages}


class HeldChannel:
    """A slow provider: SMTP that holds every message until the test lets them go."""

    name = "smtp"

    def __init__(self, port: int) -> None:
        self.smtp = SmtpChannel("127.0.0.1", port, SENDER, timeout=10)
        self.sending = anyio.Event()
        self.release = anyio.Event()

    async def send(self, message: OutboxMessage, body: str, html: str | None = None) -> None:
        self.sending.set()
        await self.release.wait()
        await self.smtp.send(message, body, html)


async def test_a_live_worker_keeps_its_leases_while_it_sends_for_longer_than_one(
    worker_app: App, smtp: SmtpServer, clock: FakeClock
) -> None:
    messages = await queue_reminders(worker_app, clock, 3)
    held = HeldChannel(smtp.port)
    slow = Dispatcher(
        worker_app.db, held, worker_app.settings.secret_keys, clock=clock, renew_every=timedelta(seconds=0.05)
    )
    other = smtp_dispatcher(worker_app, smtp.port, clock)

    async def renewed() -> None:
        """Until the slow worker's renewals have caught up with the clock."""
        with anyio.fail_after(10):
            # Polled: the leases change in the slow worker's own transactions, not through anything we could await.
            while {r.locked_until for r in await outbox_rows(worker_app.db)} != {clock.now() + LEASE}:  # noqa: ASYNC110
                await anyio.sleep(0.02)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(slow.run_once)
        await held.sending.wait()
        for _ in range(3):  # three times most of a lease: well past the first one
            clock.advance(seconds=LEASE.total_seconds() - 1)
            await renewed()
            assert await other.run_once() == 0, "the slow worker is alive: its messages are its own"
        held.release.set()
    copies = {mid: len(found) for mid, found in smtp.by_message_id().items()}
    assert copies == {f"<{m.id}@favmcp>": 1 for m in messages}
    rows = await outbox_rows(worker_app.db)
    assert {(r.status, r.attempts, r.locked_by) for r in rows} == {(OutboxStatus.sent, 1, None)}


# -- the local channel ---------------------------------------------------------------------------------------


async def test_local_channel_records_without_sending_and_smtp_url_selects_smtp(
    worker_app: App, own_url: str, smtp: SmtpServer, clock: FakeClock, tmp_path: Path
) -> None:
    assert isinstance(worker_app.dispatcher.email, LocalChannel)  # no FAVMCP_SMTP_URL
    email = unique_email()
    await request_code(worker_app, email)
    assert await worker_app.dispatcher.run_once() == 1
    row = await only_row(worker_app.db, email)
    assert (row.status, row.delivered_via, row.attempts) == (OutboxStatus.sent, "local", 1)
    assert row.sent_at == clock.now() and "valid for 10 minutes" in open_body(worker_app.settings, row)
    assert smtp.messages == []

    settings = make_settings(tmp_path, own_url, smtp_url=f"smtp://127.0.0.1:{smtp.port}")
    with_smtp = await App.open(settings, clock=clock)
    try:
        other = unique_email()
        await request_code(with_smtp, other)
        assert await with_smtp.dispatcher.run_once() == 1
    finally:
        await with_smtp.close()
    assert [m.rcpt_tos for m in smtp.messages] == [[other]]
    assert (await only_row(worker_app.db, other)).delivered_via == "smtp"
