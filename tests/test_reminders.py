"""Booking reminders: the job queues one reminder per booking and channel however many runs race, skips cancelled
bookings and customers the rules refuse, and a booking cancelled before its reminder left takes it along."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from favmcp.app import App
from favmcp.core.contact import Channel
from favmcp.domains.bookings.models import Booking, BookingStatus
from favmcp.domains.messaging import reminders
from favmcp.domains.messaging.models import ChannelConfig, Message, MessageStatus
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.registry.jobs import Scheduler
from tests.staff_kit import insert_booking, insert_service
from tests.support import FakeClock, Owner, call, confirmed
from tests.test_bookings import at, book, studio
from tests.test_messaging import TZ, add_channel, customer, messages, ok, outbox, template


async def reminder_channel(app: App, owner: Owner, hours_before: float = 24, **more: Any) -> dict[str, Any]:
    made = await template(
        app,
        owner,
        name="reminder",
        body="Hi {{first_name}}, {{service}} on {{date}} at {{time}}. {{business}}",
        variables=["first_name", "service", "date", "time", "business"],
    )
    await add_channel(app, owner, Channel.sms, reminders={"template_id": made["id"], "hours_before": hours_before})
    return made


async def run_job(app: App, owner: Owner) -> None:
    await app.runner.run_system(owner.workspace_id, "job:booking_reminders", reminders.send_reminders)


async def test_one_reminder_per_booking_however_many_runs(app: App, owner: Owner, clock: FakeClock) -> None:
    app, owner = app, owner
    await reminder_channel(app, owner, hours_before=24)
    service_id = await insert_service(app, owner.workspace_id, name="Deep tissue massage")
    sam, kim = await customer(app, owner), await customer(app, owner, name="Kim Ray")
    silent = await customer(app, owner, consent=(), name="No Consent")
    leaver = await customer(app, owner, name="Opted Out")
    consent = {"member_id": leaver["id"], "channel": "sms", "granted": False, "source": "STOP"}
    await ok(app, owner.key, "set_marketing_consent", consent)
    now = clock.now()

    async def booking(member: dict[str, Any], hours: float, status: BookingStatus = BookingStatus.confirmed) -> str:
        return await insert_booking(
            app, owner.workspace_id, member_id=member["id"], staff_user_id=owner.user_id, service_id=service_id,
            starts_at=now + timedelta(hours=hours), status=status,
        )  # fmt: skip

    soon = await booking(sam, 3)
    day_ahead = await booking(kim, 23.5)
    await booking(sam, 30)  # outside the 24 hours: not yet
    await booking(kim, 5, BookingStatus.cancelled)
    await booking(kim, 6, BookingStatus.pending)
    await booking(silent, 4)
    await booking(leaver, 8)
    await insert_booking(
        app,
        owner.workspace_id,
        member_id=sam["id"],
        staff_user_id=owner.user_id,
        service_id=service_id,
        starts_at=now - timedelta(hours=1),
    )  # fmt: skip  (started already)

    await asyncio.gather(*[run_job(app, owner) for _ in range(4)])
    await run_job(app, owner)
    sent = await messages(app, owner)
    assert sorted(m.booking_id or "" for m in sent) == sorted([soon, day_ahead]), "once each, whatever raced"
    assert {(m.dedupe_key or "").rsplit(":", 1)[0] for m in sent} == {
        f"reminder:{soon}:sms",
        f"reminder:{day_ahead}:sms",
    }
    assert len(await outbox(app, owner)) == 2
    first = next(m for m in sent if m.booking_id == soon)
    starts = (now + timedelta(hours=3)).astimezone(TZ)
    assert first.kind == "transactional" and first.status == MessageStatus.queued
    assert first.body.startswith("Hi Sam, Deep tissue massage on ") and f"at {starts:%H:%M}. Studio" in first.body
    assert first.variables["service"] == "Deep tissue massage" and first.member_id == sam["id"]

    clock.advance(hours=10)  # the 30-hour booking comes within the window
    await Scheduler(app.runner, [j for j in app.runner.platform.jobs if j.name == "booking_reminders"]).run_due()
    assert len(await messages(app, owner)) == 3, "the scheduled job picks up the next one"

    audit = (await call(app, owner.key, "list_audit_events", {"tool": "job:booking_reminders"})).data["items"]
    skips = [e["changes"]["reminders_skipped"] for e in audit if e["changes"].get("reminders_skipped")]
    assert any(s.get("no_consent") == 1 and s.get("opted_out") == 1 for s in skips), skips


async def test_a_channel_without_reminders_or_a_missing_template_sends_none(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    app, owner = app, owner
    await add_channel(app, owner, Channel.email)  # no reminders setting
    made = await reminder_channel(app, owner)
    sam = await customer(app, owner)
    service_id = await insert_service(app, owner.workspace_id)
    await insert_booking(
        app, owner.workspace_id, member_id=sam["id"], staff_user_id=owner.user_id, service_id=service_id,
        starts_at=clock.now() + timedelta(hours=2),
    )  # fmt: skip
    marketing = {"template_id": made["id"], "kind": "marketing"}
    assert (await call(app, owner.key, "update_message_template", marketing)).ok
    await run_job(app, owner)
    assert await messages(app, owner) == [], "a marketing template is no reminder"
    assert (await call(app, owner.key, "delete_message_template", {"template_id": made["id"]})).ok
    await run_job(app, owner)
    assert await messages(app, owner) == []
    audit = (await call(app, owner.key, "list_audit_events", {"tool": "job:booking_reminders"})).data["items"]
    skips = sorted(k for e in audit for k in e["changes"]["reminders_skipped"])
    assert skips == ["template_missing", "template_not_transactional"]
    assert (
        reminders.reminder_setting(ChannelConfig.model_construct(settings={"reminders": {"hours_before": 5}})) is None
    )


async def test_cancelling_a_booking_stops_its_queued_reminder(app: App, owner: Owner, clock: FakeClock) -> None:
    app, owner = app, owner
    await reminder_channel(app, owner, hours_before=48)
    service_id = await studio(app, owner)
    sam = await customer(app, owner)
    booked = await book(app, owner, sam["id"], service_id, at(clock, days=1, hour=11))
    await run_job(app, owner)
    [message] = await messages(app, owner)
    assert message.booking_id == booked["id"] and message.status == MessageStatus.queued

    cancelled = await confirmed(app, owner.key, "cancel_booking", {"booking_id": booked["id"], "waive_fee": True})
    assert cancelled.ok, cancelled.data
    [message] = await messages(app, owner)
    assert message.status == MessageStatus.cancelled
    [row] = await outbox(app, owner)
    assert row.status == OutboxStatus.failed and "cancelled" in (row.last_error or "")
    await run_job(app, owner)
    assert len(await messages(app, owner)) == 1, "a cancelled booking is never reminded again"


async def test_a_reminder_already_sent_stays_sent_when_the_booking_is_cancelled(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    app, owner = app, owner
    await reminder_channel(app, owner, hours_before=48)
    service_id = await studio(app, owner)
    sam = await customer(app, owner)
    booked = await book(app, owner, sam["id"], service_id, at(clock, days=1, hour=12))
    await run_job(app, owner)
    async with app.db.transaction() as session:  # the provider took it
        await session.execute(
            update(Message).where(col(Message.booking_id) == booked["id"]).values(status=MessageStatus.sent)
        )
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.workspace_id) == owner.workspace_id)
            .values(status=OutboxStatus.sent)
        )
    assert (await confirmed(app, owner.key, "cancel_booking", {"booking_id": booked["id"], "waive_fee": True})).ok
    [message] = await messages(app, owner)
    assert message.status == MessageStatus.sent
    async with app.db.transaction() as session:
        row = (await session.execute(select(Booking).where(col(Booking.id) == booked["id"]))).scalar_one()
    assert row.status == BookingStatus.cancelled


async def test_a_rescheduled_booking_is_reminded_of_its_new_time(app: App, owner: Owner, clock: FakeClock) -> None:
    app, owner = app, owner
    await reminder_channel(app, owner, hours_before=72)
    service_id = await studio(app, owner)
    sam = await customer(app, owner)
    booked = await book(app, owner, sam["id"], service_id, at(clock, days=1, hour=11))
    await run_job(app, owner)
    [first] = await messages(app, owner)
    assert "at 11:00" in first.body

    moved = await call(
        app, owner.key, "reschedule_booking", {"booking_id": booked["id"], "starts_at": at(clock, days=2, hour=15)}
    )
    assert moved.ok, moved.data
    [first] = await messages(app, owner)
    assert first.status == MessageStatus.cancelled, "the old time's reminder does not go"
    await run_job(app, owner)
    await run_job(app, owner)
    old, new = await messages(app, owner)
    assert (old.id, new.status) == (first.id, MessageStatus.queued) and "at 15:00" in new.body
    assert [r.status for r in await outbox(app, owner)] == [OutboxStatus.failed, OutboxStatus.pending]


async def test_bookings_reminded_already_do_not_fill_the_batch(
    app: App, owner: Owner, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, owner = app, owner
    monkeypatch.setattr(reminders, "BATCH", 1)
    await reminder_channel(app, owner)
    service_id = await insert_service(app, owner.workspace_id)
    sam = await customer(app, owner)
    for hours in (2, 4, 6):
        await insert_booking(
            app, owner.workspace_id, member_id=sam["id"], staff_user_id=owner.user_id, service_id=service_id,
            starts_at=clock.now() + timedelta(hours=hours),
        )  # fmt: skip
    clock.advance(seconds=1)
    for n in (1, 2, 3, 3):
        await run_job(app, owner)
        assert len(await messages(app, owner)) == n, "each run takes the next booking, not the one reminded"
