"""How bookings end (cancel_booking, check_in_booking, complete_booking, mark_no_show): the cancellation window,
late-cancel and no-show fees as draft invoice lines charged once, class-pack credits released or used once, class
seats freed, and the contract the classes domain cancels a session's bookings with; on SQLite and Postgres.

Bookings are made as rows by the system (the booking tools' own rules are tested with them), so that these tests
set the exact times, states and payments the rules turn on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import uuid4
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from favmcp.app import App
from favmcp.core.ids import new_id
from favmcp.domains.bookings import outcomes
from favmcp.domains.bookings.models import Booking, BookingPayment, BookingSettings, BookingStatus
from favmcp.domains.classes import seats
from favmcp.domains.classes.models import ClassSession, WaitlistEntry
from favmcp.domains.members.models import Member, MemberEvent
from favmcp.domains.services.models import Service
from favmcp.domains.subscriptions import credits
from favmcp.domains.subscriptions.models import CreditEntry
from favmcp.registry.context import ToolContext
from favmcp.registry.models import EventRecord
from tests.support import FakeClock, Owner, call, confirmed, error_code, join, unique_email

T = TypeVar("T")

FEE = 1500
NO_SHOW_FEE = 2500


# -- helpers (the races use them too) --------------------------------------------------------------------------------


async def ok(app: App, key: str, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


async def as_system(app: App, owner: Owner, work: Callable[[ToolContext], Awaitable[T]]) -> T:
    return await app.runner.run_system(owner.workspace_id, "test", work)


async def new_member(app: App, owner: Owner) -> str:
    return str((await ok(app, owner.key, "create_member", {"name": "Sam Lee", "email": unique_email("sam")}))["id"])


async def set_rules(app: App, owner: Owner, **values: Any) -> None:
    """The workspace's booking rules (fees, window), as a row."""

    async def work(ctx: ToolContext) -> None:
        found = await ctx.db.first(ctx.db.select(BookingSettings))
        if found is None:
            ctx.db.add(BookingSettings(workspace_id=ctx.workspace_id, updated_at=ctx.now, **values))
        else:
            for name, value in values.items():
                setattr(found, name, value)
        await ctx.db.flush()

    await as_system(app, owner, work)


async def new_service(app: App, owner: Owner, *, name: str = "Massage", capacity: int = 1) -> str:
    async def work(ctx: ToolContext) -> str:
        service = ctx.db.add(
            Service(
                id=new_id("svc"),
                workspace_id=ctx.workspace_id,
                name=name,
                duration_minutes=60,
                unit_amount=6000,
                currency="EUR",
                capacity=capacity,
                created_at=ctx.now,
                updated_at=ctx.now,
            )
        )
        await ctx.db.flush()
        return service.id

    return await as_system(app, owner, work)


async def new_session(app: App, owner: Owner, service_id: str, starts_at: datetime, capacity: int = 5) -> str:
    async def work(ctx: ToolContext) -> str:
        session = ctx.db.add(
            ClassSession(
                id=new_id("cls"),
                workspace_id=ctx.workspace_id,
                service_id=service_id,
                staff_user_id=owner.user_id,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(hours=1),
                blocked_from=starts_at,
                blocked_until=starts_at + timedelta(hours=1),
                capacity=capacity,
                created_at=ctx.now,
            )
        )
        await ctx.db.flush()
        return session.id

    return await as_system(app, owner, work)


async def book(
    app: App,
    owner: Owner,
    member_id: str,
    service_id: str,
    starts_at: datetime,
    *,
    status: BookingStatus = BookingStatus.confirmed,
    staff_user_id: str | None = None,
    session_id: str | None = None,
    credit: bool = False,
) -> str:
    """A booking as create_booking leaves it: a class seat taken, a credit reserved when paid with one."""

    async def work(ctx: ToolContext) -> str:
        booking_id = new_id("bkg")
        reservation = None
        if credit:
            reservation = await credits.reserve_credit(ctx, member_id, booking_id)
            assert reservation is not None, "no credit to book with"
        if session_id is not None:
            assert await seats.take_seat(ctx, session_id)
        ends_at = starts_at + timedelta(hours=1)
        ctx.db.add(
            Booking(
                id=booking_id,
                workspace_id=ctx.workspace_id,
                member_id=member_id,
                service_id=service_id,
                staff_user_id=staff_user_id or owner.user_id,
                class_session_id=session_id,
                status=status,
                starts_at=starts_at,
                ends_at=ends_at,
                blocked_from=starts_at,
                blocked_until=ends_at,
                unit_amount=6000,
                currency="EUR",
                payment=BookingPayment.credit if credit else BookingPayment.none,
                credit_reservation_id=reservation,
                created_at=ctx.now,
                updated_at=ctx.now,
                confirmed_at=ctx.now if status != BookingStatus.pending else None,
            )
        )
        await ctx.db.flush()
        return booking_id

    return await as_system(app, owner, work)


