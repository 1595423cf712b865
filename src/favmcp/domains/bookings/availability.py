"""The availability engine: when a service can be booked with whom.

Free slots = the workspace's opening hours (minus closure dates) ∩ the staff member's working hours (their opening
hours when none are set) - time off - the time blocked by their active appointments and scheduled class sessions,
compared blocked span against blocked span (each widened by its buffers, half-open), on the slot step counted from
the start of each opening interval, within minimum notice and maximum advance. Local rules are in the workspace
timezone: a local start that does not exist (the spring gap) is skipped, an ambiguous one (the autumn repeat) is its
first occurrence.

The arithmetic is in pure functions over plain data (`Rules`, `Shape`, `StaffCalendar`); the loaders fetch that data
in a handful of queries, whatever the number of staff or days.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from sqlalchemy import and_, func, or_
from sqlmodel import col

from favmcp.core.errors import FavError, FieldError, invalid_state, validation_failed
from favmcp.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor
from favmcp.core.schema import Schema
from favmcp.core.times import CalendarDate
from favmcp.db.scoped import WorkspaceDB
from favmcp.domains.bookings.models import ACTIVE, Booking
from favmcp.domains.bookings.schemas import ServiceId, StaffId
from favmcp.domains.bookings.settings import load_settings
from favmcp.domains.classes.models import ClassSession, SessionStatus
from favmcp.domains.services import service as services
from favmcp.domains.services.models import Service
from favmcp.domains.team import calendar
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import ToolInput, ToolSpec, tool

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 62
SLOTS_HINT = "Find free times with get_available_slots."

Minutes = tuple[int, int]  # a local interval of a day, minutes from midnight, [open, close)
Interval = tuple[datetime, datetime]  # UTC instants, half-open


# -- plain data ------------------------------------------------------------------------------------------------


def weekly_minutes(stored: dict[str, Any] | None) -> dict[int, list[Minutes]]:
    """Stored weekly hours ({"mon": [{"open": "09:00", "close": "17:00"}]}) as minutes by weekday (0 = Monday)."""

    def minute(text: str) -> int:
        hour, _, rest = str(text).partition(":")
        return int(hour) * 60 + int(rest[:2])

    found: dict[int, list[Minutes]] = {}
    for n, day in enumerate(WEEKDAYS):
        intervals = sorted((minute(i["open"]), minute(i["close"])) for i in (stored or {}).get(day) or [])
        if intervals:
            found[n] = intervals
    return found


@dataclass(frozen=True)
class Rules:
    """The workspace's side: timezone, opening hours, closure dates, slot step and the notice/advance window."""

    tz: ZoneInfo
    opening: dict[int, list[Minutes]]
    closures: frozenset[date]
    step_minutes: int
    earliest: datetime  # now + minimum notice (a start exactly here is allowed)
    latest: datetime  # now + maximum advance


@dataclass(frozen=True)
class Shape:
    """The service's side: how long a booking is and the buffers that widen the time it blocks."""

    duration_minutes: int
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0

    def of(self, start: datetime) -> tuple[datetime, datetime, datetime, datetime]:
        end = start + timedelta(minutes=self.duration_minutes)
        return (
            start,
            end,
            start - timedelta(minutes=self.buffer_before_minutes),
            end + timedelta(minutes=self.buffer_after_minutes),
        )


class Timeline:
    """Sorted half-open intervals with a quick "does anything overlap [a, b)" (prefix maximum of the ends)."""

    def __init__(self, intervals: Sequence[Interval]) -> None:
        ordered = sorted(intervals)
        self.intervals = ordered
        self.starts = [s for s, _ in ordered]
        self.max_ends = list(accumulate((e for _, e in ordered), max))

    def overlaps(self, start: datetime, end: datetime) -> bool:
        n = bisect_left(self.starts, end)  # the intervals starting before `end`
        return n > 0 and self.max_ends[n - 1] > start


