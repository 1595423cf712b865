"""Races of how bookings end: a late cancel charges its fee once (twenty retries under one idempotency key, twenty
cancels with keys of their own), a no-show fee likewise, completing uses the class credit once, checking in
moves the booking once. Run alone: uv run pytest -q -n 2 tests/test_concurrency.py -k booking_outcomes"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col

from favmcp.domains.bookings.models import Booking
from favmcp.registry.models import EventRecord, StateTransition
from tests.race_kit import RACER, Call, N, Outcome, Scenario, Stage, as_owner, oks, rows, tokens
from tests.test_booking_outcomes import (
    FEE,
    NO_SHOW_FEE,
    book,
    credit_entries,
    credits_left,
    drafts_of,
    new_member,
    new_service,
    new_session,
    ok,
    paid_pack,
    set_rules,
)


async def _late_booking(s: Stage) -> None:
    await set_rules(s.app, s.owner, late_cancel_fee=FEE, no_show_fee=NO_SHOW_FEE)
    s.member = await new_member(s.app, s.owner)
    s.service = await new_service(s.app, s.owner)
    now = s.app.runner.clock.now()  # type: ignore[attr-defined]
    s.booking = await book(s.app, s.owner, s.member, s.service, now + timedelta(hours=2))


async def setup_one_key_cancel(s: Stage) -> None:
    await _late_booking(s)
    s.tokens = await tokens(s, "cancel_booking", {"booking_id": s.booking}, 1)


async def setup_many_cancels(s: Stage) -> None:
    await _late_booking(s)
    s.tokens = await tokens(s, "cancel_booking", {"booking_id": s.booking}, N)


async def _moves(s: Stage, to_state: str) -> int:
    found = await rows(s, StateTransition, col(StateTransition.entity_id) == s.booking)
    return [m.to_state for m in found].count(to_state)


async def _events(s: Stage, name: str) -> int:
    found = await rows(s, EventRecord, col(EventRecord.name) == name)
    return len([e for e in found if e.payload.get("booking_id") == s.booking])


async def _one_fee_line(s: Stage, amount: int) -> str:
    [draft] = await drafts_of(s.app, s.owner.key, s.member)
    assert [line["unit_amount"] for line in draft["lines"]] == [amount], "exactly one fee line"
    [row] = await rows(s, Booking, col(Booking.id) == s.booking)
    assert row.fee_invoice_id == draft["id"] and row.fee_amount == amount
    return str(draft["id"])


async def check_one_key_cancel(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    assert all(o.result.data == outs[0].result.data for o in outs), "twenty identical answers"
    assert outs[0].result.data["fee_amount"] == FEE
    await _one_fee_line(s, FEE)
    assert await _moves(s, "cancelled") == 1 and await _events(s, "booking.cancelled") == 1


async def check_many_cancels(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    invoice = await _one_fee_line(s, FEE)
    assert all(o.result.data["status"] == "cancelled" and o.result.data["fee_invoice_id"] == invoice for o in outs)
    assert len([o for o in outs if "already cancelled" not in o.result.data["message"]]) == 1, "one cancelled it"
    assert await _moves(s, "cancelled") == 1 and await _events(s, "booking.cancelled") == 1


async def setup_no_show(s: Stage) -> None:
    await set_rules(s.app, s.owner, late_cancel_fee=FEE, no_show_fee=NO_SHOW_FEE)
    s.member = await new_member(s.app, s.owner)
    s.service = await new_service(s.app, s.owner)
    now = s.app.runner.clock.now()  # type: ignore[attr-defined]
    s.booking = await book(s.app, s.owner, s.member, s.service, now - timedelta(minutes=5))


async def check_no_show(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    assert all(o.result.data["status"] == "no_show" and o.result.data["fee_amount"] == NO_SHOW_FEE for o in outs)
    await _one_fee_line(s, NO_SHOW_FEE)
    assert await _moves(s, "no_show") == 1 and await _events(s, "booking.no_show") == 1


async def _credit_booking(s: Stage) -> None:
    s.member = await new_member(s.app, s.owner)
    s.service = await new_service(s.app, s.owner)
    s.pack = await paid_pack(s.app, s.owner, s.member)
    now = s.app.runner.clock.now()  # type: ignore[attr-defined]
    s.booking = await book(s.app, s.owner, s.member, s.service, now + timedelta(minutes=30), credit=True)


async def setup_complete(s: Stage) -> None:
    await _credit_booking(s)
    await ok(s.app, s.owner.key, "check_in_booking", {"booking_id": s.booking})


async def check_complete(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    assert all(o.result.data == outs[0].result.data and o.result.data["status"] == "completed" for o in outs)
    assert await credit_entries(s.app, s.booking) == ["consume", "reserve"], "the credit is used once"
    assert await credits_left(s.app, s.owner, s.pack) == 9
    assert await _moves(s, "completed") == 1 and await _events(s, "booking.completed") == 1


async def check_check_in(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    assert all(o.result.data == outs[0].result.data and o.result.data["status"] == "checked_in" for o in outs)
    assert await _moves(s, "checked_in") == 1 and await _events(s, "booking.checked_in") == 1
    assert await credit_entries(s.app, s.booking) == ["reserve"], "checking in leaves the credit held"


async def setup_session_cancel_racing_cancels(s: Stage) -> None:
    await set_rules(s.app, s.owner, late_cancel_fee=FEE)
    yoga = await new_service(s.app, s.owner, name="Yoga", capacity=N)
    starts = s.app.runner.clock.now() + timedelta(hours=2)  # type: ignore[attr-defined]
    s.session = await new_session(s.app, s.owner, yoga, starts, capacity=N)
    s.members = [await new_member(s.app, s.owner) for _ in range(N)]
    s.bookings = [await book(s.app, s.owner, m, yoga, starts, session_id=s.session) for m in s.members]
    s.tokens = [(await tokens(s, "cancel_booking", {"booking_id": b}, 1))[0] for b in s.bookings]
    [s.session_token] = await tokens(s, "cancel_class_session", {"class_session_id": s.session}, 1)


def session_cancel_racing_cancels(s: Stage, i: int) -> Call:
    if i == RACER:
        args = {"class_session_id": s.session, "confirmation_token": s.session_token}
        return as_owner(s, "cancel_class_session", args)
    return as_owner(s, "cancel_booking", {"booking_id": s.bookings[i], "confirmation_token": s.tokens[i]})


async def check_session_cancel_racing_cancels(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs)
    by_session = outs[RACER].result.data["bookings_cancelled"]
    by_customer = [o for o in outs if o.i != RACER and "already cancelled" not in o.result.data["message"]]
    assert by_session + len(by_customer) == N, "each booking cancelled once, by its customer or with the session"
    found = await rows(s, Booking, col(Booking.class_session_id) == s.session)
    assert all(b.status == "cancelled" for b in found), "every seat's booking ends cancelled"
    charged = [b for b in found if b.fee_amount]
    assert len(charged) == len(by_customer), "a fee only where the customer's own late cancel won"
    for b in found:
        moves = await rows(s, StateTransition, col(StateTransition.entity_id) == b.id)
        assert [m.to_state for m in moves].count("cancelled") == 1


async def setup_cancel_racing_no_shows(s: Stage) -> None:
    await setup_no_show(s)  # started five minutes ago: late to cancel, and a no-show can be marked
    [s.token] = await tokens(s, "cancel_booking", {"booking_id": s.booking}, 1)


def cancel_racing_no_shows(s: Stage, i: int) -> Call:
    if i == RACER:
        return as_owner(s, "cancel_booking", {"booking_id": s.booking, "confirmation_token": s.token})
    return as_owner(s, "mark_no_show", {"booking_id": s.booking})


async def check_cancel_racing_no_shows(s: Stage, outs: list[Outcome]) -> None:
    [row] = await rows(s, Booking, col(Booking.id) == s.booking)
    if row.status == "cancelled":
        assert outs[RACER].ok and not any(o.ok for o in outs if o.i != RACER)
        await _one_fee_line(s, FEE)
    else:
        assert row.status == "no_show" and not outs[RACER].ok
        assert all(o.ok for o in outs if o.i != RACER)
        await _one_fee_line(s, NO_SHOW_FEE)
    assert all(o.details["current"] in {"cancelled", "no_show"} for o in outs if not o.ok)
    assert await _moves(s, "cancelled") + await _moves(s, "no_show") == 1, "one ending, one fee"


SCENARIOS: dict[str, Scenario] = {
    "cancel_booking (booking_outcomes): twenty retries of one late cancel under one key": Scenario(
        "cancel_booking",
        setup_one_key_cancel,
        lambda s, i: as_owner(s, "cancel_booking", {"booking_id": s.booking, "confirmation_token": s.tokens[0]}),
        check_one_key_cancel,
        one_key=True,
    ),
    "cancel_booking (booking_outcomes): twenty late cancels, each its own key": Scenario(
        "cancel_booking",
        setup_many_cancels,
        lambda s, i: as_owner(s, "cancel_booking", {"booking_id": s.booking, "confirmation_token": s.tokens[i]}),
        check_many_cancels,
    ),
    "mark_no_show (booking_outcomes): twenty no-shows of one booking": Scenario(
        "mark_no_show",
        setup_no_show,
        lambda s, i: as_owner(s, "mark_no_show", {"booking_id": s.booking}),
        check_no_show,
    ),
    "complete_booking (booking_outcomes): twenty completes use one credit": Scenario(
        "complete_booking",
        setup_complete,
        lambda s, i: as_owner(s, "complete_booking", {"booking_id": s.booking}),
        check_complete,
    ),
    "check_in_booking (booking_outcomes): twenty check-ins": Scenario(
        "check_in_booking",
        _credit_booking,
        lambda s, i: as_owner(s, "check_in_booking", {"booking_id": s.booking}),
        check_check_in,
    ),
    "cancel_class_session racing nineteen cancel_booking (booking_outcomes)": Scenario(
        "cancel_booking",
        setup_session_cancel_racing_cancels,
        session_cancel_racing_cancels,
        check_session_cancel_racing_cancels,
    ),
    "cancel_booking racing nineteen mark_no_show (booking_outcomes)": Scenario(
        "cancel_booking",
        setup_cancel_racing_no_shows,
        cancel_racing_no_shows,
        check_cancel_racing_no_shows,
        frozenset({"invalid_state"}),
    ),
}
