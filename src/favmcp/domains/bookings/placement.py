"""Placing a booking: every rule of a new (or moved) booking, under the locks that make it hold under load.

Lock order: for a class seat the session row first (as cancelling and the waitlist's promotion take it, then
the customers'), then the customer's row, then the staff member's user row (appointments). Invariant checks read
through `ctx.db.unfiltered` (a staff caller's overlap check still sees every booking); refusals never name a
booking the caller may not see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.auth.models import User
from favmcp.core.errors import FavError, FieldError, conflict, invalid_state, not_found, validation_failed
from favmcp.core.ids import new_id
from favmcp.core.times import format_utc
from favmcp.domains.bookings import availability
from favmcp.domains.bookings.events import BookingCreated
from favmcp.domains.bookings.models import ACTIVE, Booking, BookingPayment, BookingStatus
from favmcp.domains.bookings.settings import load_settings
from favmcp.domains.classes import seats
from favmcp.domains.classes.models import ClassSession, SessionStatus
from favmcp.domains.members import service as members
from favmcp.domains.members.models import Member
from favmcp.domains.services import service as services
from favmcp.domains.services.models import Service
from favmcp.domains.services.service import Span
from favmcp.domains.subscriptions import access, credits
from favmcp.registry.context import ToolContext

EXCLUSION = "ex_bookings_staff_time"
SLOTS_HINT = "Pick another time or staff member (get_available_slots)."


async def load_for_booking(ctx: ToolContext, member_id: str) -> Member:
    """The active customer, row locked, found through the whole workspace: a staff member may book a customer
    they found by exact email or phone, who is not yet one of "theirs". Merged and erased ids are refused."""
    member = await ctx.db.unfiltered.get(Member, member_id, lock=True)
    if member is None:
        raise not_found("member", member_id, hint=members.FIND)
    members.ensure_active(member)
    return member


async def lock_staff(ctx: ToolContext, staff_user_id: str) -> User:
    """The staff member's user row FOR UPDATE: bookings, class sessions and time off of one person take turns."""
    user = await ctx.db.unfiltered.get(User, staff_user_id, lock=True)
    if user is None:
        raise not_found("team member", staff_user_id, hint="Find team members with list_team_members.")
    return user


async def local_label(ctx: ToolContext, moment: datetime) -> str:
    """A moment as the business reads it: its local date and time."""
    tz = ZoneInfo((await ctx.db.workspace()).timezone)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _staff_busy(staff_user_id: str, blocked_from: datetime, blocked_until: datetime) -> FavError:
    return conflict(
        f"Team member {staff_user_id} is busy between {format_utc(blocked_from)} and {format_utc(blocked_until)} "
        "(buffers included).",
        hint=SLOTS_HINT,
        details={
            "reason": "staff_busy",
            "staff_user_id": staff_user_id,
            "busy_from": format_utc(blocked_from),
            "busy_until": format_utc(blocked_until),
        },
    )


async def ensure_staff_free(
    ctx: ToolContext,
    staff_user_id: str,
    blocked_from: datetime,
    blocked_until: datetime,
    *,
    ignore_booking_id: str | None = None,
) -> None:
    """Refuse (conflict, reason staff_busy) when an active appointment or a scheduled class session of the staff
    member blocks time overlapping [blocked_from, blocked_until) (half-open: back to back is free). The caller
    holds the staff lock (lock_staff). The refusal gives the time range only, never the other booking."""
    db = ctx.db.unfiltered
    stmt = db.select(
        Booking,
        col(Booking.staff_user_id) == staff_user_id,
        col(Booking.class_session_id).is_(None),
        col(Booking.status).in_(ACTIVE),
        col(Booking.blocked_from) < blocked_until,
        col(Booking.blocked_until) > blocked_from,
    )
    if ignore_booking_id is not None:
        stmt = stmt.where(col(Booking.id) != ignore_booking_id)
    clash = await db.first(stmt.order_by(col(Booking.blocked_from)))
    if clash is not None:
        raise _staff_busy(staff_user_id, clash.blocked_from, clash.blocked_until)
    sessions = await seats.sessions_blocking(db, staff_user_id, blocked_from, blocked_until)
    if sessions:
        raise _staff_busy(staff_user_id, sessions[0].blocked_from, sessions[0].blocked_until)


