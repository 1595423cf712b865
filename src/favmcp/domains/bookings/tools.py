"""The bookings domain: availability, appointments and class seats, their lifecycle and policies."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import col

from favmcp.auth.models import User
from favmcp.core.errors import FavError, conflict, forbidden, invalid_state
from favmcp.core.ids import new_id
from favmcp.core.times import format_utc
from favmcp.domains.bookings import (
    availability,
    calendar,
    links,
    outcomes,
    placement,
    profile,
    service,
    settings,
    visibility,
)
from favmcp.domains.bookings.events import EVENTS, BookingConfirmed, BookingDeclined, BookingRescheduled
from favmcp.domains.bookings.lifecycle import BOOKING_LIFECYCLE
from favmcp.domains.bookings.models import Booking, BookingStatus
from favmcp.domains.bookings.schemas import (
    BookingCustomer,
    BookingDetail,
    BookingInput,
    BookingPage,
    BookingPublic,
    BookingStats,
    BookingStatsInput,
    ConfirmBookingInput,
    CreateBookingInput,
    HistoryEntry,
    ListBookingsInput,
    Named,
    RescheduleBookingInput,
    StaffUtilisation,
    StatusCounts,
    untrusted,
)
from favmcp.domains.classes import seats
from favmcp.domains.members import service as members
from favmcp.domains.members.events import MemberCreated
from favmcp.domains.members.models import Member, MemberStatus
from favmcp.domains.services import service as services
from favmcp.domains.services.models import Service, ServiceStaff
from favmcp.domains.subscriptions import access, credits
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.models import EventRecord, StateTransition
from favmcp.registry.profiles import PUBLISHABLE
from favmcp.registry.spec import ToolSpec, tool

DOMAIN_NAME = "bookings"

# Refusals that concern one staff member: create_booking without a staff_id tries the next candidate.
STAFF_REASONS = {"staff_busy", "outside_hours", "time_off"}
# Refusals that tell something about the customer.
CUSTOMER_REASONS = {"customer_busy", "membership_required", "no_credit"}


def _reason(error: FavError) -> str | None:
    return (error.body.details or {}).get("reason")


@tool(domain=DOMAIN_NAME, title="Create booking", hints="W", scope="bookings:write", route="POST /v1/bookings")
async def create_booking(ctx: ToolContext, args: CreateBookingInput) -> BookingPublic:
    """Book a customer: an appointment at starts_at (staff_id, or any free staff), or a class seat
    (class_session_id). Refusals give details.reason: staff_busy, customer_busy, full, outside_hours, closed,
    time_off, too_soon, too_far, membership_required, no_credit. With customer (name, email) instead of
    member_id, the customer is found by email or added. A publishable key's booking always waits as pending."""
    # A web page's key: anyone may send it, so it names no member and the business confirms what it asks for.
    publishable = ctx.caller.profile == PUBLISHABLE
    if publishable and args.member_id is not None:
        raise forbidden("A booking page books by the customer's name and email: give customer, not member_id.")
    svc = await services.load_bookable(ctx, args.service_id)
    placement.ensure_kind(svc, class_session_id=args.class_session_id)
    session = None
    if args.class_session_id is not None:  # the session's row before the customer's (see placement)
        session = await placement.session_for(ctx, svc, args.class_session_id, lock=True)
    if args.customer is not None:
        member_id = await _customer(ctx, args.customer)
    else:
        assert args.member_id is not None  # the input's validator asks for one of the two
        member_id = args.member_id
    await placement.load_for_booking(ctx, member_id)  # the customer's lock, held across every try below
    common: dict[str, Any] = {
        "member_id": member_id,
        "service": svc,
        "use_credit": args.use_credit,
        "customer_note": args.customer_note,
        "requires_confirmation": publishable,
    }
    try:
        if session is not None:
            booking = await placement.place(ctx, staff_user_id=None, starts_at=None, class_session=session, **common)
        elif args.staff_id is not None:
            booking = await placement.place(ctx, staff_user_id=args.staff_id, starts_at=args.starts_at, **common)
        else:
            assert args.starts_at is not None
            booking = await _place_with_any_staff(ctx, svc, args.starts_at, common)
    except FavError as error:
        if publishable and _reason(error) in CUSTOMER_REASONS:
            # Whoever types an email into a booking page must not learn that customer's bookings or plans.
            raise conflict(
                "This time cannot be booked online; choose another or contact the business.",
                details={"reason": "unavailable"},
            ) from None
        raise
    return await _answer(ctx, booking.id)


