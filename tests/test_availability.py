"""Availability: opening hours and closures ∩ working hours - time off - bookings widened by buffers, on the slot
step, within notice and advance, in the workspace timezone across daylight-saving changes; paging; the contracts
ensure_bookable, candidate_staff and available_minutes. On SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from favmcp.app import App
from favmcp.core.errors import FavError
from favmcp.core.ids import new_id
from favmcp.domains.bookings import availability
from favmcp.domains.bookings.models import Booking, BookingStatus
from favmcp.domains.services import service as services
from favmcp.registry.context import ToolContext
from tests.support import FakeClock, Owner, call, error_code, join, unique_email
from tests.test_services import new_service, ok

ALL_WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def setup(
    app: App,
    owner: Owner,
    clock: FakeClock,
    *,
    now: str,
    tz: str = "UTC",
    hours: list[dict[str, str]] | None = None,
    closures: list[str] | None = None,
    notice: int = 0,
    advance: int = 365,
    step: int = 30,
    **service: Any,
) -> dict[str, Any]:
    await ok(app, owner, "update_workspace", {"timezone": tz})
    weekly = {day: hours or [{"open": "09:00", "close": "12:00"}] for day in ALL_WEEK}
    await ok(app, owner, "set_business_hours", {"weekly": weekly, "closures": [{"date": d} for d in closures or []]})
    await ok(
        app, owner, "update_booking_settings",
        {"min_notice_minutes": notice, "max_advance_days": advance, "slot_step_minutes": step},
    )  # fmt: skip
    clock.current = utc(now)
    fields = {"duration_minutes": 30, "staff_ids": [owner.user_id], **service}
    return await new_service(app, owner, **fields)


async def slots(app: App, owner: Owner, service_id: str, first: str, last: str | None = None, **more: Any) -> list[Any]:
    """Every slot of the range, walking the pages."""
    found: list[Any] = []
    args = {"service_id": service_id, "from_date": first, "to_date": last or first, "limit": 100, **more}
    while True:
        page = await ok(app, owner, "get_available_slots", args)
        found += page["items"]
        if not page["has_more"]:
            return found
        args["cursor"] = page["next_cursor"]


def starts(found: list[Any]) -> list[datetime]:
    return [utc(s["starts_at"]) for s in found]


async def test_slots_follow_the_opening_hours_and_the_step(app: App, owner: Owner, clock: FakeClock) -> None:
    svc = await setup(app, owner, clock, now="2030-06-01T00:00:00Z", hours=[
        {"open": "09:00", "close": "11:00"}, {"open": "13:00", "close": "14:10"}
    ], duration_minutes=45)  # fmt: skip
    found = await slots(app, owner, svc["id"], "2030-06-03")
    assert [s.strftime("%H:%M") for s in starts(found)] == ["09:00", "09:30", "10:00", "13:00"]
    assert found[0]["ends_at"].startswith("2030-06-03T09:45") and found[0]["staff_user_id"] == owner.user_id


async def test_london_spring_forward_has_no_slot_in_the_missing_hour(app: App, owner: Owner, clock: FakeClock) -> None:
    svc = await setup(
        app, owner, clock, now="2027-03-01T00:00:00Z", tz="Europe/London",
        hours=[{"open": "00:00", "close": "04:00"}],
    )  # fmt: skip
    found = starts(await slots(app, owner, svc["id"], "2027-03-28"))
    # 01:00-02:00 local does not exist; 04:00 BST is 03:00 UTC.
    assert [s.strftime("%H:%M") for s in found] == ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30"]
    local = [s.astimezone(availability.ZoneInfo("Europe/London")).strftime("%H:%M") for s in found]
    assert local == ["00:00", "00:30", "02:00", "02:30", "03:00", "03:30"]
    before = starts(await slots(app, owner, svc["id"], "2027-03-27"))
    after = starts(await slots(app, owner, svc["id"], "2027-03-29"))
    assert before[0] == utc("2027-03-27T00:00:00Z") and len(before) == 8
    assert after[0] == utc("2027-03-28T23:00:00Z") and len(after) == 8


async def test_london_fall_back_offers_the_repeated_hour_once(app: App, owner: Owner, clock: FakeClock) -> None:
    svc = await setup(
        app, owner, clock, now="2027-10-01T00:00:00Z", tz="Europe/London",
        hours=[{"open": "00:00", "close": "04:00"}],
    )  # fmt: skip
    found = starts(await slots(app, owner, svc["id"], "2027-10-31"))
    assert len(found) == len(set(found)) == 8
    # 00:00 and 00:30 BST, 01:00 and 01:30 first occurrence (BST), then 02:00.. GMT; 04:00 GMT closes.
    assert [s.strftime("%dT%H:%M") for s in found] == [
        "30T23:00", "30T23:30", "31T00:00", "31T00:30", "31T02:00", "31T02:30", "31T03:00", "31T03:30",
    ]  # fmt: skip
    before = starts(await slots(app, owner, svc["id"], "2027-10-30"))
    after = starts(await slots(app, owner, svc["id"], "2027-11-01"))
    assert before[0] == utc("2027-10-29T23:00:00Z") and after[0] == utc("2027-11-01T00:00:00Z")


async def test_a_half_hour_offset_zone(app: App, owner: Owner, clock: FakeClock) -> None:
    svc = await setup(
        app, owner, clock, now="2030-01-01T00:00:00Z", tz="Asia/Kolkata", step=60, duration_minutes=60
    )  # fmt: skip
    found = starts(await slots(app, owner, svc["id"], "2030-01-07"))
    assert found == [utc("2030-01-07T03:30:00Z"), utc("2030-01-07T04:30:00Z"), utc("2030-01-07T05:30:00Z")]


async def test_lord_howe_half_hour_daylight_saving(app: App, owner: Owner, clock: FakeClock) -> None:
    svc = await setup(
        app, owner, clock, now="2027-09-01T00:00:00Z", tz="Australia/Lord_Howe",
        hours=[{"open": "01:00", "close": "04:00"}],
    )  # fmt: skip
    found = starts(await slots(app, owner, svc["id"], "2027-10-03"))  # 02:00 jumps to 02:30
    assert [s.strftime("%dT%H:%M") for s in found] == ["02T14:30", "02T15:00", "02T15:30", "02T16:00", "02T16:30"]


async def test_notice_and_advance_edges(app: App, owner: Owner, clock: FakeClock) -> None:
    svc = await setup(
        app, owner, clock, now="2030-06-03T08:00:00Z", hours=[{"open": "00:00", "close": "24:00"}],
        notice=60, advance=1, step=15,
    )  # fmt: skip
    found = starts(await slots(app, owner, svc["id"], "2030-06-03", "2030-06-05"))
    assert found[0] == utc("2030-06-03T09:00:00Z"), "exactly at the minimum notice is allowed"
    assert found[-1] == utc("2030-06-04T08:00:00Z"), "exactly at the maximum advance is allowed"
    assert len(found) == 23 * 4 + 1 - 1, "23:45 would end past the day's closing at 24:00"

    async def check(ctx: ToolContext) -> dict[str, str | None]:
        service = await services.load(ctx, svc["id"])
        reasons: dict[str, str | None] = {}
        for when in ("2030-06-03T08:45:00Z", "2030-06-03T09:00:00Z", "2030-06-04T08:00:00Z", "2030-06-04T08:15:00Z"):
            try:
                await availability.ensure_bookable(ctx, service, owner.user_id, utc(when))
                reasons[when] = None
            except FavError as refused:
                assert refused.code == "invalid_state"
                reasons[when] = (refused.body.details or {})["reason"]
        return reasons

    assert await app.runner.run_system(owner.workspace_id, "test", check) == {
        "2030-06-03T08:45:00Z": "too_soon",
        "2030-06-03T09:00:00Z": None,
        "2030-06-04T08:00:00Z": None,
        "2030-06-04T08:15:00Z": "too_far",
    }


async def test_closures_working_hours_and_time_off(app: App, owner: Owner, clock: FakeClock) -> None:
    svc = await setup(app, owner, clock, now="2030-06-01T00:00:00Z", closures=["2030-06-04"], buffer_after_minutes=15)
    assert await slots(app, owner, svc["id"], "2030-06-04") == []
    await ok(app, owner, "set_staff_working_hours", {
        "user_id": owner.user_id, "weekly": {"mon": [{"open": "10:00", "close": "18:00"}], "wed": []},
    })  # fmt: skip
    monday = starts(await slots(app, owner, svc["id"], "2030-06-03"))
    assert [s.strftime("%H:%M") for s in monday] == ["10:00", "10:30", "11:00", "11:30"]
    assert await slots(app, owner, svc["id"], "2030-06-05") == [], "a weekday left out is a day off"
    await ok(app, owner, "add_staff_time_off", {
        "user_id": owner.user_id, "starts_at": "2030-06-03T11:00:00Z", "ends_at": "2030-06-03T11:30:00Z",
    })  # fmt: skip
    monday = starts(await slots(app, owner, svc["id"], "2030-06-03"))
    # 10:30 ends at 11:00 but its buffer runs to 11:15, into the time off.
    assert [s.strftime("%H:%M") for s in monday] == ["10:00", "11:30"]

    async def reasons(ctx: ToolContext) -> list[str | None]:
        service = await services.load(ctx, svc["id"])
        found: list[str | None] = []
        for when in ("2030-06-03T10:30:00Z", "2030-06-04T10:00:00Z", "2030-06-03T09:30:00Z", "2030-06-03T11:45:00Z"):
            try:
                await availability.ensure_bookable(ctx, service, owner.user_id, utc(when))
                found.append(None)
            except FavError as refused:
                found.append((refused.body.details or {})["reason"])
        return found

    assert await app.runner.run_system(owner.workspace_id, "test", reasons) == [
        "time_off", "closed", "outside_hours", "outside_hours",
    ]  # fmt: skip


async def book_directly(
    app: App, owner: Owner, svc: dict[str, Any], staff: str, start: str, status: BookingStatus = BookingStatus.confirmed
) -> None:
    """An existing booking, as the placement code would leave it (create_booking is another helper's)."""
    member = await ok(app, owner, "create_member", {"name": "Sam Lee", "email": unique_email("sam")})

    async def work(ctx: ToolContext) -> None:
        service = await services.load(ctx, svc["id"])
        span = services.span(service, utc(start))
        ctx.db.add(
            Booking(
                id=new_id("bkg"), workspace_id=ctx.workspace_id, member_id=member["id"], service_id=service.id,
                staff_user_id=staff, status=status, starts_at=span.starts_at, ends_at=span.ends_at,
                blocked_from=span.blocked_from, blocked_until=span.blocked_until, unit_amount=service.unit_amount,
                currency=service.currency, created_at=ctx.now, updated_at=ctx.now,
            )
        )  # fmt: skip

    await app.runner.run_system(owner.workspace_id, "test", work)


async def test_bookings_block_their_span_widened_by_buffers(app: App, owner: Owner, clock: FakeClock) -> None:
    svc = await setup(
        app, owner, clock, now="2030-06-01T00:00:00Z", step=15,
        buffer_before_minutes=15, buffer_after_minutes=15,
    )  # fmt: skip
    await book_directly(app, owner, svc, owner.user_id, "2030-06-03T10:00:00Z")  # blocks 09:45-10:45
    await book_directly(app, owner, svc, owner.user_id, "2030-06-03T11:00:00Z", BookingStatus.cancelled)
    found = [s.strftime("%H:%M") for s in starts(await slots(app, owner, svc["id"], "2030-06-03"))]
    # A slot blocks [start - 15, start + 45): free when that ends by 09:45 or begins at 10:45 or later.
    assert found == ["09:00", "11:00", "11:15", "11:30"]

    async def who(ctx: ToolContext) -> tuple[list[str], list[str], dict[str, int]]:
        service = await services.load(ctx, svc["id"])
        busy = await availability.candidate_staff(ctx, service, utc("2030-06-03T10:15:00Z"))
        free = await availability.candidate_staff(ctx, service, utc("2030-06-03T11:00:00Z"))
        minutes = await availability.available_minutes(
            ctx, [owner.user_id], utc("2030-06-03T00:00:00Z"), utc("2030-06-05T00:00:00Z")
        )
        return busy, free, minutes

    busy, free, minutes = await app.runner.run_system(owner.workspace_id, "test", who)
    assert busy == [] and free == [owner.user_id] and minutes == {owner.user_id: 360}


async def test_candidate_staff_fewest_bookings_first_and_a_staff_filter(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    sofia = await join(app, owner)
    svc = await setup(app, owner, clock, now="2030-06-01T00:00:00Z", step=60, duration_minutes=60)
    await ok(
        app, owner, "assign_staff_to_service", {"service_id": svc["id"], "staff_ids": [owner.user_id, sofia.user_id]}
    )
    first, second = sorted([owner.user_id, sofia.user_id])
    await book_directly(app, owner, svc, first, "2030-06-03T09:00:00Z")
    everyone = [(s["starts_at"][11:16], s["staff_user_id"]) for s in await slots(app, owner, svc["id"], "2030-06-03")]
    assert everyone == [("09:00", second), ("10:00", first), ("10:00", second), ("11:00", first), ("11:00", second)]
    mine = await slots(app, owner, svc["id"], "2030-06-03", staff_id=sofia.user_id)
    assert {s["staff_user_id"] for s in mine} == {sofia.user_id} and len(mine) == 3
    stranger = await join(app, owner)
    refused = await call(app, owner.key, "get_available_slots", {
        "service_id": svc["id"], "from_date": "2030-06-03", "to_date": "2030-06-03", "staff_id": stranger.user_id,
    })  # fmt: skip
    assert error_code(refused) == "invalid_state"

    async def order(ctx: ToolContext) -> list[str]:
        return await availability.candidate_staff(ctx, await services.load(ctx, svc["id"]), utc("2030-06-03T11:00:00Z"))

    assert await app.runner.run_system(owner.workspace_id, "test", order) == [second, first]


async def test_paging_walks_every_slot_once(app: App, owner: Owner, clock: FakeClock) -> None:
    sofia = await join(app, owner)
    svc = await setup(app, owner, clock, now="2030-06-01T00:00:00Z", step=30)
    await ok(
        app, owner, "assign_staff_to_service", {"service_id": svc["id"], "staff_ids": [owner.user_id, sofia.user_id]}
    )
    whole = await slots(app, owner, svc["id"], "2030-06-03", "2030-06-09")
    assert len(whole) == 7 * 6 * 2
    walked: list[Any] = []
    args: dict[str, Any] = {"service_id": svc["id"], "from_date": "2030-06-03", "to_date": "2030-06-09", "limit": 7}
    while True:
        page = await ok(app, owner, "get_available_slots", args)
        assert len(page["items"]) <= 7
        walked += page["items"]
        if not page["has_more"]:
            break
        args["cursor"] = page["next_cursor"]
    assert walked == whole
    keys = [(s["starts_at"], s["staff_user_id"]) for s in walked]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    bad = await call(app, owner.key, "get_available_slots", {**args, "cursor": "nonsense"})
    assert error_code(bad) == "validation_failed"


@pytest.mark.parametrize("bad", [
    {"from_date": "2030-06-03", "to_date": "2030-06-02"},
    {"from_date": "2030-01-01", "to_date": "2030-03-04"},
    {"from_date": "2030-01-01", "to_date": "2030-01-01", "limit": 101},
])  # fmt: skip
async def test_bad_ranges_are_refused(app: App, owner: Owner, bad: dict[str, Any]) -> None:
    svc = await new_service(app, owner)
    assert error_code(await call(app, owner.key, "get_available_slots", {"service_id": svc["id"], **bad})) == (
        "validation_failed"
    )


def test_pure_slot_arithmetic_across_a_gap() -> None:
    zone = availability.ZoneInfo("America/New_York")
    rules = availability.Rules(
        tz=zone, opening={6: [(0, 240)]}, closures=frozenset(), step_minutes=60,
        earliest=datetime(2000, 1, 1, tzinfo=UTC), latest=datetime(2100, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    day = datetime(2030, 3, 10).date()  # 02:00 EST jumps to 03:00 EDT
    found = availability.day_slots(rules, availability.Shape(60), {"u": availability.StaffCalendar()}, day)
    assert [s.astimezone(zone).strftime("%H:%M") for s, _, _ in found] == ["00:00", "01:00", "03:00"]
    assert all(e - s == timedelta(minutes=60) for s, e, _ in found)


SERVICES = ({"duration_minutes": 45, "buffer_before_minutes": 15}, {"duration_minutes": 30, "buffer_after_minutes": 30})
_property_setup: dict[str, tuple[list[dict[str, Any]], str]] = {}


async def property_setup(app: App, owner: Owner, clock: FakeClock) -> tuple[list[dict[str, Any]], str]:
    """Once per workspace (hypothesis reuses the fixtures across examples): two services, two staff, one with
    working hours of their own, Europe/London over the October change."""
    if owner.workspace_id not in _property_setup:
        sofia = await join(app, owner)
        first = await setup(
            app, owner, clock, now="2027-10-25T00:00:00Z", tz="Europe/London", step=15,
            hours=[{"open": "00:00", "close": "03:00"}, {"open": "09:00", "close": "12:00"}], **SERVICES[0],
        )  # fmt: skip
        second = await new_service(app, owner, staff_ids=[owner.user_id], **SERVICES[1])
        for svc in (first, second):
            await ok(
                app,
                owner,
                "assign_staff_to_service",
                {"service_id": svc["id"], "staff_ids": [owner.user_id, sofia.user_id]},
            )
        weekly = {day: [{"open": "00:30", "close": "10:45"}] for day in ALL_WEEK}
        await ok(app, owner, "set_staff_working_hours", {"user_id": sofia.user_id, "weekly": weekly})
        _property_setup[owner.workspace_id] = ([first, second], sofia.user_id)
    return _property_setup[owner.workspace_id]


def blocked(shape: dict[str, Any], slot: dict[str, Any]) -> tuple[datetime, datetime]:
    before = timedelta(minutes=shape.get("buffer_before_minutes", 0))
    after = timedelta(minutes=shape.get("buffer_after_minutes", 0))
    return utc(slot["starts_at"]) - before, utc(slot["ends_at"]) + after


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_every_offered_slot_can_be_booked_and_then_is_gone(
    app: App, owner: Owner, clock: FakeClock, data: st.DataObject
) -> None:
    services_, _ = await property_setup(app, owner, clock)
    # Every draw comes first: the slots left depend on earlier examples (one workspace for all).
    pick = data.draw(st.integers(0, 1), label="service")
    offset = data.draw(st.integers(0, 5), label="day")
    choice = data.draw(st.integers(0, 10_000), label="slot")
    svc = services_[pick]
    day = (datetime(2027, 10, 28) + timedelta(days=offset)).date().isoformat()
    before = await slots(app, owner, svc["id"], day)
    if not before:
        return
    slot = before[choice % len(before)]
    member = await ok(app, owner, "create_member", {"name": "Sam Lee", "email": unique_email("sam")})
    made = await call(app, owner.key, "create_booking", {
        "member_id": member["id"], "service_id": svc["id"], "starts_at": slot["starts_at"],
        "staff_id": slot["staff_user_id"],
    })  # fmt: skip
    assert made.ok, (slot, made.data)
    assert utc(made.data["starts_at"]) == utc(slot["starts_at"]) and utc(made.data["ends_at"]) == utc(slot["ends_at"])
    taken = blocked(SERVICES[pick], slot)
    for other_pick, other in enumerate(services_):
        for left in await slots(app, owner, other["id"], day):
            if left["staff_user_id"] != slot["staff_user_id"]:
                continue
            span = blocked(SERVICES[other_pick], left)
            assert span[1] <= taken[0] or taken[1] <= span[0], ("overlapping slot still offered", slot, left)
    after = await slots(app, owner, svc["id"], day)
    assert slot not in after
    others = [s for s in before if s["staff_user_id"] != slot["staff_user_id"]]
    assert others == [s for s in after if s["staff_user_id"] != slot["staff_user_id"]], "other staff untouched"


async def test_a_class_offers_its_sessions_with_free_seats(app: App, owner: Owner, clock: FakeClock) -> None:
    svc = await setup(app, owner, clock, now="2030-06-01T00:00:00Z", capacity=2, duration_minutes=60)
    made = []
    for when in ("2030-06-03T11:00:00Z", "2030-06-03T09:00:00Z", "2030-06-04T09:00:00Z"):
        scheduled = await ok(app, owner, "schedule_class_session", {
            "service_id": svc["id"], "staff_id": owner.user_id, "starts_at": when,
        })  # fmt: skip
        made.append(scheduled["sessions"][0]["id"])
    member = await ok(app, owner, "create_member", {"name": "Sam Lee", "email": unique_email("sam")})
    seat = await call(app, owner.key, "create_booking", {
        "member_id": member["id"], "service_id": svc["id"], "class_session_id": made[1],
    })  # fmt: skip
    assert seat.ok, seat.data
    found = await slots(app, owner, svc["id"], "2030-06-03", "2030-06-04")
    assert [(s["class_session_id"], s["seats_left"]) for s in found] == [(made[1], 1), (made[0], 2), (made[2], 2)]
    other = await ok(app, owner, "create_member", {"name": "Kim Ng", "email": unique_email("kim")})
    full = await call(app, owner.key, "create_booking", {
        "member_id": other["id"], "service_id": svc["id"], "class_session_id": made[1],
    })  # fmt: skip
    assert full.ok, full.data
    found = await slots(app, owner, svc["id"], "2030-06-03", "2030-06-04")
    assert [s["class_session_id"] for s in found] == [made[0], made[2]], "a full session is not offered"
    walked, args = [], {"service_id": svc["id"], "from_date": "2030-06-03", "to_date": "2030-06-04", "limit": 1}
    while True:
        page = await ok(app, owner, "get_available_slots", args)
        walked += page["items"]
        if not page["has_more"]:
            break
        args["cursor"] = page["next_cursor"]
    assert walked == found
    appointment = await new_service(app, owner, name="Cut", duration_minutes=30, staff_ids=[owner.user_id])
    free = [s["starts_at"][11:16] for s in await slots(app, owner, appointment["id"], "2030-06-03")]
    assert free == ["10:00", "10:30"], "the instructor's scheduled sessions block appointments"
