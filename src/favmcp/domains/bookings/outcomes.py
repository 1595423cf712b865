"""How bookings end: cancelled (under the cancellation policy), checked in, completed or a no-show; the late-cancel
and no-show fees as lines on the customer's draft invoice, and class-pack credits released or used.

Every move is one conditional transition of the booking (see BOOKING_LIFECYCLE). A fee is charged by the same
transition that ends the booking (its `fee_invoice_id` and `fee_amount` are set in that UPDATE), so a retried or
raced call charges it once: the loser of a race finds the booking already ended and answers it as it is.

Locks, in order: the customer's row, then the booking's (the order fees, payments, erase and merge take them in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field
from sqlmodel import col

from favmcp.core.errors import invalid_state
from favmcp.core.money import Money, Percent
from favmcp.domains.bookings import placement, service
from favmcp.domains.bookings.events import BookingCancelled, BookingCheckedIn, BookingCompleted, BookingNoShow
from favmcp.domains.bookings.lifecycle import BOOKING_LIFECYCLE
from favmcp.domains.bookings.models import Booking, BookingPayment, BookingStatus
from favmcp.domains.bookings.schemas import BookingId, BookingPublic
from favmcp.domains.bookings.settings import load_settings
from favmcp.domains.classes import seats
from favmcp.domains.classes.models import WaitlistEntry, WaitlistStatus
from favmcp.domains.invoices import service as invoices
from favmcp.domains.invoices.schemas import DraftLine
from favmcp.domains.members import service as members
from favmcp.domains.members.models import Member, MemberStatus
from favmcp.domains.services import service as services
from favmcp.domains.subscriptions import credits
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import ConfirmInput, Preview, ToolSpec, WriteInput, tool

DOMAIN_NAME = "bookings"

CHECK_IN_EARLY = timedelta(minutes=60)  # a customer may be checked in from an hour before the start


# -- inputs and answers --------------------------------------------------------------------------------------------


class CancelBookingInput(ConfirmInput):
    booking_id: BookingId
    reason: str | None = Field(default=None, min_length=1, max_length=300)
    waive_fee: bool = Field(default=False, description="No late-cancel fee; a class credit is given back.")


class BookingActionInput(WriteInput):
    booking_id: BookingId


CreditOutcome = Literal["released", "used"]


class CancelPreview(Preview):
    booking_id: str
    status: BookingStatus
    late: bool = Field(description="Inside the cancellation window.")
    fee_amount: int | None = Field(description="The late-cancel fee that will be charged, on a draft invoice.")
    currency: str | None
    credit: CreditOutcome | None = Field(description="What happens to the class credit the booking holds.")
    waitlist_promotion: bool = Field(description="A freed class seat goes to the first person waiting.")


class CancelledBooking(BookingPublic):
    message: str


# -- policy --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Penalty:
    """What ending a booking costs the customer: a fee (0: none) in a currency, and what happens to its credit."""

    fee: int
    currency: str
    credit: CreditOutcome | None


def _holds_credit(booking: Booking) -> bool:
    return booking.payment == BookingPayment.credit and booking.credit_reservation_id is not None


async def _fee_currency(ctx: ToolContext, configured: str | None) -> str:
    return configured or (await ctx.db.workspace()).currency


async def _is_late(ctx: ToolContext, booking: Booking) -> bool:
    """At or after (start - cancellation window): late."""
    settings = await load_settings(ctx)
    return ctx.now >= booking.starts_at - timedelta(hours=settings.cancellation_window_hours)


async def _cancel_penalty(ctx: ToolContext, booking: Booking, *, late: bool, waive: bool) -> Penalty:
    settings = await load_settings(ctx)
    currency = await _fee_currency(ctx, settings.fee_currency)
    # A pending booking was never accepted: cancelling it costs nothing.
    charged = late and not waive and booking.status != BookingStatus.pending
    if _holds_credit(booking):
        return Penalty(0, currency, "used" if charged else "released")
    fee = settings.late_cancel_fee if charged and await _billable(ctx, booking.member_id) else 0
    return Penalty(fee, currency, None)


async def _no_show_penalty(ctx: ToolContext, booking: Booking) -> Penalty:
    settings = await load_settings(ctx)
    currency = await _fee_currency(ctx, settings.fee_currency)
    if _holds_credit(booking):
        return Penalty(0, currency, "used")
    return Penalty(settings.no_show_fee if await _billable(ctx, booking.member_id) else 0, currency, None)


async def _billable(ctx: ToolContext, member_id: str) -> bool:
    """An erased customer gets no new invoice lines (the invoices domain refuses them): their booking ends free."""
    member = await ctx.db.unfiltered.get(Member, member_id)
    return member is not None and member.status == MemberStatus.active


async def _waiting(ctx: ToolContext, session_id: str | None) -> bool:
    if session_id is None:
        return False
    return bool(
        await ctx.db.unfiltered.count(
            WaitlistEntry,
            col(WaitlistEntry.class_session_id) == session_id,
            col(WaitlistEntry.status) == WaitlistStatus.waiting,
        )
    )


async def _label(ctx: ToolContext, booking: Booking) -> str:
    """The service and the local start, for a fee line and the timeline: "Massage 2026-03-14 10:30"."""
    name = (await services.load(ctx, booking.service_id)).name
    return f"{name} {await placement.local_label(ctx, booking.starts_at)}"


async def _charge(ctx: ToolContext, booking: Booking, penalty: Penalty, what: str) -> dict[str, Any]:
    """Put the fee on the customer's draft invoice; the values the ending transition sets with it."""
    if not penalty.fee:
        return {}
    settings = await load_settings(ctx)
    line = DraftLine(
        description=f"{what}: {await _label(ctx, booking)}",
        unit_amount=penalty.fee,
        tax_rate=Percent.parse(settings.fee_tax_rate),
        service_id=booking.service_id,
    )
    invoice_id = await invoices.add_fee(ctx, booking.member_id, line, penalty.currency)
    return {"fee_invoice_id": invoice_id, "fee_amount": penalty.fee}