async def _customer(ctx: ToolContext, customer: BookingCustomer) -> str:
    """The active customer with this email, or a new one; their marketing consent recorded when given (an unticked
    box on a booking form withdraws nothing)."""
    db = ctx.db.unfiltered
    member = await db.first(
        db.select(Member, col(Member.status) == MemberStatus.active, col(Member.email) == customer.email)
    )
    if member is None:
        member = Member(
            id=new_id("mem"),
            workspace_id=ctx.workspace_id,
            name=customer.name,
            email=customer.email,
            source="booking page",
            created_at=ctx.now,
            updated_at=ctx.now,
            last_activity_at=ctx.now,
        )
        await members.save_member(ctx, member)
        members.record_event(ctx, member.id, "created", "Profile created", {"source": member.source})
        ctx.emit(MemberCreated(member_id=member.id, source=member.source))
    if customer.email_consent:
        await members.add_consent(ctx, member.id, "email", True, "booking page")
    return member.id


async def _place_with_any_staff(ctx: ToolContext, svc: Service, starts_at: datetime, common: dict[str, Any]) -> Booking:
    """Try each candidate under their lock, each in a savepoint, until one takes the booking."""
    candidates = await availability.candidate_staff(ctx, svc, starts_at)
    if not candidates:
        await _why_nobody(ctx, svc, starts_at)
    last: FavError | None = None
    for staff_user_id in candidates:
        try:
            async with ctx.db.savepoint():
                return await placement.place(ctx, staff_user_id=staff_user_id, starts_at=starts_at, **common)
        except FavError as error:
            if _reason(error) not in STAFF_REASONS:
                raise
            last = error
    if last is not None and len(candidates) == 1:
        raise last
    raise conflict(
        f"No staff member who delivers {svc.name} is free at {format_utc(starts_at)}.",
        hint=placement.SLOTS_HINT,
        details={"reason": "staff_busy", "service_id": svc.id, "starts_at": format_utc(starts_at)},
    )


async def _why_nobody(ctx: ToolContext, svc: Service, starts_at: datetime) -> None:
    """No candidate: the rule every staff member breaks (hours, notice...), else they are all busy (raised by
    the caller)."""
    staff = await services.staff_of(ctx, svc.id)
    if not staff:
        raise invalid_state(
            f"Nobody delivers {svc.name} ({svc.id}) yet.",
            current="no_staff",
            hint="Assign staff with assign_staff_to_service.",
            service_id=svc.id,
        )
    first: FavError | None = None
    for staff_user_id in staff:
        try:
            await placement.ensure_bookable(ctx, svc, staff_user_id, starts_at)
        except FavError as error:
            first = first or error
            continue
        return
    if first is not None:
        raise first


async def _reload(ctx: ToolContext, booking_id: str) -> Booking:
    """A booking this call just made or moved, whoever it is now assigned to (a staff member may book or move a
    customer to a colleague: the answer is what they did)."""
    booking = await ctx.db.unfiltered.get(Booking, booking_id, fresh=True)
    assert booking is not None
    return booking


async def _answer(ctx: ToolContext, booking_id: str) -> BookingPublic:
    return service.public(await _reload(ctx, booking_id))


def _movable(booking: Booking) -> None:
    if booking.status not in (BookingStatus.pending, BookingStatus.confirmed):
        raise invalid_state(
            f"Booking {booking.id} is {booking.status}: only pending and confirmed bookings can be rescheduled.",
            current=booking.status,
            allowed=[BookingStatus.pending.value, BookingStatus.confirmed.value],
            hint="Make a new booking instead (create_booking).",
        )