async def paid_pack(app: App, owner: Owner, member_id: str, credits_: int = 10) -> str:
    """A class pack of `credits_`, paid: its subscription id."""
    args = {"kind": "pack", "name": "Ten classes", "unit_amount": 12000, "credits": credits_, "validity_days": 90}
    plan = await ok(app, owner.key, "create_plan", args)
    sub = await ok(app, owner.key, "subscribe_member", {"member_id": member_id, "plan_id": plan["id"]})
    invoice = await ok(app, owner.key, "get_invoice", {"invoice_id": sub["latest_invoice_id"]})
    await ok(
        app, owner.key, "record_payment",
        {"invoice_id": invoice["id"], "amount": invoice["amount_remaining"], "method": "cash",
         "idempotency_key": f"pay-{uuid4().hex}"},
    )  # fmt: skip
    return str(sub["id"])


async def credits_left(app: App, owner: Owner, sub_id: str) -> int:
    return int((await ok(app, owner.key, "get_subscription", {"subscription_id": sub_id}))["credits_left"])


async def credit_entries(app: App, booking_id: str) -> list[str]:
    async with app.db.transaction() as session:
        rows = (await session.execute(select(CreditEntry).where(col(CreditEntry.booking_ref) == booking_id))).scalars()
        return sorted(e.kind.value for e in rows)


async def booking_row(app: App, booking_id: str) -> Booking:
    async with app.db.transaction() as session:
        found = await session.get(Booking, booking_id)
        assert found is not None
        return found


async def drafts_of(app: App, key: str, member_id: str) -> list[dict[str, Any]]:
    page = await ok(app, key, "list_invoices", {"member_id": member_id, "status": "draft"})
    return [await ok(app, key, "get_invoice", {"invoice_id": i["id"]}) for i in page["items"]]


async def events(app: App, name: str, booking_id: str) -> list[dict[str, Any]]:
    async with app.db.transaction() as session:
        rows = (await session.execute(select(EventRecord).where(col(EventRecord.name) == name))).scalars()
        return [e.payload for e in rows if e.payload.get("booking_id") == booking_id]


async def timeline(app: App, member_id: str) -> list[str]:
    async with app.db.transaction() as session:
        rows = (await session.execute(select(MemberEvent).where(col(MemberEvent.member_id) == member_id))).scalars()
        return [e.kind for e in rows if e.kind.startswith("booking_")]