async def ensure_customer_free(
    ctx: ToolContext, member_id: str, starts_at: datetime, ends_at: datetime, *, ignore_booking_id: str | None = None
) -> None:
    """Refuse (conflict, reason customer_busy) when the customer holds an active booking overlapping
    [starts_at, ends_at). The caller holds the customer's row lock, so concurrent bookings of one customer take
    turns and this check holds."""
    db = ctx.db.unfiltered
    stmt = db.select(
        Booking,
        col(Booking.member_id) == member_id,
        col(Booking.status).in_(ACTIVE),
        col(Booking.starts_at) < ends_at,
        col(Booking.ends_at) > starts_at,
    )
    if ignore_booking_id is not None:
        stmt = stmt.where(col(Booking.id) != ignore_booking_id)
    clash = await db.first(stmt.order_by(col(Booking.starts_at)))
    if clash is not None:
        raise conflict(
            f"Customer {member_id} already has a booking between {format_utc(clash.starts_at)} and "
            f"{format_utc(clash.ends_at)}.",
            hint="Pick another time, or move the existing booking (reschedule_booking).",
            details={
                "reason": "customer_busy",
                "member_id": member_id,
                "busy_from": format_utc(clash.starts_at),
                "busy_until": format_utc(clash.ends_at),
            },
        )


async def ensure_bookable(ctx: ToolContext, service: Service, staff_user_id: str, starts_at: datetime) -> None:
    """The availability engine's rules (notice, advance, opening and working hours, closures, time off)."""
    await availability.ensure_bookable(ctx, service, staff_user_id, starts_at)


def full(session: ClassSession) -> FavError:
    return conflict(
        f"Class session {session.id} is full ({session.capacity} seats).",
        hint="Put the customer on the waitlist (join_waitlist), or pick another session (get_available_slots).",
        details={"reason": "full", "class_session_id": session.id, "capacity": session.capacity},
    )


async def session_for(ctx: ToolContext, service: Service, session_id: str, *, lock: bool = False) -> ClassSession:
    """A scheduled, not yet started session of the class service. lock: its row, taken before any customer's (the
    order cancel_booking, cancel_class_session and the waitlist's promotion take them in)."""
    session = await seats.load_session(ctx, session_id, lock=lock, unfiltered=lock)
    if session.service_id != service.id:
        raise validation_failed(
            f"Class session {session.id} is not a session of {service.name} ({service.id}).",
            [FieldError(field="class_session_id", message=f"a session of {service.id}")],
        )
    if session.status != SessionStatus.scheduled:
        raise invalid_state(
            f"Class session {session.id} is {session.status}; it takes no bookings.",
            current=session.status,
            hint=seats.FIND,
            reason="session_cancelled",
        )
    if session.starts_at <= ctx.now:
        raise invalid_state(
            f"Class session {session.id} has started; it takes no new bookings.",
            current="started",
            hint=seats.FIND,
            reason="started",
        )
    return session


def ensure_kind(service: Service, *, class_session_id: str | None) -> None:
    """An appointment service books a time (starts_at); a class service books a seat (class_session_id)."""
    if service.is_class and class_session_id is None:
        raise validation_failed(
            f"{service.name} ({service.id}) is a class: book a seat with class_session_id.",
            [FieldError(field="class_session_id", message="required for a class")],
        )
    if not service.is_class and class_session_id is not None:
        raise validation_failed(
            f"{service.name} ({service.id}) is an appointment: book it with starts_at, not a class session.",
            [FieldError(field="class_session_id", message="only for a class")],
        )


async def insert(ctx: ToolContext, booking: Booking) -> None:
    """Write a new booking inside a savepoint: a concurrent booking that won the staff member's time on Postgres
    (the exclusion constraint) is the same staff_busy conflict the check gives."""
    try:
        async with ctx.db.savepoint():
            ctx.db.add(booking)
            await ctx.db.flush()
    except IntegrityError as error:
        if EXCLUSION in str(error.orig):
            raise _staff_busy(booking.staff_user_id, booking.blocked_from, booking.blocked_until) from None
        raise