@tool(
    domain=DOMAIN_NAME,
    title="Reschedule booking",
    hints="W I",
    scope="bookings:write",
    route="POST /v1/bookings/{booking_id}/reschedule",
)
async def reschedule_booking(ctx: ToolContext, args: RescheduleBookingInput) -> BookingPublic:
    """Move a pending or confirmed booking to a new starts_at (optional staff_id) or, for a class seat, another
    session. Same rules and refusals as create_booking; a refusal leaves the booking as it was."""
    found = await service.load(ctx, args.booking_id)
    if found.class_session_id is not None and args.class_session_id is not None:
        for session_id in sorted({found.class_session_id, args.class_session_id}):  # sessions before customers
            await seats.load_session(ctx, session_id, lock=True, unfiltered=True)
    await placement.load_for_booking(ctx, found.member_id)  # customer first, then the booking row
    booking = await service.load(ctx, args.booking_id, lock=True)
    _movable(booking)
    svc = await services.load(ctx, booking.service_id)
    placement.ensure_kind(svc, class_session_id=args.class_session_id)
    previous_starts_at, previous_staff = booking.starts_at, booking.staff_user_id
    if args.class_session_id is not None:
        assert booking.class_session_id is not None
        if args.class_session_id == booking.class_session_id:
            return service.public(booking)
        session = await placement.session_for(ctx, svc, args.class_session_id)
        if svc.members_only:
            await access.ensure_membership(ctx, booking.member_id, svc.name)
        await placement.ensure_customer_free(
            ctx, booking.member_id, session.starts_at, session.ends_at, ignore_booking_id=booking.id
        )
        if not await seats.take_seat(ctx, session.id):  # the new seat is held before the old one is freed
            raise placement.full(session)
        await seats.free_seat(ctx, booking.class_session_id)
        values: dict[str, Any] = {
            "class_session_id": session.id,
            "staff_user_id": session.staff_user_id,
            "starts_at": session.starts_at,
            "ends_at": session.ends_at,
            "blocked_from": session.blocked_from,
            "blocked_until": session.blocked_until,
        }
    else:
        assert args.starts_at is not None
        staff_user_id = args.staff_id or booking.staff_user_id
        if args.starts_at == booking.starts_at and staff_user_id == booking.staff_user_id:
            return service.public(booking)
        shift = args.starts_at - booking.starts_at  # the booked duration and buffers move with it
        values = {
            "staff_user_id": staff_user_id,
            "starts_at": args.starts_at,
            "ends_at": booking.ends_at + shift,
            "blocked_from": booking.blocked_from + shift,
            "blocked_until": booking.blocked_until + shift,
        }
        if svc.members_only:
            await access.ensure_membership(ctx, booking.member_id, svc.name)
        await services.ensure_delivers(ctx, svc, staff_user_id)
        await placement.ensure_bookable(ctx, svc, staff_user_id, args.starts_at)
        await placement.lock_staff(ctx, staff_user_id)
        await placement.ensure_staff_free(
            ctx, staff_user_id, values["blocked_from"], values["blocked_until"], ignore_booking_id=booking.id
        )
        await placement.ensure_customer_free(
            ctx, booking.member_id, values["starts_at"], values["ends_at"], ignore_booking_id=booking.id
        )
    values |= {"reschedule_count": col(Booking.reschedule_count) + 1, "updated_at": ctx.now}
    await placement.move(ctx, booking, values)
    booking = await _reload(ctx, booking.id)
    ctx.emit(
        BookingRescheduled(
            booking_id=booking.id,
            member_id=booking.member_id,
            service_id=booking.service_id,
            staff_user_id=booking.staff_user_id,
            class_session_id=booking.class_session_id,
            starts_at=booking.starts_at,
            previous_starts_at=previous_starts_at,
            previous_staff_user_id=previous_staff,
        )
    )
    members.record_event(
        ctx,
        booking.member_id,
        "booking.rescheduled",
        f"Moved {svc.name} from {await placement.local_label(ctx, previous_starts_at)} to "
        f"{await placement.local_label(ctx, booking.starts_at)}",
        {"booking_id": booking.id, "previous_starts_at": format_utc(previous_starts_at)},
    )
    ctx.record_change(booking_id=booking.id, fields=sorted(k for k in values if k != "updated_at"))
    return service.public(booking)


@tool(
    domain=DOMAIN_NAME,
    title="Confirm booking",
    hints="W I",
    scope="bookings:write",
    route="POST /v1/bookings/{booking_id}/confirm",
)
async def confirm_booking(ctx: ToolContext, args: ConfirmBookingInput) -> BookingPublic:
    """Confirm a pending booking, or decline it (decline: true, with a reason): a declined booking frees its class
    seat (the waitlist moves up) and gives back a reserved credit. A repeat answers the booking unchanged."""
    found = await service.load(ctx, args.booking_id)
    if args.decline and found.class_session_id is not None:  # its seat is freed: the session's row first
        await seats.load_session(ctx, found.class_session_id, lock=True, unfiltered=True)
    await ctx.db.unfiltered.get(Member, found.member_id, lock=True)  # then the customer's
    target = BookingStatus.declined if args.decline else BookingStatus.confirmed
    values: dict[str, Any] = {"updated_at": ctx.now}
    if args.decline:
        values["cancel_reason"] = args.reason
    else:
        values["confirmed_at"] = ctx.now
    moved = await ctx.transition(BOOKING_LIFECYCLE, Booking, found.id, target, values=values)
    booking = await service.load(ctx, found.id)
    if not moved:
        return service.public(booking)
    facts: dict[str, Any] = {
        "booking_id": booking.id,
        "member_id": booking.member_id,
        "service_id": booking.service_id,
        "staff_user_id": booking.staff_user_id,
        "class_session_id": booking.class_session_id,
        "starts_at": booking.starts_at,
    }
    label = await placement.local_label(ctx, booking.starts_at)
    if args.decline:
        if booking.class_session_id is not None:
            await seats.free_seat(ctx, booking.class_session_id)
        if booking.credit_reservation_id is not None:
            await credits.release_credit(ctx, booking.id)
        ctx.emit(BookingDeclined(**facts))
        members.record_event(ctx, booking.member_id, "booking.declined", f"Booking for {label} declined", _ids(booking))
    else:
        ctx.emit(BookingConfirmed(**facts))
        members.record_event(
            ctx, booking.member_id, "booking.confirmed", f"Booking for {label} confirmed", _ids(booking)
        )
    ctx.record_change(booking_id=booking.id, status=booking.status.value)
    return service.public(booking)


