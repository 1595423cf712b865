"""The classes domain's tools: sessions (one-off or a weekly series), rosters, cancellation, waitlists."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.core.errors import FavError, FieldError, conflict, invalid_state, not_found, validation_failed
from favmcp.core.ids import new_id
from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.core.times import format_utc
from favmcp.db.scoped import WorkspaceDB
from favmcp.domains.bookings.events import BookingCancelled, BookingDeclined
from favmcp.domains.bookings.models import ACTIVE, Booking, BookingPayment, BookingStatus
from favmcp.domains.classes import seats, waitlist
from favmcp.domains.classes.events import EVENTS, ClassSessionCancelled, ClassSessionScheduled
from favmcp.domains.classes.models import ClassSession, SessionStatus, WaitlistEntry, WaitlistStatus
from favmcp.domains.classes.schemas import (
    CancelClassSessionInput,
    CancelledSession,
    CancelSessionPreview,
    ClassRoster,
    ClassSessionPage,
    ClassSessionPublic,
    JoinWaitlistInput,
    LeaveWaitlistInput,
    ListClassSessionsInput,
    RosterAttendee,
    RosterWaiting,
    ScheduleClassSessionInput,
    ScheduledSessions,
    SessionInput,
    WaitlistPlace,
    WeeklySeries,
)
from favmcp.domains.members import service as members
from favmcp.domains.members.models import Member
from favmcp.domains.services import service as services
from favmcp.domains.services.models import Service
from favmcp.domains.team.models import StaffTimeOff
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Commitment, Domain
from favmcp.registry.spec import tool

DOMAIN_NAME = "classes"


async def _waiting_counts(ctx: ToolContext, session_ids: list[str]) -> dict[str, int]:
    if not session_ids:
        return {}
    db = ctx.db.unfiltered
    stmt = (
        db.select_columns(WaitlistEntry, col(WaitlistEntry.class_session_id), func.count())
        .where(
            col(WaitlistEntry.class_session_id).in_(session_ids),
            col(WaitlistEntry.status) == WaitlistStatus.waiting,
        )
        .group_by(col(WaitlistEntry.class_session_id))
    )
    return {session_id: int(n) for session_id, n in await db.rows(stmt)}


def _public(session: ClassSession, waiting: int) -> ClassSessionPublic:
    return ClassSessionPublic(
        **session.model_dump(include=set(ClassSessionPublic.model_fields) - {"seats_left", "waiting"}),
        seats_left=max(session.capacity - session.booked, 0),
        waiting=waiting,
    )


async def public(ctx: ToolContext, sessions: list[ClassSession]) -> list[ClassSessionPublic]:
    counts = await _waiting_counts(ctx, [s.id for s in sessions])
    return [_public(s, counts.get(s.id, 0)) for s in sessions]


# -- scheduling ------------------------------------------------------------------------------------------------


def _series_starts(series: WeeklySeries, tz: ZoneInfo) -> list[datetime]:
    """Each occurrence's start in UTC, its local wall time kept across DST; a local time that does not exist
    that day (the clocks jump over it) is refused, naming the date."""
    hours, minutes = (int(part) for part in series.local_time.split(":"))
    last = series.until if series.until is not None else series.first_date + timedelta(weeks=series.weeks or 0, days=-1)
    days = {d.number for d in series.weekdays}
    starts: list[datetime] = []
    missing: list[date] = []
    day = series.first_date
    while day <= last:
        if day.weekday() in days:
            local = datetime.combine(day, time(hours, minutes), tzinfo=tz)
            moment = local.astimezone(UTC)
            if moment.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
                missing.append(day)
            starts.append(moment)
        day += timedelta(days=1)
    if missing:
        names = ", ".join(d.isoformat() for d in missing)
        raise validation_failed(
            f"{series.local_time} does not exist on {names} in {tz.key} (the clocks go forward); no session was "
            "scheduled.",
            [FieldError(field="series.local_time", message=f"not a local time on {names}")],
        )
    if not starts:
        raise validation_failed(
            "The series has no session: none of its weekdays falls between its first and last date.",
            [FieldError(field="series.weekdays", message="no matching date")],
        )
    return starts


async def _time_off_clash(db: WorkspaceDB, staff_user_id: str, start: datetime, end: datetime) -> bool:
    found = await db.first(
        db.select(
            StaffTimeOff,
            col(StaffTimeOff.user_id) == staff_user_id,
            col(StaffTimeOff.removed_at).is_(None),
            col(StaffTimeOff.starts_at) < end,
            col(StaffTimeOff.ends_at) > start,
        )
    )
    return found is not None


async def _clashes(ctx: ToolContext, staff_user_id: str, spans: list[services.Span], tz: ZoneInfo) -> None:
    """Refuse the whole schedule when any session would overlap the instructor's appointments, sessions, time off
    or another session of the same call, naming the local dates."""
    from favmcp.domains.bookings import placement  # at call time: bookings imports classes.seats

    busy: list[str] = []
    time_off = 0
    for i, span in enumerate(spans):
        label = span.starts_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        try:
            await placement.ensure_staff_free(ctx, staff_user_id, span.blocked_from, span.blocked_until)
        except FavError:
            busy.append(label)
            continue
        if any(o.blocked_from < span.blocked_until and o.blocked_until > span.blocked_from for o in spans[:i]):
            busy.append(label)
        elif await _time_off_clash(ctx.db.unfiltered, staff_user_id, span.blocked_from, span.blocked_until):
            busy.append(label + " (time off)")
            time_off += 1
    reason = "time_off" if busy and time_off == len(busy) else "staff_busy"
    if busy:
        raise conflict(
            f"Team member {staff_user_id} is not free for {len(busy)} of the {len(spans)} sessions (local times: "
            f"{', '.join(busy[:10])}{' ...' if len(busy) > 10 else ''}); nothing was scheduled.",
            hint="Pick other times or another instructor; see get_staff_schedule.",
            details={"reason": reason, "staff_user_id": staff_user_id, "clashes": busy},
        )


@tool(
    domain=DOMAIN_NAME,
    title="Schedule class session",
    hints="W",
    scope="bookings:write",
    route="POST /v1/class-sessions",
)
async def schedule_class_session(ctx: ToolContext, args: ScheduleClassSessionInput) -> ScheduledSessions:
    """Schedule a class session (starts_at) or a weekly series (local time kept across DST) with an instructor
    who delivers the class. A clash with their bookings, sessions or time off refuses it all, naming dates."""
    from favmcp.domains.bookings import placement

    service = await services.load_bookable(ctx, args.service_id)
    if not service.is_class:
        raise validation_failed(
            f"{service.name} ({service.id}) is an appointment service (capacity 1): book it with create_booking.",
            [FieldError(field="service_id", message="a class service (capacity above 1)")],
        )
    await services.ensure_delivers(ctx, service, args.staff_id)
    tz = ZoneInfo((await ctx.db.workspace()).timezone)
    starts = [args.starts_at] if args.starts_at is not None else _series_starts(args.series, tz)  # type: ignore[arg-type]
    past = [s for s in starts if s <= ctx.now]
    if past:
        raise validation_failed(
            f"A session must start in the future; {format_utc(past[0])} has passed.",
            [FieldError(field="starts_at" if args.starts_at else "series.first_date", message="in the future")],
        )
    spans = [services.span(service, s) for s in starts]
    await placement.lock_staff(ctx, args.staff_id)
    await _clashes(ctx, args.staff_id, spans, tz)
    series_id = new_id("ser") if args.series is not None else None
    capacity = args.capacity if args.capacity is not None else service.capacity
    made: list[ClassSession] = []
    for span in spans:
        session = ClassSession(
            id=new_id("cls"),
            workspace_id=ctx.workspace_id,
            service_id=service.id,
            staff_user_id=args.staff_id,
            series_id=series_id,
            starts_at=span.starts_at,
            ends_at=span.ends_at,
            blocked_from=span.blocked_from,
            blocked_until=span.blocked_until,
            capacity=capacity,
            booked=0,
            created_by=ctx.caller.user_id,
            created_at=ctx.now,
        )
        ctx.db.add(session)
        made.append(session)
        ctx.emit(
            ClassSessionScheduled(
                class_session_id=session.id,
                service_id=service.id,
                staff_user_id=args.staff_id,
                series_id=series_id,
                starts_at=session.starts_at,
            )
        )
    await ctx.db.flush()
    ctx.record_change(service_id=service.id, series_id=series_id, class_sessions=len(made))
    return ScheduledSessions(series_id=series_id, sessions=[_public(s, 0) for s in made])


# -- reading ---------------------------------------------------------------------------------------------------


@tool(
    domain=DOMAIN_NAME, title="List class sessions", hints="R I", scope="bookings:read", route="GET /v1/class-sessions"
)
async def list_class_sessions(ctx: ToolContext, args: ListClassSessionsInput) -> ClassSessionPage:
    """Class sessions, newest scheduled first, by start range [starts_from, starts_to), service, instructor and
    status; each with booked, capacity, seats_left and waitlist count."""
    stmt = ctx.db.select(ClassSession)
    if args.starts_from is not None:
        stmt = stmt.where(col(ClassSession.starts_at) >= args.starts_from)
    if args.starts_to is not None:
        stmt = stmt.where(col(ClassSession.starts_at) < args.starts_to)
    if args.service_id is not None:
        stmt = stmt.where(col(ClassSession.service_id) == args.service_id)
    if args.staff_id is not None:
        stmt = stmt.where(col(ClassSession.staff_user_id) == args.staff_id)
    if args.status is not None:
        stmt = stmt.where(col(ClassSession.status) == args.status)
    rows, cursor = await ctx.db.page(stmt, col(ClassSession.id), args)
    return ClassSessionPage(items=await public(ctx, rows), next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Get class roster",
    hints="R I",
    scope="bookings:read",
    route="GET /v1/class-sessions/{class_session_id}/roster",
)
async def get_class_roster(ctx: ToolContext, args: SessionInput) -> ClassRoster:
    """One class session: its attendees (bookings, any status, with the customer's name) and its waitlist in
    promotion order."""
    session = await seats.load_session(ctx, args.class_session_id)
    attendees = await ctx.db.rows(
        ctx.db.select_columns(Booking, col(Booking.id), col(Booking.member_id), col(Member.name), col(Booking.status))
        .join(Member, col(Member.id) == col(Booking.member_id))
        .where(ctx.db.owns(Member), col(Booking.class_session_id) == session.id)
        .order_by(col(Booking.id))
    )
    line = await ctx.db.rows(
        ctx.db.select_columns(WaitlistEntry, WaitlistEntry, col(Member.name))
        .join(Member, col(Member.id) == col(WaitlistEntry.member_id))
        .where(ctx.db.owns(Member), *waitlist.waiting(session.id))
        .order_by(col(WaitlistEntry.id))
    )
    waiting = []
    for entry, name in line:
        waiting.append(
            RosterWaiting(
                entry_id=entry.id,
                position=await waitlist.position(ctx, entry) or 0,
                member_id=entry.member_id,
                name=name,
                joined_at=entry.created_at,
                skipped_reason=entry.skipped_reason,
            )
        )
    [summary] = await public(ctx, [session])
    return ClassRoster(
        session=summary,
        attendees=[
            RosterAttendee(booking_id=b, member_id=m, name=n, status=BookingStatus(s)) for b, m, n, s in attendees
        ],
        waitlist=waiting,
    )


# -- cancelling ------------------------------------------------------------------------------------------------


async def _active_bookings(ctx: ToolContext, session_id: str) -> list[Booking]:
    db = ctx.db.unfiltered
    return await db.all(
        db.select(Booking, col(Booking.class_session_id) == session_id, col(Booking.status).in_(ACTIVE)).order_by(
            col(Booking.id)
        )
    )


def _ensure_none_checked_in(session: ClassSession, bookings: list[Booking]) -> None:
    checked_in = [b.id for b in bookings if b.status == BookingStatus.checked_in]
    if checked_in:
        raise invalid_state(
            f"Class session {session.id} has {len(checked_in)} checked-in attendees; it is under way and cannot be "
            "cancelled.",
            current="checked_in",
            hint="Complete or mark the bookings instead (complete_booking).",
            class_session_id=session.id,
        )


async def _cancelled_count(ctx: ToolContext, session: ClassSession) -> int:
    if session.cancelled_at is None:
        return 0
    return await ctx.db.unfiltered.count(
        Booking,
        col(Booking.class_session_id) == session.id,
        col(Booking.status) == BookingStatus.cancelled,
        col(Booking.cancelled_at) == session.cancelled_at,
    )


async def _preview_cancel(ctx: ToolContext, args: CancelClassSessionInput) -> CancelSessionPreview:
    session = await seats.load_session(ctx, args.class_session_id)
    if session.status == SessionStatus.cancelled:
        return CancelSessionPreview(
            summary=f"Class session {session.id} is already cancelled; nothing will change.",
            nothing_to_do=True,
            class_session_id=session.id,
            bookings_cancelled=0,
            credits_returned=0,
            waiting_closed=0,
        )
    bookings = await _active_bookings(ctx, session.id)
    _ensure_none_checked_in(session, bookings)
    credits = sum(1 for b in bookings if b.payment == BookingPayment.credit and b.credit_reservation_id)
    line = len(await waitlist.in_line(ctx, session.id))
    return CancelSessionPreview(
        summary=f"Cancel class session {session.id} at {format_utc(session.starts_at)}: {len(bookings)} bookings "
        f"are cancelled without fee, {credits} class credits go back and {line} waitlist entries are closed.",
        class_session_id=session.id,
        bookings_cancelled=len(bookings),
        credits_returned=credits,
        waiting_closed=line,
    )


@tool(
    domain=DOMAIN_NAME,
    title="Cancel class session",
    hints="D I",
    scope="bookings:write",
    gate="confirm",
    preview=_preview_cancel,
    route="POST /v1/class-sessions/{class_session_id}/cancel",
)
async def cancel_class_session(ctx: ToolContext, args: CancelClassSessionInput) -> CancelledSession:
    """Cancel a class session: every active booking in it is cancelled without fee (class credits given back)
    and its waitlist closed. Refused once attendees have checked in. Repeating answers the same."""
    from favmcp.domains.bookings import outcomes  # at call time: bookings imports classes.seats

    # Lock order of a class seat's end: the session's row, then the customers' (cancel_booking and the waitlist's
    # promotion take them in this order too).
    session = await seats.load_session(ctx, args.class_session_id, lock=True)
    if session.status == SessionStatus.scheduled:
        bookings = await _active_bookings(ctx, session.id)
        _ensure_none_checked_in(session, bookings)
        moved = await ctx.db.unfiltered.update_returning(
            ClassSession,
            col(ClassSession.id) == session.id,
            col(ClassSession.status) == SessionStatus.scheduled,
            values={"status": SessionStatus.cancelled, "cancelled_at": ctx.now, "cancel_reason": args.reason},
        )
        if moved:
            reason = args.reason or "The class session was cancelled."
            done = 0
            for booking in bookings:
                done += bool(await outcomes.cancel_without_fee(ctx, booking.id, reason))
            closed = await waitlist.close_line(ctx, session)
            ctx.emit(ClassSessionCancelled(class_session_id=session.id, bookings_cancelled=done))
            ctx.record_change(class_session_id=session.id, bookings_cancelled=done, waiting_closed=closed)
        session = await seats.load_session(ctx, session.id)
    [summary] = await public(ctx, [session])
    return CancelledSession(session=summary, bookings_cancelled=await _cancelled_count(ctx, session))


# -- waitlists -------------------------------------------------------------------------------------------------


def _ensure_open(ctx: ToolContext, session: ClassSession) -> None:
    if session.status != SessionStatus.scheduled:
        raise invalid_state(
            f"Class session {session.id} is {session.status}; its waitlist is closed.",
            current=session.status,
            hint=seats.FIND,
        )
    if session.starts_at <= ctx.now:
        raise invalid_state(
            f"Class session {session.id} has started; its waitlist is closed.", current="started", hint=seats.FIND
        )


async def _waiting_entry(ctx: ToolContext, session_id: str, member_id: str) -> WaitlistEntry | None:
    db = ctx.db.unfiltered
    return await db.first(
        db.select(WaitlistEntry, *waitlist.waiting(session_id), col(WaitlistEntry.member_id) == member_id)
    )


@tool(
    domain=DOMAIN_NAME,
    title="Join waitlist",
    hints="W I",
    scope="bookings:write",
    route="POST /v1/class-sessions/{class_session_id}/waitlist",
)
async def join_waitlist(ctx: ToolContext, args: JoinWaitlistInput) -> WaitlistPlace:
    """Put a customer on a full session's waitlist; booked in order when a seat frees. A free seat is refused
    (create_booking). Already waiting or booked: answers that place."""
    from favmcp.domains.bookings import placement

    session = await seats.load_session(ctx, args.class_session_id, lock=True)  # the session's row, then the customer's
    member = await placement.load_for_booking(ctx, args.member_id)
    seat = await waitlist.active_seat(ctx, session.id, member.id)
    if seat is not None:
        return waitlist.seat_of(seat)
    existing = await _waiting_entry(ctx, session.id, member.id)
    if existing is not None:
        return await waitlist.place_of(ctx, existing)
    _ensure_open(ctx, session)
    if (left := session.capacity - session.booked) > 0:
        raise conflict(
            f"Class session {session.id} has {left} free seats: book one instead.",
            hint="Book a seat with create_booking (class_session_id).",
            details={
                "reason": "seat_free",
                "class_session_id": session.id,
                "seats_left": session.capacity - session.booked,
            },
        )
    entry = WaitlistEntry(
        id=new_id("wle"),
        workspace_id=ctx.workspace_id,
        class_session_id=session.id,
        member_id=member.id,
        created_by=ctx.caller.user_id,
        created_at=ctx.now,
    )
    try:
        async with ctx.db.savepoint():
            ctx.db.add(entry)
            await ctx.db.flush()
    except IntegrityError:
        won = await _waiting_entry(ctx, session.id, member.id)  # a concurrent join of the same customer won
        if won is None:
            raise
        return await waitlist.place_of(ctx, won)
    members.record_event(
        ctx,
        member.id,
        "waitlist.joined",
        "Joined a class waitlist",
        {"entry_id": entry.id, "class_session_id": session.id},
    )
    ctx.record_change(entry_id=entry.id, member_id=member.id, class_session_id=session.id)
    return await waitlist.place_of(ctx, entry)


async def _entry_for(ctx: ToolContext, args: LeaveWaitlistInput) -> WaitlistEntry:
    if args.entry_id is not None:
        entry = await ctx.db.get(WaitlistEntry, args.entry_id, fresh=True)
        if entry is None:
            raise not_found("waitlist entry", args.entry_id, hint="See get_class_roster.")
        return entry
    assert args.member_id is not None and args.class_session_id is not None
    member, _ = await members.load(ctx, args.member_id)
    entry = await ctx.db.first(
        ctx.db.select(
            WaitlistEntry,
            col(WaitlistEntry.class_session_id) == args.class_session_id,
            col(WaitlistEntry.member_id) == member.id,
        ).order_by(col(WaitlistEntry.id).desc())
    )
    if entry is None:
        raise not_found(
            "waitlist entry of member", f"{member.id} on {args.class_session_id}", hint="See get_class_roster."
        )
    return entry


@tool(domain=DOMAIN_NAME, title="Leave waitlist", hints="D I", scope="bookings:write")
async def leave_waitlist(ctx: ToolContext, args: LeaveWaitlistInput) -> WaitlistPlace:
    """Take a customer off a session's waitlist (by entry_id, or member_id with class_session_id). Repeating
    answers the same; a promoted entry holds a booking instead (cancel_booking)."""
    entry = await _entry_for(ctx, args)
    if entry.status == WaitlistStatus.waiting:
        # The lock order of promotion: the session's row, the customer's, then the entry.
        await seats.load_session(ctx, entry.class_session_id, lock=True, unfiltered=True)
        await ctx.db.unfiltered.get(Member, entry.member_id, lock=True)
        won = await ctx.db.unfiltered.update_returning(
            WaitlistEntry,
            col(WaitlistEntry.id) == entry.id,
            col(WaitlistEntry.status) == WaitlistStatus.waiting,
            values={"status": WaitlistStatus.left, "left_at": ctx.now},
        )
        if won:  # the one call that moved it writes the timeline; a racing repeat answers the same
            members.record_event(ctx, entry.member_id, "waitlist.left", "Left a class waitlist", {"entry_id": entry.id})
            ctx.record_change(entry_id=entry.id, member_id=entry.member_id)
        entry = await ctx.db.get(WaitlistEntry, entry.id, fresh=True) or entry
    if entry.status == WaitlistStatus.promoted:
        raise invalid_state(
            f"Waitlist entry {entry.id} was promoted into booking {entry.booking_id}; it no longer waits.",
            current=entry.status,
            hint="Cancel the booking instead (cancel_booking).",
            booking_id=entry.booking_id,
        )
    return await waitlist.place_of(ctx, entry)


# -- what the rest of the house sees ---------------------------------------------------------------------------


async def staff_commitments(db: WorkspaceDB, user_id: str, starts_at: datetime, ends_at: datetime) -> list[Commitment]:
    """Scheduled sessions the staff member teaches whose time (buffers included) overlaps the range."""
    rows = await db.rows(
        db.select_columns(ClassSession, ClassSession, col(Service.name))
        .join(Service, col(Service.id) == col(ClassSession.service_id))
        .where(
            db.owns(Service),
            col(ClassSession.staff_user_id) == user_id,
            col(ClassSession.status) == SessionStatus.scheduled,
            col(ClassSession.blocked_from) < ends_at,
            col(ClassSession.blocked_until) > starts_at,
        )
        .order_by(col(ClassSession.starts_at))
    )
    return [
        Commitment(
            kind="class_session",
            id=s.id,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            summary=f"Class {name}, {s.booked}/{s.capacity} booked",
        )
        for s, name in rows
    ]


def _export(entry: WaitlistEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "class_session_id": entry.class_session_id,
        "status": entry.status.value,
        "booking_id": entry.booking_id,
        "joined_at": format_utc(entry.created_at),
        "promoted_at": format_utc(entry.promoted_at) if entry.promoted_at else None,
        "left_at": format_utc(entry.left_at) if entry.left_at else None,
    }


MEMBER_LINKS = [MemberLink("waitlist", WaitlistEntry, "member_id", OnMerge.move_set, OnErase.delete, export=_export)]

TOOLS = [
    schedule_class_session,
    list_class_sessions,
    get_class_roster,
    cancel_class_session,
    join_waitlist,
    leave_waitlist,
]

DOMAIN = Domain(
    "classes",
    tools=TOOLS,
    member_links=MEMBER_LINKS,
    events=EVENTS,
    subscribers={BookingCancelled: [waitlist.on_seat_freed], BookingDeclined: [waitlist.on_seat_freed]},
    staff_commitments=staff_commitments,
)
