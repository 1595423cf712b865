"""Races of the classes domain: seats never past capacity, two seats freed at once promoting the two earliest
waiting customers exactly once, an instructor never in two overlapping sessions, waitlists joined, left and closed
once however many calls race."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlmodel import col

from favmcp.domains.bookings.models import ACTIVE, Booking, BookingStatus
from favmcp.domains.classes.models import ClassSession, SessionStatus, WaitlistEntry, WaitlistStatus
from favmcp.domains.members.models import MemberEvent
from favmcp.registry.models import StateTransition
from tests.race_kit import RACER, Call, N, Outcome, Scenario, Stage, as_owner, member, ok, oks, rows, tokens

SEATS = 5


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def klass(s: Stage, capacity: int, *, days: int = 3) -> None:
    """A class service the owner teaches and one session of it, `days` from now."""
    s.service = (
        await ok(
            s,
            "create_service",
            {
                "name": "Spin",
                "duration_minutes": 45,
                "unit_amount": 1200,
                "capacity": 20,
                "staff_ids": [s.owner.user_id],
            },
        )
    )["id"]
    s.start = (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    made = await ok(
        s, "schedule_class_session",
        {"service_id": s.service, "staff_id": s.owner.user_id, "starts_at": iso(s.start), "capacity": capacity},
    )  # fmt: skip
    s.session = made["sessions"][0]["id"]


def seat(s: Stage, member_id: str) -> dict[str, Any]:
    return {"member_id": member_id, "service_id": s.service, "class_session_id": s.session}


async def session_row(s: Stage) -> ClassSession:
    [row] = await rows(s, ClassSession, col(ClassSession.id) == s.session)
    return row


async def active(s: Stage) -> list[Booking]:
    return await rows(s, Booking, col(Booking.class_session_id) == s.session, col(Booking.status).in_(ACTIVE))


async def line(s: Stage) -> list[WaitlistEntry]:
    found = await rows(s, WaitlistEntry, col(WaitlistEntry.class_session_id) == s.session)
    return sorted(found, key=lambda e: e.id)


# -- seats -----------------------------------------------------------------------------------------------------


async def setup_scarce_seats(s: Stage) -> None:
    await klass(s, SEATS)
    s.members = [await member(s, f"M{i}") for i in range(N)]


async def check_scarce_seats(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == SEATS, "exactly the seats are booked"
    assert all(o.details["reason"] == "full" and o.details["class_session_id"] == s.session for o in outs if not o.ok)
    assert (await session_row(s)).booked == SEATS == len(await active(s))


# -- promotion -------------------------------------------------------------------------------------------------


async def setup_two_freed(s: Stage) -> None:
    await klass(s, 2)
    holders = [await member(s, f"Holder {i}") for i in range(2)]
    s.bookings = [(await ok(s, "create_booking", seat(s, m)))["id"] for m in holders]
    s.waiting = []
    for i in range(3):
        m = await member(s, f"Waiting {i}")
        s.waiting.append((await ok(s, "join_waitlist", {"member_id": m, "class_session_id": s.session}))["member_id"])
    s.tokens = [await tokens(s, "cancel_booking", {"booking_id": b}, N // 2) for b in s.bookings]


def cancel_either(s: Stage, i: int) -> Call:
    booking = i % 2
    return as_owner(
        s, "cancel_booking", {"booking_id": s.bookings[booking], "confirmation_token": s.tokens[booking][i // 2]}
    )


async def check_two_promoted_once(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data["status"] == "cancelled" for o in outs)
    entries = await line(s)
    assert [e.status for e in entries] == [WaitlistStatus.promoted, WaitlistStatus.promoted, WaitlistStatus.waiting]
    holding = await active(s)
    assert sorted(b.member_id for b in holding) == sorted(s.waiting[:2]), "the two earliest entries hold the seats"
    assert sorted(b.id for b in holding) == sorted(e.booking_id or "" for e in entries[:2])
    assert (await session_row(s)).booked == 2
    for booking_id in s.bookings:
        moves = await rows(s, StateTransition, col(StateTransition.entity_id) == booking_id)
        assert [m.to_state for m in moves].count("cancelled") == 1


async def setup_freed_while_booking(s: Stage) -> None:
    await klass(s, 1)
    s.booking = (await ok(s, "create_booking", seat(s, await member(s, "Holder"))))["id"]
    s.waiting = [await member(s, f"Waiting {i}") for i in range(2)]
    for m in s.waiting:
        await ok(s, "join_waitlist", {"member_id": m, "class_session_id": s.session})
    [s.token] = await tokens(s, "cancel_booking", {"booking_id": s.booking}, 1)


def freed_while_booking(s: Stage, i: int) -> Call:
    """The seat frees while the waiting customers try to book it themselves."""
    if i == RACER:
        return as_owner(s, "cancel_booking", {"booking_id": s.booking, "confirmation_token": s.token})
    return as_owner(s, "create_booking", seat(s, s.waiting[i % 2]))


async def check_freed_while_booking(s: Stage, outs: list[Outcome]) -> None:
    assert outs[RACER].ok
    assert all(o.details["reason"] in {"full", "customer_busy"} for o in outs if not o.ok)
    [holding] = await active(s)
    assert holding.member_id in s.waiting and (await session_row(s)).booked == 1, "the seat is taken exactly once"
    promoted = [e for e in await line(s) if e.status == WaitlistStatus.promoted]
    assert len(promoted) <= 1 and all(e.booking_id == holding.id for e in promoted)
    assert len([o for o in oks(outs) if o.i != RACER]) + len(promoted) == 1


# -- scheduling ------------------------------------------------------------------------------------------------


async def setup_overlapping_sessions(s: Stage) -> None:
    await klass(s, 10, days=5)


def overlapping_session(s: Stage, i: int) -> Call:
    start = s.start + timedelta(days=1, minutes=30 * (i % 4))
    return as_owner(
        s, "schedule_class_session", {"service_id": s.service, "staff_id": s.owner.user_id, "starts_at": iso(start)}
    )


async def check_never_overlapping(s: Stage, outs: list[Outcome]) -> None:
    assert oks(outs), "some session was scheduled"
    assert all(o.details["reason"] == "staff_busy" for o in outs if not o.ok)
    sessions = await rows(
        s, ClassSession, col(ClassSession.staff_user_id) == s.owner.user_id, col(ClassSession.status) == "scheduled"
    )
    spans = sorted((x.blocked_from, x.blocked_until) for x in sessions)
    assert all(a[1] <= b[0] for a, b in pairwise(spans)), "the instructor's sessions never overlap"
    assert len(sessions) == 1 + len(oks(outs))


# -- waitlists -------------------------------------------------------------------------------------------------

JOINERS = 4


async def setup_full_session(s: Stage) -> None:
    await klass(s, 1)
    await ok(s, "create_booking", seat(s, await member(s, "Holder")))
    s.members = [await member(s, f"W{i}") for i in range(JOINERS)]


async def check_joined_once_each(s: Stage, outs: list[Outcome]) -> None:
    entries = await line(s)
    assert sorted(e.member_id for e in entries) == sorted(s.members), "one entry per customer"
    assert all(e.status == WaitlistStatus.waiting for e in entries)
    by_member = {e.member_id: e.id for e in entries}
    assert all(o.result.data["entry_id"] == by_member[o.result.data["member_id"]] for o in outs)
    positions = {o.result.data["member_id"]: o.result.data["position"] for o in outs}
    assert len(positions) == JOINERS and all(1 <= p <= JOINERS for p in positions.values())


async def setup_one_entry(s: Stage) -> None:
    await setup_full_session(s)
    s.entry = (await ok(s, "join_waitlist", {"member_id": s.members[0], "class_session_id": s.session}))["entry_id"]


async def check_left_once(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data["status"] == "left" and o.result.data["entry_id"] == s.entry for o in outs)
    [entry] = await line(s)
    assert entry.status == WaitlistStatus.left
    timeline = await rows(s, MemberEvent, col(MemberEvent.member_id) == s.members[0])
    assert [e.kind for e in timeline].count("waitlist.left") == 1, "left once, whoever answered"


async def setup_cancel_session(s: Stage) -> None:
    await klass(s, 2)
    s.bookings = [(await ok(s, "create_booking", seat(s, await member(s, f"B{i}"))))["id"] for i in range(2)]
    await ok(s, "join_waitlist", {"member_id": await member(s, "W"), "class_session_id": s.session})
    s.tokens = await tokens(s, "cancel_class_session", {"class_session_id": s.session}, N)


async def check_session_cancelled_once(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data == outs[RACER].result.data for o in outs), "every call answers the same"
    assert outs[RACER].result.data["bookings_cancelled"] == 2
    row = await session_row(s)
    assert row.status == SessionStatus.cancelled and row.booked == 0
    for booking_id in s.bookings:
        [booking] = await rows(s, Booking, col(Booking.id) == booking_id)
        assert booking.status == BookingStatus.cancelled and not booking.fee_amount and not booking.late_cancel
        moves = await rows(s, StateTransition, col(StateTransition.entity_id) == booking_id)
        assert [m.to_state for m in moves].count("cancelled") == 1
    assert [e.status for e in await line(s)] == [WaitlistStatus.closed]


SCENARIOS: dict[str, Scenario] = {
    "create_booking: twenty for a class of five seats": Scenario(
        "create_booking",
        setup_scarce_seats,
        lambda s, i: as_owner(s, "create_booking", seat(s, s.members[i])),
        check_scarce_seats,
        frozenset({"conflict"}),
    ),
    "cancel_booking: two seats freed at once with three waiting": Scenario(
        "cancel_booking",
        setup_two_freed,
        cancel_either,
        check_two_promoted_once,
    ),
    "cancel_booking: a seat freed while the waiting book it themselves": Scenario(
        "cancel_booking",
        setup_freed_while_booking,
        freed_while_booking,
        check_freed_while_booking,
        frozenset({"conflict"}),
    ),
    "schedule_class_session: overlapping sessions of one instructor": Scenario(
        "schedule_class_session",
        setup_overlapping_sessions,
        overlapping_session,
        check_never_overlapping,
        frozenset({"conflict"}),
    ),
    "join_waitlist: four customers, five calls each": Scenario(
        "join_waitlist",
        setup_full_session,
        lambda s, i: as_owner(s, "join_waitlist", {"member_id": s.members[i % JOINERS], "class_session_id": s.session}),
        check_joined_once_each,
    ),
    "leave_waitlist: twenty leaves of one entry": Scenario(
        "leave_waitlist",
        setup_one_entry,
        lambda s, i: as_owner(
            s,
            "leave_waitlist",
            {"entry_id": s.entry} if i % 2 else {"member_id": s.members[0], "class_session_id": s.session},
        ),
        check_left_once,
    ),
    "cancel_class_session: twenty cancels of one session": Scenario(
        "cancel_class_session",
        setup_cancel_session,
        lambda s, i: as_owner(
            s, "cancel_class_session", {"class_session_id": s.session, "confirmation_token": s.tokens[i]}
        ),
        check_session_cancelled_once,
    ),
}