@dataclass
class StaffCalendar:
    """One staff member's side: weekly working hours (None: works the opening hours), time off, busy time."""

    working: dict[int, list[Minutes]] | None = None
    time_off: Timeline = field(default_factory=lambda: Timeline([]))
    busy: Timeline = field(default_factory=lambda: Timeline([]))
    _days: dict[date, list[Interval]] = field(default_factory=dict)

    def working_on(self, day: date, rules: Rules) -> list[Interval] | None:
        if self.working is None:
            return None
        if day not in self._days:
            self._days[day] = local_intervals(day, self.working.get(day.weekday(), []), rules.tz)
        return self._days[day]


def instant(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """A local wall time of `day` as a UTC instant (24:00 is the next midnight); the first occurrence when the
    time is repeated, the pre-transition offset when it falls in a gap (used for interval edges)."""
    if minute >= 1440:
        return datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
    return datetime.combine(day, time(minute // 60, minute % 60, fold=0), tz).astimezone(UTC)


def exists(day: date, minute: int, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of a local wall time, None when that time does not exist on that date (the spring gap)."""
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    moment = wall.replace(tzinfo=tz).astimezone(UTC)
    return moment if moment.astimezone(tz).replace(tzinfo=None) == wall else None


def local_intervals(day: date, intervals: Sequence[Minutes], tz: ZoneInfo) -> list[Interval]:
    return [(instant(day, a, tz), instant(day, b, tz)) for a, b in intervals]


def opening_on(rules: Rules, day: date) -> list[tuple[Minutes, Interval]]:
    """The opening intervals of a local date (none on a closure date), local and as instants."""
    if day in rules.closures:
        return []
    found = rules.opening.get(day.weekday(), [])
    return [(m, (instant(day, m[0], rules.tz), instant(day, m[1], rules.tz))) for m in found]


def _inside(start: datetime, end: datetime, intervals: Sequence[Interval]) -> bool:
    return any(a <= start and end <= b for a, b in intervals)


def refusal(rules: Rules, shape: Shape, cal: StaffCalendar, start: datetime, *, busy: bool) -> str | None:
    """Why `start` cannot be booked with this staff member (a booking refusal reason), or None when it can."""
    starts_at, ends_at, blocked_from, blocked_until = shape.of(start)
    if starts_at < rules.earliest:
        return "too_soon"
    if starts_at > rules.latest:
        return "too_far"
    day = starts_at.astimezone(rules.tz).date()
    if day in rules.closures:
        return "closed"
    if not _inside(starts_at, ends_at, [iv for _, iv in opening_on(rules, day)]):
        return "outside_hours"
    working = cal.working_on(day, rules)
    if working is not None and not _inside(starts_at, ends_at, working):
        return "outside_hours"
    if cal.time_off.overlaps(blocked_from, blocked_until):
        return "time_off"
    if busy and cal.busy.overlaps(blocked_from, blocked_until):
        return "staff_busy"
    return None


def day_starts(rules: Rules, day: date) -> list[datetime]:
    """The candidate starts of a local date: the slot step from the start of each opening interval, local times
    that do not exist skipped, repeated ones taken once (first occurrence)."""
    found: list[datetime] = []
    for (open_, close), _ in opening_on(rules, day):
        for minute in range(open_, close, rules.step_minutes):
            moment = exists(day, minute, rules.tz)
            if moment is not None:
                found.append(moment)
    return sorted(set(found))


def day_slots(
    rules: Rules, shape: Shape, staff: dict[str, StaffCalendar], day: date
) -> list[tuple[datetime, datetime, str]]:
    """The free slots of a local date, as (starts_at, ends_at, staff id), by start then staff id. The same rules
    as `refusal`, with each day's intervals worked out once."""
    found = []
    working = {user_id: staff[user_id].working_on(day, rules) for user_id in sorted(staff)}
    for (open_, close), (opens_at, closes_at) in opening_on(rules, day):
        for minute in range(open_, close, rules.step_minutes):
            start = exists(day, minute, rules.tz)
            if start is None or start < rules.earliest or start > rules.latest:
                continue
            starts_at, ends_at, blocked_from, blocked_until = shape.of(start)
            if not (opens_at <= starts_at and ends_at <= closes_at):
                continue
            for user_id, hours in working.items():
                cal = staff[user_id]
                if hours is not None and not _inside(starts_at, ends_at, hours):
                    continue
                if cal.time_off.overlaps(blocked_from, blocked_until) or cal.busy.overlaps(blocked_from, blocked_until):
                    continue
                found.append((starts_at, ends_at, user_id))
    found.sort()
    return found


def iter_slots(
    rules: Rules, shape: Shape, staff: dict[str, StaffCalendar], first: date, last: date
) -> Iterator[tuple[datetime, datetime, str]]:
    """Free slots day by day, lazily (a caller that stops early computes only the days it read)."""
    day = first
    while day <= last:
        yield from day_slots(rules, shape, staff, day)
        day += timedelta(days=1)


def _subtract(intervals: list[Interval], holes: Sequence[Interval]) -> list[Interval]:
    for h0, h1 in holes:
        kept: list[Interval] = []
        for a, b in intervals:
            if h1 <= a or b <= h0:
                kept.append((a, b))
                continue
            if a < h0:
                kept.append((a, h0))
            if h1 < b:
                kept.append((h1, b))
        intervals = kept
    return intervals


def free_minutes(rules: Rules, cal: StaffCalendar, start: datetime, end: datetime) -> int:
    """Minutes of (opening hours ∩ working hours - closures - time off) within [start, end)."""
    total = timedelta()
    day = start.astimezone(rules.tz).date() - timedelta(days=1)
    while instant(day, 0, rules.tz) < end:
        opening = [iv for _, iv in opening_on(rules, day)]
        working = cal.working_on(day, rules)
        parts = opening if working is None else [
            (max(a, c), min(b, d)) for a, b in opening for c, d in working if max(a, c) < min(b, d)
        ]  # fmt: skip
        parts = [(max(a, start), min(b, end)) for a, b in parts if max(a, start) < min(b, end)]
        for a, b in _subtract(parts, cal.time_off.intervals):
            total += b - a
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)


# -- loading ---------------------------------------------------------------------------------------------------


async def load_rules(ctx: ToolContext) -> Rules:
    ws = await ctx.db.workspace()
    settings = await load_settings(ctx)
    closures = frozenset(date.fromisoformat(str(c["date"])) for c in ws.closures or [])
    return Rules(
        tz=ZoneInfo(ws.timezone),
        opening=weekly_minutes(ws.business_hours),
        closures=closures,
        step_minutes=settings.slot_step_minutes,
        earliest=ctx.now + timedelta(minutes=settings.min_notice_minutes),
        latest=ctx.now + timedelta(days=settings.max_advance_days),
    )


def shape_of(service: Service) -> Shape:
    return Shape(service.duration_minutes, service.buffer_before_minutes, service.buffer_after_minutes)


async def load_busy(db: WorkspaceDB, user_ids: Sequence[str], start: datetime, end: datetime) -> dict[str, Timeline]:
    """The time each staff member's active appointments and scheduled class sessions block, around [start, end)
    (a day either side), in one query."""
    ids = list(user_ids)
    blocked: dict[str, list[Interval]] = {user_id: [] for user_id in ids}
    if ids:
        margin = timedelta(days=1)
        bookings = db.select_columns(
            Booking, col(Booking.staff_user_id), col(Booking.blocked_from), col(Booking.blocked_until)
        ).where(
            col(Booking.staff_user_id).in_(ids),
            col(Booking.class_session_id).is_(None),
            col(Booking.status).in_(ACTIVE),
            col(Booking.blocked_from) < end + margin,
            col(Booking.blocked_until) > start - margin,
        )
        sessions = db.select_columns(
            ClassSession,
            col(ClassSession.staff_user_id),
            col(ClassSession.blocked_from),
            col(ClassSession.blocked_until),
        ).where(
            col(ClassSession.staff_user_id).in_(ids),
            col(ClassSession.status) == SessionStatus.scheduled,
            col(ClassSession.blocked_from) < end + margin,
            col(ClassSession.blocked_until) > start - margin,
        )
        found = await db.rows(bookings.union_all(sessions))
        for user_id, a, b in found:
            blocked[user_id].append((a, b))
    return {user_id: Timeline(found) for user_id, found in blocked.items()}


async def load_calendars(
    db: WorkspaceDB, user_ids: Sequence[str], start: datetime, end: datetime, *, busy: bool = True
) -> dict[str, StaffCalendar]:
    """Everyone's working hours, time off and (busy=True) blocked time around [start, end), in at most four
    queries. `db` should be ctx.db.unfiltered: invariants see every booking."""
    ids = list(user_ids)
    hours = await calendar.weekly_hours(db, ids)
    margin = timedelta(days=1)
    off = await calendar.time_off(db, ids, start - margin, end + margin)
    blocked = await load_busy(db, ids, start, end) if busy else {}
    return {
        user_id: StaffCalendar(
            working=weekly_minutes(hours[user_id]) if user_id in hours else None,
            time_off=Timeline(off[user_id]),
            busy=blocked.get(user_id) or Timeline([]),
        )
        for user_id in ids
    }


_MESSAGES = {
    "too_soon": "{when} is sooner than the minimum notice allows.",
    "too_far": "{when} is further ahead than the maximum advance allows.",
    "closed": "The business is closed on {day}.",
    "outside_hours": "{when} ({minutes} min) is outside the opening hours or {who}'s working hours.",
    "time_off": "{who} is away (time off) at {when}.",
    "staff_busy": "{who} is already booked at {when} (buffers included).",
}


def refuse(reason: str, *, rules: Rules, service: Service, staff_user_id: str, starts_at: datetime) -> FavError:
    local = starts_at.astimezone(rules.tz)
    message = _MESSAGES[reason].format(
        when=local.isoformat(timespec="minutes"),
        day=local.date().isoformat(),
        minutes=service.duration_minutes,
        who=staff_user_id,
    )
    return invalid_state(
        message,
        current=reason,
        reason=reason,
        hint=SLOTS_HINT,
        service_id=service.id,
        staff_user_id=staff_user_id,
        starts_at=starts_at.astimezone(UTC).isoformat(),
    )


# -- the contracts other code calls ----------------------------------------------------------------------------


async def ensure_bookable(ctx: ToolContext, service: Service, staff_user_id: str, starts_at: datetime) -> None:
    """Refuse (invalid_state, details.reason too_soon, too_far, closed, outside_hours, time_off) a start that
    breaks notice/advance, falls outside opening or working hours or on a closure date, or whose blocked span
    overlaps the staff member's time off. Other bookings are not checked here (placement does that, locked)."""
    rules = await load_rules(ctx)
    span = services.span(service, starts_at)
    cals = await load_calendars(ctx.db.unfiltered, [staff_user_id], span.blocked_from, span.blocked_until, busy=False)
    reason = refusal(rules, shape_of(service), cals[staff_user_id], starts_at, busy=False)
    if reason is not None:
        raise refuse(reason, rules=rules, service=service, staff_user_id=staff_user_id, starts_at=starts_at)


async def candidate_staff(ctx: ToolContext, service: Service, starts_at: datetime) -> list[str]:
    """The service's staff who could take `starts_at` (every rule of ensure_bookable) and look free now, fewest
    active bookings that local day first, then by id."""
    staff = await services.staff_of(ctx, service.id)
    if not staff:
        return []
    rules = await load_rules(ctx)
    span = services.span(service, starts_at)
    cals = await load_calendars(ctx.db.unfiltered, staff, span.blocked_from, span.blocked_until)
    shape = shape_of(service)
    free = [u for u in staff if refusal(rules, shape, cals[u], starts_at, busy=True) is None]
    if len(free) < 2:
        return free
    day = starts_at.astimezone(rules.tz).date()
    day_start, day_end = instant(day, 0, rules.tz), instant(day, 1440, rules.tz)
    db = ctx.db.unfiltered
    counts = dict(
        await db.rows(
            db.select_columns(Booking, col(Booking.staff_user_id), func.count())
            .where(
                col(Booking.staff_user_id).in_(free),
                col(Booking.status).in_(ACTIVE),
                col(Booking.starts_at) >= day_start,
                col(Booking.starts_at) < day_end,
            )
            .group_by(col(Booking.staff_user_id))
        )
    )
    return sorted(free, key=lambda u: (counts.get(u, 0), u))


async def available_minutes(
    ctx: ToolContext, user_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, int]:
    """Per staff member, minutes of (opening hours ∩ working hours - closures - time off) in [start, end)."""
    rules = await load_rules(ctx)
    ids = list(user_ids)
    cals = await load_calendars(ctx.db.unfiltered, ids, start, end, busy=False)
    return {u: free_minutes(rules, cals[u], start, end) for u in ids}


# -- the tool ----------------------------------------------------------------------------------------------------


class GetAvailableSlotsInput(ToolInput):
    service_id: ServiceId
    staff_id: StaffId | None = Field(default=None, description="Only this staff member's slots.")
    from_date: CalendarDate = Field(description="First local date (workspace timezone).")
    to_date: CalendarDate = Field(description=f"Last local date, included; at most {MAX_DAYS} days in all.")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")

    @model_validator(mode="after")
    def _check(self) -> GetAvailableSlotsInput:
        if self.to_date < self.from_date:
            raise ValueError("to_date must not be before from_date")
        if (self.to_date - self.from_date).days + 1 > MAX_DAYS:
            raise ValueError(f"the range is at most {MAX_DAYS} days")
        return self


class Slot(Schema):
    starts_at: datetime
    ends_at: datetime
    staff_user_id: str
    class_session_id: str | None = Field(default=None, description="For a class: the session to book.")
    seats_left: int | None = Field(default=None, description="For a class: free seats.")


class SlotPage(Page[Slot]):
    service_id: str
    timezone: str = Field(description="The workspace timezone of from_date and to_date.")


def _after(cursor: str | None) -> tuple[datetime, str, str] | None:
    if not cursor:
        return None
    key = decode_cursor(cursor)
    try:
        return datetime.fromisoformat(key["t"]).astimezone(UTC), key["u"], key.get("c", "")
    except (KeyError, ValueError, TypeError):
        raise validation_failed(
            "The cursor is not one this server issued.",
            [FieldError(field="cursor", message="pass next_cursor from a previous page unchanged")],
        ) from None


def _cursor(slot: Slot) -> str:
    key = {"t": slot.starts_at.astimezone(UTC).isoformat(), "u": slot.staff_user_id}
    return encode_cursor({**key, "c": slot.class_session_id} if slot.class_session_id else key)


async def _class_slots(
    ctx: ToolContext,
    service: Service,
    staff: list[str],
    rules: Rules,
    window: tuple[datetime, datetime],
    after: tuple[datetime, str, str] | None,
    take: int,
) -> list[Slot]:
    start, end = window
    db = ctx.db.unfiltered
    later = []
    if after is not None:
        t, u, c = after
        later.append(
            or_(
                col(ClassSession.starts_at) > t,
                and_(
                    col(ClassSession.starts_at) == t,
                    or_(
                        col(ClassSession.staff_user_id) > u,
                        and_(col(ClassSession.staff_user_id) == u, col(ClassSession.id) > c),
                    ),
                ),
            )
        )
    sessions = await db.all(
        db.select(
            ClassSession,
            *later,
            col(ClassSession.service_id) == service.id,
            col(ClassSession.status) == SessionStatus.scheduled,
            col(ClassSession.staff_user_id).in_(staff),
            col(ClassSession.booked) < col(ClassSession.capacity),
            col(ClassSession.starts_at) >= max(start, rules.earliest),
            col(ClassSession.starts_at) < end,
            col(ClassSession.starts_at) <= rules.latest,
        )
        .order_by(col(ClassSession.starts_at), col(ClassSession.staff_user_id), col(ClassSession.id))
        .limit(take)
    )
    return [
        Slot(
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            staff_user_id=s.staff_user_id,
            class_session_id=s.id,
            seats_left=s.capacity - s.booked,
        )
        for s in sessions
    ]


async def _appointment_slots(
    ctx: ToolContext,
    service: Service,
    staff: list[str],
    rules: Rules,
    args: GetAvailableSlotsInput,
    first: date,
    after: tuple[datetime, str, str] | None,
) -> list[Slot]:
    """Up to limit + 1 free slots from `first`, day by day. Busy time is read in growing chunks of days (2, 7, then
    the rest: at most three pairs of queries), so a first page that fills early reads little."""
    shape = shape_of(service)
    first = max(first, rules.earliest.astimezone(rules.tz).date())
    last = min(args.to_date, rules.latest.astimezone(rules.tz).date())
    if last < first:
        return []
    db = ctx.db.unfiltered
    cals = await load_calendars(db, staff, instant(first, 0, rules.tz), instant(last, 1440, rules.tz), busy=False)
    found: list[Slot] = []
    day = first
    for size in (2, 7, MAX_DAYS):
        if day > last:
            break
        chunk_last = min(last, day + timedelta(days=size - 1))
        busy = await load_busy(db, staff, instant(day, 0, rules.tz), instant(chunk_last, 1440, rules.tz))
        for user_id in staff:
            cals[user_id].busy = busy[user_id]
        for starts_at, ends_at, user_id in iter_slots(rules, shape, cals, day, chunk_last):
            if after is not None and (starts_at, user_id, "") <= after:
                continue
            found.append(Slot(starts_at=starts_at, ends_at=ends_at, staff_user_id=user_id))
            if len(found) > args.limit:
                return found
        day = chunk_last + timedelta(days=1)
    return found


@tool(
    domain="bookings",
    title="Get available slots",
    hints="R I",
    scope="bookings:read",
    route="GET /v1/services/{service_id}/slots",
)
async def get_available_slots(ctx: ToolContext, args: GetAvailableSlotsInput) -> SlotPage:
    """Free start times for a service over local dates (at most 62 days), optionally with one staff member: opening
    hours, working hours, time off, buffers, existing bookings, notice and advance rules. For a class: its
    sessions with free seats. Book one with create_booking. Refuses archived services."""
    service = await services.load_bookable(ctx, args.service_id)
    if args.staff_id is not None:
        await services.ensure_delivers(ctx, service, args.staff_id)
        staff = [args.staff_id]
    else:
        staff = await services.staff_of(ctx, service.id)
    rules = await load_rules(ctx)
    after = _after(args.cursor)
    first = args.from_date if after is None else max(args.from_date, after[0].astimezone(rules.tz).date())
    start = max(instant(first, 0, rules.tz), rules.earliest)
    end = min(instant(args.to_date, 1440, rules.tz), rules.latest + timedelta(minutes=1))
    found: list[Slot] = []
    if staff and start < end:
        if service.is_class:
            found = await _class_slots(ctx, service, staff, rules, (start, end), after, args.limit + 1)
        else:
            found = await _appointment_slots(ctx, service, staff, rules, args, first, after)
    page = found[: args.limit]
    more = len(found) > args.limit
    return SlotPage(
        items=page,
        next_cursor=_cursor(page[-1]) if more else None,
        has_more=more,
        service_id=service.id,
        timezone=rules.tz.key,
    )


TOOLS: list[ToolSpec] = [get_available_slots]