def _ids(booking: Booking) -> dict[str, Any]:
    return {"booking_id": booking.id, "service_id": booking.service_id}


@tool(
    domain=DOMAIN_NAME,
    title="Get booking detail",
    hints="R I",
    scope="bookings:read",
    route="GET /v1/bookings/{booking_id}",
)
async def get_booking_detail(ctx: ToolContext, args: BookingInput) -> BookingDetail:
    """One booking with its customer, service, staff member, price, payment (credit held, fee and its invoice)
    and history (created, state changes, reschedules; oldest first)."""
    booking = await service.load(ctx, args.booking_id)
    member = await ctx.db.get(Member, booking.member_id)
    svc = await ctx.db.get(Service, booking.service_id)
    staff = await ctx.db.unfiltered.get(User, booking.staff_user_id)
    history = [
        HistoryEntry(
            at=booking.created_at,
            change="created",
            from_state=None,
            detail=None,
            actor_user_id=booking.created_by,
        )
    ]
    moves = await ctx.db.all(
        ctx.db.select(
            StateTransition, col(StateTransition.entity) == "booking", col(StateTransition.entity_id) == booking.id
        ).order_by(col(StateTransition.created_at), col(StateTransition.id))
    )
    history += [
        HistoryEntry(
            at=m.created_at,
            change=m.to_state,
            from_state=m.from_state,
            detail=None,
            actor_user_id=m.actor_user_id,
        )
        for m in moves
    ]
    moved = await ctx.db.all(
        ctx.db.select(
            EventRecord,
            col(EventRecord.name) == BookingRescheduled.name,
            col(EventRecord.payload)["booking_id"].as_string() == booking.id,
        ).order_by(col(EventRecord.created_at), col(EventRecord.id))
    )
    history += [
        HistoryEntry(
            at=e.created_at,
            change="rescheduled",
            from_state=None,
            detail=f"from {e.payload.get('previous_starts_at')} to {e.payload.get('starts_at')}",
            actor_user_id=None,
        )
        for e in moved
    ]
    history.sort(key=lambda h: h.at)
    return BookingDetail(
        **service.public(booking).model_dump(),
        customer=Named(id=booking.member_id, name=member.name if member else None),
        service=Named(id=booking.service_id, name=svc.name if svc else None),
        staff=Named(id=booking.staff_user_id, name=staff.name if staff else None),
        tax_rate=booking.tax_rate,
        customer_note=untrusted(booking.customer_note),
        cancel_reason=booking.cancel_reason,
        reschedule_count=booking.reschedule_count,
        credit_reservation_id=booking.credit_reservation_id,
        history=history,
    )


def _filtered(ctx: ToolContext, stmt: Any, *, staff_id: str | None, member_id: str | None = None) -> Any:
    if staff_id is not None:
        stmt = stmt.where(col(Booking.staff_user_id) == staff_id)
    if member_id is not None:
        stmt = stmt.where(col(Booking.member_id) == member_id)
    return stmt


@tool(domain=DOMAIN_NAME, title="List bookings", hints="R I", scope="bookings:read", route="GET /v1/bookings")
async def list_bookings(ctx: ToolContext, args: ListBookingsInput) -> BookingPage:
    """Bookings, newest booked first (cursor pages), by start time [starts_from, starts_to), status, staff,
    customer, service or class session."""
    stmt = ctx.db.select(Booking)
    member_id = None
    if args.member_id is not None:
        member, _ = await members.load(ctx, args.member_id)  # a merged id's bookings are the survivor's
        member_id = member.id
    stmt = _filtered(ctx, stmt, staff_id=args.staff_id, member_id=member_id)
    if args.status is not None:
        stmt = stmt.where(col(Booking.status) == args.status)
    if args.service_id is not None:
        stmt = stmt.where(col(Booking.service_id) == args.service_id)
    if args.class_session_id is not None:
        stmt = stmt.where(col(Booking.class_session_id) == args.class_session_id)
    if args.starts_from is not None:
        stmt = stmt.where(col(Booking.starts_at) >= args.starts_from)
    if args.starts_to is not None:
        stmt = stmt.where(col(Booking.starts_at) < args.starts_to)
    rows, cursor = await ctx.db.page(stmt, col(Booking.id), args)
    return BookingPage(items=[service.public(b) for b in rows], next_cursor=cursor, has_more=cursor is not None)