async def move(ctx: ToolContext, booking: Booking, values: dict[str, Any]) -> None:
    """Update a booking's time in place inside a savepoint (the exclusion constraint as in `insert`)."""
    try:
        async with ctx.db.savepoint():
            await ctx.db.unfiltered.update(Booking, col(Booking.id) == booking.id, values=values)
            await ctx.db.flush()
    except IntegrityError as error:
        if EXCLUSION in str(error.orig):
            raise _staff_busy(
                values.get("staff_user_id", booking.staff_user_id), values["blocked_from"], values["blocked_until"]
            ) from None
        raise


async def place(
    ctx: ToolContext,
    *,
    member_id: str,
    service: Service,
    staff_user_id: str | None,
    starts_at: datetime | None,
    class_session: ClassSession | None = None,
    use_credit: bool = False,
    customer_note: str | None = None,
    requires_confirmation: bool = False,
) -> Booking:
    """Book a customer: an appointment with `staff_user_id` at `starts_at`, or a seat in `class_session` (its
    time and staff are the session's). Every rule of a new booking, in order; any refusal raises and the
    caller's transaction (or savepoint) undoes what was done."""
    member = await load_for_booking(ctx, member_id)
    if service.members_only:
        await access.ensure_membership(ctx, member.id, service.name)
    if class_session is not None:
        staff_user_id = class_session.staff_user_id
        span = Span(
            starts_at=class_session.starts_at,
            ends_at=class_session.ends_at,
            blocked_from=class_session.blocked_from,
            blocked_until=class_session.blocked_until,
        )
    else:
        if staff_user_id is None or starts_at is None:
            raise validation_failed(
                "An appointment needs a start time and a staff member.",
                [FieldError(field="starts_at", message="required for an appointment")],
            )
        span = services.span(service, starts_at)
        await services.ensure_delivers(ctx, service, staff_user_id)
        await ensure_bookable(ctx, service, staff_user_id, starts_at)
        await lock_staff(ctx, staff_user_id)
        await ensure_staff_free(ctx, staff_user_id, span.blocked_from, span.blocked_until)
    await ensure_customer_free(ctx, member.id, span.starts_at, span.ends_at)
    if class_session is not None and not await seats.take_seat(ctx, class_session.id):
        raise full(class_session)
    settings = await load_settings(ctx)
    pending = settings.requires_confirmation or requires_confirmation
    status = BookingStatus.pending if pending else BookingStatus.confirmed
    booking = Booking(
        id=new_id("bkg"),
        workspace_id=ctx.workspace_id,
        member_id=member.id,
        service_id=service.id,
        staff_user_id=staff_user_id,
        class_session_id=class_session.id if class_session else None,
        status=status,
        starts_at=span.starts_at,
        ends_at=span.ends_at,
        blocked_from=span.blocked_from,
        blocked_until=span.blocked_until,
        unit_amount=service.unit_amount,
        currency=service.currency,
        tax_rate=service.tax_rate,
        payment=BookingPayment.credit if use_credit else BookingPayment.none,
        customer_note=customer_note,
        created_by=ctx.caller.user_id,
        created_at=ctx.now,
        updated_at=ctx.now,
        confirmed_at=ctx.now if status == BookingStatus.confirmed else None,
    )
    await insert(ctx, booking)
    if use_credit:
        # The whole workspace: a staff member may book a customer who is not theirs yet (or for a colleague).
        reservation = await credits.reserve_credit(ctx.unfiltered(), member.id, booking.id)
        if reservation is None:
            raise conflict(
                f"Customer {member.id} has no class-pack credit left to pay for this booking.",
                hint="Sell them a pack (subscribe_member), or book without use_credit.",
                details={"reason": "no_credit", "member_id": member.id},
            )
        booking.credit_reservation_id = reservation
        await ctx.db.flush()
    ctx.emit(
        BookingCreated(
            booking_id=booking.id,
            member_id=member.id,
            service_id=service.id,
            staff_user_id=booking.staff_user_id,
            class_session_id=booking.class_session_id,
            starts_at=booking.starts_at,
            status=booking.status,
        )
    )
    members.record_event(
        ctx,
        member.id,
        "booking.created",
        f"Booked {service.name} for {await local_label(ctx, booking.starts_at)}"
        + (" (waiting for confirmation)" if status == BookingStatus.pending else ""),
        {"booking_id": booking.id, "service_id": service.id, "status": booking.status.value},
    )
    ctx.record_change(booking_id=booking.id, member_id=member.id)
    return booking