async def _settle_credit(ctx: ToolContext, booking: Booking, outcome: CreditOutcome | None) -> None:
    if outcome == "released":
        await credits.release_credit(ctx, booking.id)
    elif outcome == "used":
        await credits.consume_credit(ctx, booking.id)


def _event_facts(booking: Booking) -> dict[str, Any]:
    return {
        "booking_id": booking.id,
        "member_id": booking.member_id,
        "service_id": booking.service_id,
        "staff_user_id": booking.staff_user_id,
        "class_session_id": booking.class_session_id,
        "starts_at": booking.starts_at,
    }


async def _locked(ctx: ToolContext, booking_id: str, *, seat: bool = False) -> Booking:
    """The booking, after its customer's row lock and then its own (the order fees and erase take them in).
    seat: a class booking's session row first (a cancel frees its seat: the order cancel_class_session and the
    waitlist's promotion take, session then customers)."""
    booking = await service.load(ctx, booking_id)
    if seat and booking.class_session_id is not None:
        await seats.load_session(ctx, booking.class_session_id, lock=True, unfiltered=True)
    await members.lock(ctx, booking.member_id)
    return await service.load(ctx, booking_id, lock=True)


# -- cancel --------------------------------------------------------------------------------------------------------


async def _preview_cancel(ctx: ToolContext, args: CancelBookingInput) -> CancelPreview:
    booking = await service.load(ctx, args.booking_id)
    facts: dict[str, Any] = {"booking_id": booking.id, "status": booking.status}
    if booking.status == BookingStatus.cancelled:
        return CancelPreview(
            summary=f"Booking {booking.id} is already cancelled; nothing will change.",
            nothing_to_do=True,
            late=booking.late_cancel,
            fee_amount=booking.fee_amount,
            currency=None,
            credit=None,
            waitlist_promotion=False,
            **facts,
        )
    if booking.status not in BOOKING_LIFECYCLE.sources_of(BookingStatus.cancelled):
        raise _refuse_cancel(booking)
    late = await _is_late(ctx, booking)
    penalty = await _cancel_penalty(ctx, booking, late=late, waive=args.waive_fee)
    waiting = await _waiting(ctx, booking.class_session_id)
    what = f"Cancel booking {booking.id} ({await _label(ctx, booking)})"
    if penalty.fee:
        cost = f"; it is late: a fee of {Money(penalty.fee, penalty.currency)} goes on the customer's draft invoice"
    elif penalty.credit == "used":
        cost = "; it is late: the class credit is used"
    elif penalty.credit == "released":
        cost = "; the class credit goes back to the customer"
    else:
        cost = "; no fee"
    seat = " The seat goes to the first person on the waitlist." if waiting else ""
    return CancelPreview(
        summary=f"{what}{cost}.{seat}",
        late=late,
        fee_amount=penalty.fee or None,
        currency=penalty.currency if penalty.fee else None,
        credit=penalty.credit,
        waitlist_promotion=waiting,
        **facts,
    )


def _refuse_cancel(booking: Booking) -> Exception:
    hint = None
    if booking.status == BookingStatus.checked_in:
        hint = "The customer has arrived: complete_booking or mark_no_show instead."
    return BOOKING_LIFECYCLE.refuse(booking.id, booking.status, BookingStatus.cancelled, hint)