async def preview(app: App, key: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    first = await call(app, key, tool, args)
    assert error_code(first) == "confirmation_required", first.data
    return dict(first.data["error"]["details"]["preview"])


async def cancel(app: App, key: str, booking_id: str, **more: Any) -> dict[str, Any]:
    done = await confirmed(app, key, "cancel_booking", {"booking_id": booking_id, **more})
    assert done.ok, done.data
    return done.data


def local(moment: datetime) -> str:
    return f"{moment.astimezone(ZoneInfo('Europe/Amsterdam')):%Y-%m-%d %H:%M}"


async def setup(app: App, owner: Owner, **rules: Any) -> tuple[str, str]:
    await set_rules(app, owner, late_cancel_fee=FEE, no_show_fee=NO_SHOW_FEE, **rules)
    return await new_member(app, owner), await new_service(app, owner)


# -- cancel ----------------------------------------------------------------------------------------------------------


async def test_an_early_cancel_is_free(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    booking = await book(app, owner, member, service, clock.now() + timedelta(days=2))
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": booking})
    assert shown["late"] is False and shown["fee_amount"] is None and shown["currency"] is None
    assert shown["credit"] is None and shown["waitlist_promotion"] is False and shown["status"] == "confirmed"
    done = await cancel(app, owner.key, booking, reason="Ill")
    assert done["status"] == "cancelled" and done["fee_amount"] is None and done["late_cancel"] is False
    assert done["message"] == "Cancelled without a fee."
    row = await booking_row(app, booking)
    assert row.cancel_reason == "Ill" and row.cancelled_at is not None
    assert await drafts_of(app, owner.key, member) == []
    [event] = await events(app, "booking.cancelled", booking)
    assert (event["late"], event["fee"], event["currency"]) == (False, 0, "EUR")
    assert await timeline(app, member) == ["booking_cancelled"]


async def test_a_late_cancel_charges_the_fee_once_on_a_new_draft(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner, fee_tax_rate="21")
    starts = clock.now() + timedelta(hours=3)
    booking = await book(app, owner, member, service, starts)
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": booking})
    assert shown["late"] is True and (shown["fee_amount"], shown["currency"]) == (FEE, "EUR")
    assert "15.00" in shown["summary"]
    args = {"booking_id": booking, "idempotency_key": "cancel-once"}
    done = await cancel(app, owner.key, **args)
    assert done["status"] == "cancelled" and done["late_cancel"] is True and done["fee_amount"] == FEE
    [draft] = await drafts_of(app, owner.key, member)
    assert done["fee_invoice_id"] == draft["id"]
    [line] = draft["lines"]
    assert line["description"] == f"Late cancellation: Massage {local(starts)}"
    assert (line["unit_amount"], line["tax_rate"], line["service_id"]) == (FEE, "21", service)
    # Retried with the key, cancelled again without: the same answer, never a second fee.
    again = await call(app, owner.key, "cancel_booking", args)
    assert again.ok and again.data == done, "the key replays the first answer"
    repeat = await call(app, owner.key, "cancel_booking", {"booking_id": booking})
    assert repeat.ok, "already cancelled: nothing to confirm"
    assert repeat.data["fee_amount"] == FEE and "already cancelled" in repeat.data["message"]
    [draft] = await drafts_of(app, owner.key, member)
    assert len(draft["lines"]) == 1
    assert len(await events(app, "booking.cancelled", booking)) == 1
    [event] = await events(app, "booking.cancelled", booking)
    assert (event["late"], event["fee"]) == (True, FEE)


async def test_the_fee_goes_on_the_customers_existing_draft(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    lines = [{"description": "Oil", "unit_amount": 800}]
    existing = await ok(app, owner.key, "create_invoice", {"member_id": member, "lines": lines})
    booking = await book(app, owner, member, service, clock.now() + timedelta(hours=1))
    done = await cancel(app, owner.key, booking)
    assert done["fee_invoice_id"] == existing["id"]
    [draft] = await drafts_of(app, owner.key, member)
    assert [(x["description"][:17], x["unit_amount"]) for x in draft["lines"]] == [
        ("Oil", 800),
        ("Late cancellation", FEE),
    ]


async def test_exactly_at_the_window_edge_is_late(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner, cancellation_window_hours=24)
    edge = clock.now() + timedelta(hours=24)  # now is exactly start - window for a booking starting here
    outside = await book(app, owner, member, service, edge + timedelta(seconds=1))
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": outside})
    assert shown["late"] is False and shown["fee_amount"] is None
    assert (await cancel(app, owner.key, outside))["fee_amount"] is None
    on_edge = await book(app, owner, member, service, edge)
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": on_edge})
    assert shown["late"] is True and shown["fee_amount"] == FEE
    assert (await cancel(app, owner.key, on_edge))["fee_amount"] == FEE


async def test_a_pending_booking_is_never_charged(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    booking = await book(app, owner, member, service, clock.now() + timedelta(hours=1), status=BookingStatus.pending)
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": booking})
    assert shown["late"] is True and shown["fee_amount"] is None
    done = await cancel(app, owner.key, booking)
    assert done["status"] == "cancelled" and done["fee_amount"] is None
    assert await drafts_of(app, owner.key, member) == []


async def test_a_waived_fee_is_not_charged_and_the_audit_says_so(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    booking = await book(app, owner, member, service, clock.now() + timedelta(hours=1))
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": booking, "waive_fee": True})
    assert shown["late"] is True and shown["fee_amount"] is None
    done = await cancel(app, owner.key, booking, waive_fee=True)
    assert done["late_cancel"] is True and done["fee_amount"] is None
    assert await drafts_of(app, owner.key, member) == []
    audit = await ok(app, owner.key, "list_audit_events", {"tool": "cancel_booking", "limit": 100})
    [acted] = [e for e in audit["items"] if e["outcome"] == "ok"]
    assert acted["changes"]["fee_waived"] is True and acted["changes"]["fee"] == 0


async def test_a_checked_in_booking_cannot_be_cancelled(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    booking = await book(app, owner, member, service, clock.now() + timedelta(minutes=30))
    await ok(app, owner.key, "check_in_booking", {"booking_id": booking})
    refused = await call(app, owner.key, "cancel_booking", {"booking_id": booking})
    assert error_code(refused) == "invalid_state"
    assert refused.data["error"]["details"]["current"] == "checked_in"
    assert "complete_booking" in refused.data["error"]["hint"]
    assert (await booking_row(app, booking)).status == BookingStatus.checked_in


async def test_unknown_booking_and_bad_input(app: App, owner: Owner) -> None:
    missing = await call(app, owner.key, "cancel_booking", {"booking_id": "bkg_nope"})
    assert error_code(missing) == "not_found"
    long = await call(app, owner.key, "cancel_booking", {"booking_id": "bkg_x", "reason": "x" * 301})
    assert error_code(long) == "validation_failed"
    for tool in ("check_in_booking", "complete_booking", "mark_no_show"):
        assert error_code(await call(app, owner.key, tool, {"booking_id": "bkg_nope"})) == "not_found"
        assert error_code(await call(app, owner.key, tool, {"booking_id": "bkg_x", "extra": 1})) == "validation_failed"


async def test_a_staff_members_late_cancel_of_their_own_booking_charges_the_fee(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    member, service = await setup(app, owner)
    staff = await join(app, owner, "staff")
    booking = await book(app, owner, member, service, clock.now() + timedelta(hours=2), staff_user_id=staff.user_id)
    done = await cancel(app, staff.key, booking)
    assert done["fee_amount"] == FEE and done["fee_invoice_id"]
    [draft] = await drafts_of(app, owner.key, member)
    assert draft["id"] == done["fee_invoice_id"] and [x["unit_amount"] for x in draft["lines"]] == [FEE]
    # Another's booking is not theirs to see: not found, and nothing changes.
    owners = await book(app, owner, member, service, clock.now() + timedelta(hours=5))
    for tool in ("cancel_booking", "check_in_booking", "complete_booking", "mark_no_show"):
        assert error_code(await call(app, staff.key, tool, {"booking_id": owners})) == "not_found"
    assert (await booking_row(app, owners)).status == BookingStatus.confirmed


async def test_a_staff_member_completes_their_own_credit_booking(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    pack = await paid_pack(app, owner, member)
    staff = await join(app, owner, "staff")
    starts = clock.now() + timedelta(minutes=30)
    booking = await book(app, owner, member, service, starts, staff_user_id=staff.user_id, credit=True)
    await ok(app, staff.key, "check_in_booking", {"booking_id": booking})
    clock.advance(hours=2)
    assert (await ok(app, staff.key, "complete_booking", {"booking_id": booking}))["status"] == "completed"
    assert await credits_left(app, owner, pack) == 9
    assert await credit_entries(app, booking) == ["consume", "reserve"]


# -- credits ---------------------------------------------------------------------------------------------------------


async def test_an_early_cancel_gives_the_credit_back(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    pack = await paid_pack(app, owner, member)
    booking = await book(app, owner, member, service, clock.now() + timedelta(days=3), credit=True)
    assert await credits_left(app, owner, pack) == 9
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": booking})
    assert shown["credit"] == "released" and shown["fee_amount"] is None
    done = await cancel(app, owner.key, booking)
    assert done["payment"] == "credit" and done["fee_amount"] is None
    assert await credits_left(app, owner, pack) == 10
    assert await credit_entries(app, booking) == ["release", "reserve"]


async def test_a_late_cancel_uses_the_credit_and_charges_no_fee(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    pack = await paid_pack(app, owner, member)
    booking = await book(app, owner, member, service, clock.now() + timedelta(hours=2), credit=True)
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": booking})
    assert shown["late"] is True and shown["credit"] == "used" and shown["fee_amount"] is None
    done = await cancel(app, owner.key, booking)
    assert done["fee_amount"] is None and done["late_cancel"] is True and "credit was used" in done["message"]
    assert await credits_left(app, owner, pack) == 9
    assert await credit_entries(app, booking) == ["consume", "reserve"]
    assert await drafts_of(app, owner.key, member) == []


async def test_a_late_cancel_with_the_fee_waived_gives_the_credit_back(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    member, service = await setup(app, owner)
    pack = await paid_pack(app, owner, member)
    booking = await book(app, owner, member, service, clock.now() + timedelta(hours=2), credit=True)
    await cancel(app, owner.key, booking, waive_fee=True)
    assert await credits_left(app, owner, pack) == 10


async def test_completing_uses_the_credit_once_however_often_retried(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    pack = await paid_pack(app, owner, member)
    booking = await book(app, owner, member, service, clock.now() + timedelta(minutes=30), credit=True)
    await ok(app, owner.key, "check_in_booking", {"booking_id": booking})
    clock.advance(hours=2)
    first = await ok(app, owner.key, "complete_booking", {"booking_id": booking})
    for _ in range(3):
        assert await ok(app, owner.key, "complete_booking", {"booking_id": booking}) == first
    assert first["status"] == "completed"
    assert await credits_left(app, owner, pack) == 9
    assert await credit_entries(app, booking) == ["consume", "reserve"]
    assert len(await events(app, "booking.completed", booking)) == 1


async def test_a_no_show_uses_the_credit(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    pack = await paid_pack(app, owner, member)
    booking = await book(app, owner, member, service, clock.now() + timedelta(minutes=30), credit=True)
    clock.advance(minutes=31)
    done = await ok(app, owner.key, "mark_no_show", {"booking_id": booking})
    assert done["status"] == "no_show" and done["fee_amount"] is None
    assert await credits_left(app, owner, pack) == 9
    assert await credit_entries(app, booking) == ["consume", "reserve"]
    assert await drafts_of(app, owner.key, member) == []


# -- class seats -----------------------------------------------------------------------------------------------------


async def seats_booked(app: App, session_id: str) -> int:
    async with app.db.transaction() as session:
        found = await session.get(ClassSession, session_id)
        assert found is not None
        return found.booked


async def test_cancelling_a_class_seat_frees_it_and_says_the_waitlist_moves(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    member, _ = await setup(app, owner)
    yoga = await new_service(app, owner, name="Yoga", capacity=5)
    starts = clock.now() + timedelta(days=2)
    session = await new_session(app, owner, yoga, starts)
    booking = await book(app, owner, member, yoga, starts, session_id=session)
    assert await seats_booked(app, session) == 1
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": booking})
    assert shown["waitlist_promotion"] is False
    waiting = await new_member(app, owner)

    async def wait(ctx: ToolContext) -> None:
        ctx.db.add(
            WaitlistEntry(
                id=new_id("wle"),
                workspace_id=ctx.workspace_id,
                class_session_id=session,
                member_id=waiting,
                created_at=ctx.now,
            )
        )
        await ctx.db.flush()

    other = await book(app, owner, await new_member(app, owner), yoga, starts, session_id=session)
    assert await seats_booked(app, session) == 2
    await cancel(app, owner.key, booking)
    assert await seats_booked(app, session) == 1, "the seat is freed once"
    await as_system(app, owner, wait)
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": other})
    assert shown["waitlist_promotion"] is True and "waitlist" in shown["summary"]
    [event] = await events(app, "booking.cancelled", booking)
    assert event["class_session_id"] == session


async def test_cancel_without_fee_is_the_session_cancel_contract(app: App, owner: Owner, clock: FakeClock) -> None:
    member, _ = await setup(app, owner)
    pack = await paid_pack(app, owner, member)
    yoga = await new_service(app, owner, name="Yoga", capacity=5)
    starts = clock.now() + timedelta(hours=2)  # inside the window: still no fee
    session = await new_session(app, owner, yoga, starts)
    booking = await book(app, owner, member, yoga, starts, session_id=session, credit=True)

    async def cancel_it(ctx: ToolContext) -> bool:
        return await outcomes.cancel_without_fee(ctx, booking, "Session cancelled")

    assert await as_system(app, owner, cancel_it) is True
    assert await as_system(app, owner, cancel_it) is False
    row = await booking_row(app, booking)
    assert row.status == BookingStatus.cancelled and row.fee_amount is None and row.late_cancel is False
    assert row.cancel_reason == "Session cancelled"
    assert await credits_left(app, owner, pack) == 10
    assert await seats_booked(app, session) == 0
    [event] = await events(app, "booking.cancelled", booking)
    assert (event["late"], event["fee"]) == (False, 0)
    assert await drafts_of(app, owner.key, member) == []
    assert await timeline(app, member) == ["booking_cancelled"]


# -- check in, complete, no-show -------------------------------------------------------------------------------------


async def test_check_in_opens_an_hour_before_the_start(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    starts = clock.now() + timedelta(hours=3)
    booking = await book(app, owner, member, service, starts)
    early = await call(app, owner.key, "check_in_booking", {"booking_id": booking})
    assert error_code(early) == "invalid_state" and early.data["error"]["details"]["reason"] == "too_early"
    assert (await booking_row(app, booking)).status == BookingStatus.confirmed
    clock.current = starts - timedelta(minutes=60)
    done = await ok(app, owner.key, "check_in_booking", {"booking_id": booking})
    assert done["status"] == "checked_in"
    assert (await booking_row(app, booking)).checked_in_at == clock.now()
    clock.advance(minutes=5)
    assert await ok(app, owner.key, "check_in_booking", {"booking_id": booking}) == done
    assert len(await events(app, "booking.checked_in", booking)) == 1
    assert await timeline(app, member) == ["booking_checked_in"]


async def test_a_pending_booking_is_confirmed_before_check_in(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    booking = await book(app, owner, member, service, clock.now() + timedelta(minutes=10), status=BookingStatus.pending)
    refused = await call(app, owner.key, "check_in_booking", {"booking_id": booking})
    assert error_code(refused) == "invalid_state" and "confirm_booking" in refused.data["error"]["hint"]


async def test_complete_needs_a_check_in_and_moves_the_customers_activity(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    member, service = await setup(app, owner)
    booking = await book(app, owner, member, service, clock.now() + timedelta(minutes=10))
    refused = await call(app, owner.key, "complete_booking", {"booking_id": booking})
    assert error_code(refused) == "invalid_state"
    assert refused.data["error"]["details"]["current"] == "confirmed"
    assert "check_in_booking" in refused.data["error"]["hint"]
    await ok(app, owner.key, "check_in_booking", {"booking_id": booking})
    clock.advance(hours=2)
    done = await ok(app, owner.key, "complete_booking", {"booking_id": booking})
    assert done["status"] == "completed"
    [event] = await events(app, "booking.completed", booking)
    assert (event["unit_amount"], event["currency"], event["member_id"]) == (6000, "EUR", member)
    async with app.db.transaction() as session:
        found = await session.get(Member, member)
        assert found is not None and found.last_activity_at == clock.now()
    assert await timeline(app, member) == ["booking_checked_in", "booking_completed"]
    cancelled = await call(app, owner.key, "cancel_booking", {"booking_id": booking})
    assert error_code(cancelled) == "invalid_state" and cancelled.data["error"]["details"]["current"] == "completed"


async def test_a_no_show_before_the_start_is_refused_and_changes_nothing(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    member, service = await setup(app, owner)
    starts = clock.now() + timedelta(minutes=30)
    booking = await book(app, owner, member, service, starts)
    before = await booking_row(app, booking)
    clock.current = starts - timedelta(seconds=1)
    refused = await call(app, owner.key, "mark_no_show", {"booking_id": booking})
    assert error_code(refused) == "invalid_state"
    assert refused.data["error"]["details"]["reason"] == "not_started"
    assert await booking_row(app, booking) == before
    assert await drafts_of(app, owner.key, member) == [] and await events(app, "booking.no_show", booking) == []


async def test_a_no_show_charges_the_no_show_fee_once(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    starts = clock.now() + timedelta(minutes=30)
    booking = await book(app, owner, member, service, starts)
    clock.current = starts  # exactly at the start: allowed
    done = await ok(app, owner.key, "mark_no_show", {"booking_id": booking})
    assert done["status"] == "no_show" and done["fee_amount"] == NO_SHOW_FEE
    for _ in range(2):
        assert await ok(app, owner.key, "mark_no_show", {"booking_id": booking}) == done
    [draft] = await drafts_of(app, owner.key, member)
    [line] = draft["lines"]
    assert line["description"] == f"No-show: Massage {local(starts)}" and line["unit_amount"] == NO_SHOW_FEE
    [event] = await events(app, "booking.no_show", booking)
    assert (event["fee"], event["currency"]) == (NO_SHOW_FEE, "EUR")
    assert await timeline(app, member) == ["booking_no_show"]


async def test_a_checked_in_booking_can_become_a_no_show_and_without_a_fee_costs_nothing(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    await set_rules(app, owner, no_show_fee=0)
    member, service = await new_member(app, owner), await new_service(app, owner)
    starts = clock.now() + timedelta(minutes=30)
    booking = await book(app, owner, member, service, starts)
    await ok(app, owner.key, "check_in_booking", {"booking_id": booking})
    clock.advance(hours=1)
    done = await ok(app, owner.key, "mark_no_show", {"booking_id": booking})
    assert done["status"] == "no_show" and done["fee_amount"] is None
    assert await drafts_of(app, owner.key, member) == []
    pending = await book(app, owner, member, service, starts + timedelta(hours=3), status=BookingStatus.pending)
    clock.advance(hours=4)
    refused = await call(app, owner.key, "mark_no_show", {"booking_id": pending})
    assert error_code(refused) == "invalid_state" and refused.data["error"]["details"]["current"] == "pending"


# -- through the booking tools ---------------------------------------------------------------------------------------

TZ = ZoneInfo("Europe/Amsterdam")
OPEN = {day: [{"open": "07:00", "close": "21:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def tomorrow_at(clock: FakeClock, hour: int) -> datetime:
    day = clock.now().astimezone(TZ).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ)


async def bookable(app: App, owner: Owner) -> str:
    """Open every day; a 60-minute massage delivered by the owner; fees set through update_booking_settings."""
    await ok(app, owner.key, "set_business_hours", {"weekly": OPEN, "closures": []})
    rules = {"late_cancel_fee": FEE, "no_show_fee": NO_SHOW_FEE, "cancellation_window_hours": 48}
    await ok(app, owner.key, "update_booking_settings", rules)
    args = {"name": "Massage", "duration_minutes": 60, "unit_amount": 5000, "staff_ids": [owner.user_id]}
    return str((await ok(app, owner.key, "create_service", args))["id"])


async def test_bookings_made_by_create_booking_end_under_the_same_rules(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    service = await bookable(app, owner)
    member = await new_member(app, owner)
    pack = await paid_pack(app, owner, member)
    ten, noon = tomorrow_at(clock, 10), tomorrow_at(clock, 12)
    with_credit = await ok(
        app, owner.key, "create_booking",
        {"member_id": member, "service_id": service, "starts_at": ten.isoformat(), "use_credit": True},
    )  # fmt: skip
    plain = await ok(
        app, owner.key, "create_booking", {"member_id": member, "service_id": service, "starts_at": noon.isoformat()}
    )
    assert await credits_left(app, owner, pack) == 9
    # Inside the 48-hour window: the credit is used; the other booking's fee goes on a draft, once.
    used = await cancel(app, owner.key, with_credit["id"])
    assert used["fee_amount"] is None and await credits_left(app, owner, pack) == 9
    charged = await cancel(app, owner.key, plain["id"])
    assert charged["fee_amount"] == FEE
    [draft] = await drafts_of(app, owner.key, member)
    assert [line["description"] for line in draft["lines"]] == [f"Late cancellation: Massage {local(noon)}"]
    # A new booking at the freed time: checked in half an hour before, completed after.
    again = await ok(
        app, owner.key, "create_booking", {"member_id": member, "service_id": service, "starts_at": noon.isoformat()}
    )
    clock.current = noon.astimezone(UTC) - timedelta(minutes=30)
    assert (await ok(app, owner.key, "check_in_booking", {"booking_id": again["id"]}))["status"] == "checked_in"
    clock.current = noon.astimezone(UTC) + timedelta(hours=1)
    assert (await ok(app, owner.key, "complete_booking", {"booking_id": again["id"]}))["status"] == "completed"
    detail = await ok(app, owner.key, "get_booking_detail", {"booking_id": charged["id"]})
    assert detail["status"] == "cancelled"


async def test_an_erased_customers_booking_ends_without_a_fee(app: App, owner: Owner, clock: FakeClock) -> None:
    member, service = await setup(app, owner)
    late = await book(app, owner, member, service, clock.now() + timedelta(hours=1))
    started = await book(app, owner, member, service, clock.now() - timedelta(hours=2))
    await confirmed(app, owner.key, "delete_member", {"member_id": member})
    shown = await preview(app, owner.key, "cancel_booking", {"booking_id": late})
    assert shown["late"] is True and shown["fee_amount"] is None
    done = await cancel(app, owner.key, late)
    assert done["status"] == "cancelled" and done["fee_amount"] is None
    gone = await ok(app, owner.key, "mark_no_show", {"booking_id": started})
    assert gone["status"] == "no_show" and gone["fee_amount"] is None
