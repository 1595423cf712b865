"""Races of placing bookings: one staff slot wanted twenty times, one customer asking for twenty overlapping
appointments with different staff, a reschedule racing bookings of its target slot, confirm racing decline."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col

from favmcp.domains.bookings.models import ACTIVE, Booking
from favmcp.registry.models import StateTransition
from tests.race_kit import RACER, Call, N, Outcome, Scenario, Stage, as_owner, member, ok, oks, rows
from tests.support import join

TZ = ZoneInfo("Europe/Amsterdam")  # the signup's timezone
OPEN = {day: [{"open": "07:00", "close": "21:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
STAFF = 4


def local(hour: int, minute: int = 0, days: int = 2) -> str:
    day = datetime.now(TZ).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).isoformat()


async def studio(s: Stage, staff: int = 1) -> None:
    """Open every day 07:00-21:00; a 60-minute service with a 15-minute buffer after, delivered by the owner
    and `staff - 1` invited staff members."""
    await ok(s, "set_business_hours", {"weekly": OPEN, "closures": []})
    s.staff = [s.owner.user_id] + [(await join(s.app, s.owner)).user_id for _ in range(staff - 1)]
    made = await ok(
        s,
        "create_service",
        {"name": "Massage", "duration_minutes": 60, "unit_amount": 5000, "buffer_after_minutes": 15,
         "staff_ids": s.staff},
    )  # fmt: skip
    s.service = made["id"]


async def active_bookings(s: Stage, *where: Any) -> list[Booking]:
    return await rows(
        s, Booking, col(Booking.workspace_id) == s.owner.workspace_id, col(Booking.status).in_(ACTIVE), *where
    )


def overlapping(bookings: list[Booking]) -> list[tuple[str, str]]:
    ordered = sorted(bookings, key=lambda b: b.blocked_from)
    return [(a.id, b.id) for a, b in pairwise(ordered) if b.blocked_from < a.blocked_until]


# -- one staff slot ------------------------------------------------------------------------------------------------


async def setup_one_slot(s: Stage) -> None:
    await studio(s)
    s.members = [await member(s, f"M{i}") for i in range(N)]


def one_slot(s: Stage, i: int) -> Call:
    # overlapping starts (10:00, 10:15, 10:30, 10:45): each conflicts with every other, buffers included
    start = local(10, 15 * (i % 4))
    args = {"member_id": s.members[i], "service_id": s.service, "starts_at": start, "staff_id": s.owner.user_id}
    return as_owner(s, "create_booking", args)


async def check_one_slot(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 1, "exactly one booking takes the staff member's time"
    assert all(o.details["reason"] == "staff_busy" for o in outs if not o.ok)
    held = await active_bookings(s, col(Booking.staff_user_id) == s.owner.user_id)
    assert [b.id for b in held] == [oks(outs)[0].result.data["id"]]


# -- one customer, different staff ---------------------------------------------------------------------------------


async def setup_one_customer(s: Stage) -> None:
    await studio(s, STAFF)
    s.customer = await member(s, "Busy")


def one_customer(s: Stage, i: int) -> Call:
    args = {
        "member_id": s.customer,
        "service_id": s.service,
        "starts_at": local(12, 10 * (i % 5)),
        "staff_id": s.staff[i % STAFF],
    }
    return as_owner(s, "create_booking", args)


async def check_one_customer(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 1, "one customer never holds two overlapping bookings"
    assert all(o.details["reason"] in {"customer_busy", "staff_busy"} for o in outs if not o.ok)
    assert any(o.details.get("reason") == "customer_busy" for o in outs if not o.ok)
    held = await active_bookings(s, col(Booking.member_id) == s.customer)
    assert len(held) == 1 and overlapping(held) == []


# -- reschedule racing bookings of its target ----------------------------------------------------------------------


async def setup_reschedule_racing(s: Stage) -> None:
    await studio(s)
    s.mover = await member(s, "Mover")
    s.members = [await member(s, f"M{i}") for i in range(N)]
    s.original = await ok(
        s,
        "create_booking",
        {"member_id": s.mover, "service_id": s.service, "starts_at": local(9), "staff_id": s.owner.user_id},
    )
    s.target = local(15)


def reschedule_racing(s: Stage, i: int) -> Call:
    if i == RACER:
        return as_owner(s, "reschedule_booking", {"booking_id": s.original["id"], "starts_at": s.target})
    args = {"member_id": s.members[i], "service_id": s.service, "starts_at": s.target, "staff_id": s.owner.user_id}
    return as_owner(s, "create_booking", args)


async def check_reschedule_racing(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 1, "exactly one holder of the target slot"
    assert all(o.details["reason"] == "staff_busy" for o in outs if not o.ok)
    held = await active_bookings(s, col(Booking.staff_user_id) == s.owner.user_id)
    assert overlapping(held) == []
    [original] = [b for b in held if b.id == s.original["id"]]
    target = datetime.fromisoformat(s.target)
    if outs[RACER].ok:
        assert original.starts_at == target and original.reschedule_count == 1
        assert len(held) == 1
    else:
        assert original.starts_at == datetime.fromisoformat(s.original["starts_at"]), (
            "the loser's original is untouched"
        )
        assert original.reschedule_count == 0 and original.status == s.original["status"]
        assert len(held) == 2 and {b.starts_at for b in held} == {original.starts_at, target}


# -- confirm racing decline ----------------------------------------------------------------------------------------


async def setup_pending(s: Stage) -> None:
    await studio(s)
    await ok(s, "update_booking_settings", {"requires_confirmation": True})
    who = await member(s, "Waiting")
    made = await ok(s, "create_booking", {"member_id": who, "service_id": s.service, "starts_at": local(11)})
    assert made["status"] == "pending"
    s.booking = made["id"]


def confirm_racing_decline(s: Stage, i: int) -> Call:
    return as_owner(s, "confirm_booking", {"booking_id": s.booking, "decline": i == RACER})


async def check_confirm_racing_decline(s: Stage, outs: list[Outcome]) -> None:
    final = (await ok(s, "get_booking_detail", {"booking_id": s.booking}))["status"]
    moves = await rows(s, StateTransition, col(StateTransition.entity_id) == s.booking)
    assert len(moves) == 1 and moves[0].to_state == final, "one state change"
    if final == "declined":
        assert outs[RACER].ok and not any(o.ok for o in outs if o.i != RACER)
    else:
        assert final == "confirmed" and not outs[RACER].ok and all(o.ok for o in outs if o.i != RACER)
    assert all(o.details["current"] in {"declined", "confirmed"} for o in outs if not o.ok)


# -- class-pack credits ---------------------------------------------------------------------------------------------

CREDITS = 3


async def setup_credits(s: Stage) -> None:
    await studio(s)
    s.customer = await member(s, "Pack holder")
    plan = await ok(s, "create_plan", {"kind": "pack", "name": "Three", "unit_amount": 3000, "credits": CREDITS,
                                       "validity_days": 90})  # fmt: skip
    sold = await ok(s, "subscribe_member", {"member_id": s.customer, "plan_id": plan["id"]})
    sub = await ok(s, "get_subscription", {"subscription_id": sold.get("subscription", sold)["id"]})
    invoice = await ok(s, "get_invoice", {"invoice_id": sub["latest_invoice_id"]})
    await ok(s, "record_payment", {"invoice_id": invoice["id"], "amount": invoice["amount_remaining"],
                                   "method": "cash", "idempotency_key": f"pay-{s.customer}"})  # fmt: skip


def with_credit(s: Stage, i: int) -> Call:
    # twenty times that never overlap: only the credits are contested
    start = local(7 + 2 * (i % 7), days=2 + i // 7)
    args = {"member_id": s.customer, "service_id": s.service, "starts_at": start, "use_credit": True}
    return as_owner(s, "create_booking", args)


async def check_credits(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == CREDITS, "one credit per booking, never more bookings than credits"
    assert all(o.details["reason"] == "no_credit" for o in outs if not o.ok)
    held = await active_bookings(s, col(Booking.member_id) == s.customer)
    assert sorted(b.id for b in held) == sorted(o.result.data["id"] for o in oks(outs))
    reservations = {b.credit_reservation_id for b in held}
    assert None not in reservations and len(reservations) == CREDITS


SCENARIOS: dict[str, Scenario] = {
    "create_booking: twenty bookings paid with a pack of three credits (bookings)": Scenario(
        "create_booking", setup_credits, with_credit, check_credits, frozenset({"conflict"})
    ),
    "create_booking: twenty bookings for one staff slot (bookings)": Scenario(
        "create_booking", setup_one_slot, one_slot, check_one_slot, frozenset({"conflict"})
    ),
    "create_booking: one customer, twenty overlapping requests with four staff (bookings)": Scenario(
        "create_booking", setup_one_customer, one_customer, check_one_customer, frozenset({"conflict"})
    ),
    "reschedule_booking racing nineteen create_booking of its target slot (bookings)": Scenario(
        "reschedule_booking",
        setup_reschedule_racing,
        reschedule_racing,
        check_reschedule_racing,
        frozenset({"conflict"}),
    ),
    "confirm_booking: one decline racing nineteen confirms (bookings)": Scenario(
        "confirm_booking",
        setup_pending,
        confirm_racing_decline,
        check_confirm_racing_decline,
        frozenset({"invalid_state"}),
    ),
}