async def _end_by_cancel(
    ctx: ToolContext, booking: Booking, *, reason: str | None, late: bool, penalty: Penalty, charge: dict[str, Any]
) -> Booking:
    """The cancelling transition (with the fee it charges), then the seat, the credit, the event and the timeline.
    The booking is locked and active."""
    values = {
        "cancelled_at": ctx.now,
        "updated_at": ctx.now,
        "cancel_reason": reason,
        "late_cancel": late,
        **charge,
    }
    await ctx.transition(BOOKING_LIFECYCLE, Booking, booking.id, BookingStatus.cancelled, values=values)
    if booking.class_session_id is not None:
        await seats.free_seat(ctx, booking.class_session_id)
    await _settle_credit(ctx, booking, penalty.credit)
    ctx.emit(BookingCancelled(**_event_facts(booking), late=late, fee=penalty.fee, currency=penalty.currency))
    summary = f"Booking cancelled: {await _label(ctx, booking)}"
    if penalty.fee:
        summary += f" (late-cancel fee {Money(penalty.fee, penalty.currency)})"
    data = {"booking_id": booking.id, "late": late, "fee": penalty.fee, "credit": penalty.credit}
    members.record_event(ctx, booking.member_id, "booking_cancelled", summary, data)
    return await service.load(ctx, booking.id)


@tool(
    domain=DOMAIN_NAME,
    title="Cancel booking",
    hints="D I",
    scope="bookings:write",
    gate="confirm",
    preview=_preview_cancel,
    route="POST /v1/bookings/{booking_id}/cancel",
)
async def cancel_booking(ctx: ToolContext, args: CancelBookingInput) -> CancelledBooking:
    """Cancel a pending or confirmed booking (not a checked-in one). Inside the cancellation window a confirmed
    booking uses its class credit or the late-cancel fee goes on a draft invoice, once; earlier it is free."""
    booking = await _locked(ctx, args.booking_id, seat=True)
    if booking.status == BookingStatus.cancelled:
        return _cancelled(booking, f"Booking {booking.id} was already cancelled; nothing changed.")
    if booking.status not in BOOKING_LIFECYCLE.sources_of(BookingStatus.cancelled):
        raise _refuse_cancel(booking)
    late = await _is_late(ctx, booking)
    penalty = await _cancel_penalty(ctx, booking, late=late, waive=args.waive_fee)
    charge = await _charge(ctx, booking, penalty, "Late cancellation")
    ended = await _end_by_cancel(ctx, booking, reason=args.reason, late=late, penalty=penalty, charge=charge)
    ctx.record_change(booking_id=booking.id, member_id=booking.member_id, late=late, fee=penalty.fee)
    if args.waive_fee and late:
        ctx.record_change(fee_waived=True)
    if penalty.fee:
        message = f"Cancelled late: {Money(penalty.fee, penalty.currency)} added to invoice {ended.fee_invoice_id}."
    elif penalty.credit == "used":
        message = "Cancelled late: the class credit was used."
    elif penalty.credit == "released":
        message = "Cancelled; the class credit went back to the customer."
    else:
        message = "Cancelled without a fee."
    return _cancelled(ended, message)


def _cancelled(booking: Booking, message: str) -> CancelledBooking:
    return CancelledBooking(**service.public(booking).model_dump(), message=message)


async def cancel_without_fee(ctx: ToolContext, booking_id: str, reason: str) -> bool:
    """Cancel an active (pending or confirmed) booking because its class session was cancelled: no fee, its credit
    given back, its seat freed, BookingCancelled(late=False, fee=0) emitted, the timeline written. True when it
    cancelled; False when the booking had already ended (checked-in bookings are refused like cancel_booking)."""
    booking = await _locked(ctx, booking_id, seat=True)
    if booking.status not in BOOKING_LIFECYCLE.sources_of(BookingStatus.cancelled):
        if booking.status == BookingStatus.checked_in:
            raise _refuse_cancel(booking)
        return False
    currency = await _fee_currency(ctx, (await load_settings(ctx)).fee_currency)
    penalty = Penalty(0, currency, "released" if _holds_credit(booking) else None)
    await _end_by_cancel(ctx, booking, reason=reason, late=False, penalty=penalty, charge={})
    ctx.record_change(booking_id=booking.id)
    return True


# -- check in, complete, no-show ------------------------------------------------------------------------------------


