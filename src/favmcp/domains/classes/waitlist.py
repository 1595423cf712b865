"""Waitlists: a customer's place in line, and promotion into a freed seat, in order and exactly once.

Promotion runs in the transaction that freed the seat (a subscriber to BookingCancelled and BookingDeclined). It
locks the session row first, so two seats freed at the same moment promote one after the other: the second sees
the first's promoted entry and takes the next in line. Lock order, as every booking change of a class seat: the
session's row, then the customer's, then the waitlist entry."""

from __future__ import annotations

from typing import Any

from sqlmodel import col

from favmcp.core.errors import FavError
from favmcp.domains.bookings.events import BookingCancelled, BookingDeclined
from favmcp.domains.bookings.models import ACTIVE, Booking
from favmcp.domains.classes import seats
from favmcp.domains.classes.events import WaitlistPromoted
from favmcp.domains.classes.models import ClassSession, SessionStatus, WaitlistEntry, WaitlistStatus
from favmcp.domains.classes.schemas import WaitlistPlace
from favmcp.domains.members import service as members
from favmcp.domains.services import service as services
from favmcp.registry.context import ToolContext


def waiting(session_id: str) -> list[Any]:
    return [col(WaitlistEntry.class_session_id) == session_id, col(WaitlistEntry.status) == WaitlistStatus.waiting]


async def in_line(ctx: ToolContext, session_id: str) -> list[WaitlistEntry]:
    """The waiting entries of a session, first in line first (ids sort by creation); the whole workspace."""
    db = ctx.db.unfiltered
    return await db.all(db.select(WaitlistEntry, *waiting(session_id)).order_by(col(WaitlistEntry.id)))


async def position(ctx: ToolContext, entry: WaitlistEntry) -> int | None:
    if entry.status != WaitlistStatus.waiting:
        return None
    db = ctx.db.unfiltered
    ahead = await db.count(WaitlistEntry, *waiting(entry.class_session_id), col(WaitlistEntry.id) < entry.id)
    return ahead + 1


async def place_of(ctx: ToolContext, entry: WaitlistEntry) -> WaitlistPlace:
    return WaitlistPlace(
        entry_id=entry.id,
        class_session_id=entry.class_session_id,
        member_id=entry.member_id,
        status=entry.status.value,
        position=await position(ctx, entry),
        booking_id=entry.booking_id,
        joined_at=entry.created_at,
        skipped_reason=entry.skipped_reason,
    )


def seat_of(booking: Booking) -> WaitlistPlace:
    """A customer who already holds a seat: their place is the booking."""
    assert booking.class_session_id is not None
    return WaitlistPlace(
        entry_id=None,
        class_session_id=booking.class_session_id,
        member_id=booking.member_id,
        status="booked",
        position=None,
        booking_id=booking.id,
        joined_at=None,
        skipped_reason=None,
    )


async def active_seat(ctx: ToolContext, session_id: str, member_id: str) -> Booking | None:
    db = ctx.db.unfiltered
    return await db.first(
        db.select(
            Booking,
            col(Booking.class_session_id) == session_id,
            col(Booking.member_id) == member_id,
            col(Booking.status).in_(ACTIVE),
        ).order_by(col(Booking.id))
    )


def _reason(error: FavError) -> str:
    reason = (error.body.details or {}).get("reason") or error.code
    return f"{reason}: {error.body.message}"[:300]


async def promote(ctx: ToolContext, session_id: str) -> list[str]:
    """Fill the session's free seats from its waitlist, oldest entry first. An entry whose booking a rule refuses
    keeps its place with the reason in skipped_reason, and the next is tried. A cancelled or started session
    promotes nobody. Returns the promoted entries' ids."""
    from favmcp.domains.bookings import placement  # at call time: bookings imports classes.seats

    session = await seats.load_session(ctx, session_id, lock=True, unfiltered=True)
    if session.status != SessionStatus.scheduled or session.starts_at <= ctx.now:
        return []
    service = await services.load(ctx, session.service_id)
    promoted: list[str] = []
    for entry in await in_line(ctx, session_id):
        if session.booked >= session.capacity:
            break
        try:
            async with ctx.db.savepoint():
                booking = await placement.place(
                    ctx,
                    member_id=entry.member_id,
                    service=service,
                    staff_user_id=None,
                    starts_at=None,
                    class_session=session,
                )
        except FavError as error:
            await ctx.db.unfiltered.update(
                WaitlistEntry,
                col(WaitlistEntry.id) == entry.id,
                col(WaitlistEntry.status) == WaitlistStatus.waiting,
                values={"skipped_reason": _reason(error)},
            )
            continue
        won = await ctx.db.unfiltered.update_returning(
            WaitlistEntry,
            col(WaitlistEntry.id) == entry.id,
            col(WaitlistEntry.status) == WaitlistStatus.waiting,
            values={
                "status": WaitlistStatus.promoted,
                "booking_id": booking.id,
                "promoted_at": ctx.now,
                "skipped_reason": None,
            },
        )
        assert won, "the session lock makes the promoting call the only writer of this line"
        promoted.append(entry.id)
        ctx.emit(
            WaitlistPromoted(
                entry_id=entry.id, class_session_id=session.id, member_id=entry.member_id, booking_id=booking.id
            )
        )
        members.record_event(
            ctx,
            entry.member_id,
            "waitlist.promoted",
            f"Promoted from the waitlist into {service.name}",
            {"entry_id": entry.id, "class_session_id": session.id, "booking_id": booking.id},
        )
        session = await seats.load_session(ctx, session_id, unfiltered=True)
    return promoted


async def on_seat_freed(ctx: ToolContext, event: BookingCancelled | BookingDeclined) -> None:
    """A class seat was given back (by the emitter): the next in line gets it."""
    if event.class_session_id is not None:
        await promote(ctx, event.class_session_id)


async def close_line(ctx: ToolContext, session: ClassSession) -> int:
    """Close every waiting entry of a session (it was cancelled); returns how many."""
    closed = await ctx.db.unfiltered.update_returning(
        WaitlistEntry, *waiting(session.id), values={"status": WaitlistStatus.closed, "left_at": ctx.now}
    )
    return len(closed)