BOOKED = (BookingStatus.confirmed, BookingStatus.checked_in, BookingStatus.completed)


def percent(part: int, whole: int) -> str | None:
    """part / whole as a percent with one decimal (half up), as text: answers carry no floats."""
    if not whole:
        return None
    return str((Decimal(part) * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@tool(domain=DOMAIN_NAME, title="Get booking stats", hints="R I", scope="bookings:read", route="GET /v1/bookings/stats")
async def get_booking_stats(ctx: ToolContext, args: BookingStatsInput) -> BookingStats:
    """For local dates from_date..to_date (inclusive, <= 92 days): bookings starting then by status, the no-show
    rate, and per staff member booked versus available minutes (utilisation). Counts match list_bookings over
    the answer's starts_from/starts_to."""
    tz = ZoneInfo((await ctx.db.workspace()).timezone)
    start = datetime.combine(args.from_date, time(), tzinfo=tz).astimezone(ZoneInfo("UTC"))
    end = datetime.combine(args.to_date + timedelta(days=1), time(), tzinfo=tz).astimezone(ZoneInfo("UTC"))
    in_range = (col(Booking.starts_at) >= start, col(Booking.starts_at) < end)
    counted = _filtered(
        ctx,
        ctx.db.select_columns(Booking, col(Booking.status), func.count()).where(*in_range),
        staff_id=args.staff_id,
    ).group_by(col(Booking.status))
    counts: Counter[str] = Counter({BookingStatus(status).value: n for status, n in await ctx.db.rows(counted)})
    by_status = StatusCounts(**{s.value: counts[s.value] for s in BookingStatus})
    attended = by_status.completed + by_status.no_show
    booked_rows = await ctx.db.rows(
        _filtered(
            ctx,
            ctx.db.select_columns(
                Booking, col(Booking.staff_user_id), col(Booking.starts_at), col(Booking.ends_at)
            ).where(*in_range, col(Booking.class_session_id).is_(None), col(Booking.status).in_(BOOKED)),
            staff_id=args.staff_id,
        )
    )
    booked: Counter[str] = Counter()
    for staff_user_id, starts_at, ends_at in booked_rows:
        booked[staff_user_id] += int((ends_at - starts_at).total_seconds() // 60)
    if args.staff_id is not None:
        staff_ids = {args.staff_id}
    else:
        delivering = await ctx.db.rows(
            ctx.db.select_columns(ServiceStaff, col(ServiceStaff.user_id))
            .join(Service, col(Service.id) == col(ServiceStaff.service_id))
            .where(ctx.db.owns(Service), col(Service.capacity) == 1)
        )
        staff_ids = set(booked) | {row[0] for row in delivering}
    ordered = sorted(staff_ids)
    available = await availability.available_minutes(ctx, ordered, start, end) if ordered else {}
    users = {u.id: u for u in await ctx.db.all(ctx.db.select(User, col(User.id).in_(ordered)))} if ordered else {}
    staff = [
        StaffUtilisation(
            staff_user_id=user_id,
            name=users[user_id].name if user_id in users else None,
            booked_minutes=booked[user_id],
            available_minutes=available.get(user_id, 0),
            utilisation=percent(booked[user_id], available.get(user_id, 0)),
        )
        for user_id in ordered
    ]
    return BookingStats(
        starts_from=start,
        starts_to=end,
        total=sum(counts.values()),
        by_status=by_status,
        no_show_rate=percent(by_status.no_show, attended),
        staff=staff,
    )


TOOLS: list[ToolSpec] = [
    create_booking,
    get_booking_detail,
    list_bookings,
    confirm_booking,
    reschedule_booking,
    get_booking_stats,
]

DOMAIN = Domain(
    "bookings",
    tools=[*availability.TOOLS, *TOOLS, *outcomes.TOOLS, *settings.TOOLS],
    member_links=links.MEMBER_LINKS,
    events=EVENTS,
    http_routes=calendar.ROUTES,
    staff_commitments=calendar.staff_commitments,
    member_profile=profile.upcoming_bookings,
    staff_assignments=visibility.STAFF_ASSIGNMENTS,
)