@tool(
    domain=DOMAIN_NAME,
    title="Check in booking",
    hints="W I",
    scope="bookings:write",
    route="POST /v1/bookings/{booking_id}/check-in",
)
async def check_in_booking(ctx: ToolContext, args: BookingActionInput) -> BookingPublic:
    """Mark a confirmed booking's customer arrived, from an hour before its start (earlier: too_early)."""
    booking = await _locked(ctx, args.booking_id)
    if booking.status == BookingStatus.confirmed and ctx.now < booking.starts_at - CHECK_IN_EARLY:
        raise invalid_state(
            f"Booking {booking.id} starts at {booking.starts_at:%Y-%m-%d %H:%M} UTC; check-in opens an hour before.",
            current=booking.status.value,
            allowed=[s.value for s in BOOKING_LIFECYCLE.allowed_from(booking.status)],
            reason="too_early",
            id=booking.id,
            opens_at=(booking.starts_at - CHECK_IN_EARLY).isoformat(),
        )
    hint = "Confirm it first (confirm_booking)." if booking.status == BookingStatus.pending else None
    values = {"checked_in_at": ctx.now, "updated_at": ctx.now}
    if await ctx.transition(BOOKING_LIFECYCLE, Booking, booking.id, BookingStatus.checked_in, values=values, hint=hint):
        ctx.emit(BookingCheckedIn(**_event_facts(booking)))
        label = await _label(ctx, booking)
        members.record_event(
            ctx, booking.member_id, "booking_checked_in", f"Arrived: {label}", {"booking_id": booking.id}
        )
        ctx.record_change(booking_id=booking.id)
    return service.public(await service.load(ctx, booking.id))


@tool(
    domain=DOMAIN_NAME,
    title="Complete booking",
    hints="W I",
    scope="bookings:write",
    route="POST /v1/bookings/{booking_id}/complete",
)
async def complete_booking(ctx: ToolContext, args: BookingActionInput) -> BookingPublic:
    """Complete a checked-in booking: uses its class credit and earns loyalty points, once however often
    retried."""
    booking = await _locked(ctx, args.booking_id)
    hint = "Check the customer in first (check_in_booking)." if booking.status == BookingStatus.confirmed else None
    values = {"completed_at": ctx.now, "updated_at": ctx.now}
    if await ctx.transition(BOOKING_LIFECYCLE, Booking, booking.id, BookingStatus.completed, values=values, hint=hint):
        if _holds_credit(booking):
            await credits.consume_credit(ctx, booking.id)
        ctx.emit(BookingCompleted(**_event_facts(booking), unit_amount=booking.unit_amount, currency=booking.currency))
        await members.record_activity(ctx, booking.member_id)
        summary = f"Visit: {await _label(ctx, booking)}"
        members.record_event(ctx, booking.member_id, "booking_completed", summary, {"booking_id": booking.id})
        ctx.record_change(booking_id=booking.id)
    return service.public(await service.load(ctx, booking.id))


@tool(
    domain=DOMAIN_NAME,
    title="Mark no-show",
    hints="W I",
    scope="bookings:write",
    route="POST /v1/bookings/{booking_id}/no-show",
)
async def mark_no_show(ctx: ToolContext, args: BookingActionInput) -> BookingPublic:
    """Mark a confirmed or checked-in booking a no-show, from its start (earlier: not_started): uses its class
    credit or puts the no-show fee on a draft invoice, once."""
    booking = await _locked(ctx, args.booking_id)
    if booking.status == BookingStatus.no_show:
        return service.public(booking)
    if booking.status not in BOOKING_LIFECYCLE.sources_of(BookingStatus.no_show):
        hint = "Confirm it first (confirm_booking), or cancel_booking." if booking.status == "pending" else None
        raise BOOKING_LIFECYCLE.refuse(booking.id, booking.status, BookingStatus.no_show, hint)
    if ctx.now < booking.starts_at:
        raise invalid_state(
            f"Booking {booking.id} has not started yet (it starts {booking.starts_at:%Y-%m-%d %H:%M} UTC); "
            "a no-show can be marked only from its start.",
            current=booking.status.value,
            allowed=[s.value for s in BOOKING_LIFECYCLE.allowed_from(booking.status)],
            hint="To call it off before it starts, use cancel_booking.",
            reason="not_started",
            id=booking.id,
        )
    penalty = await _no_show_penalty(ctx, booking)
    charge = await _charge(ctx, booking, penalty, "No-show")
    values = {"no_show_at": ctx.now, "updated_at": ctx.now, **charge}
    await ctx.transition(BOOKING_LIFECYCLE, Booking, booking.id, BookingStatus.no_show, values=values)
    await _settle_credit(ctx, booking, penalty.credit)
    ctx.emit(BookingNoShow(**_event_facts(booking), fee=penalty.fee, currency=penalty.currency))
    summary = f"No-show: {await _label(ctx, booking)}"
    if penalty.fee:
        summary += f" (fee {Money(penalty.fee, penalty.currency)})"
    data = {"booking_id": booking.id, "fee": penalty.fee, "credit": penalty.credit}
    members.record_event(ctx, booking.member_id, "booking_no_show", summary, data)
    ctx.record_change(booking_id=booking.id, member_id=booking.member_id, fee=penalty.fee)
    return service.public(await service.load(ctx, booking.id))


TOOLS: list[ToolSpec] = [cancel_booking, check_in_booking, complete_booking, mark_no_show]
