"""Races of the services domain and the booking settings: twenty concurrent assign_staff_to_service calls, each with
its own set, leave exactly one caller's set (never a mix of two, never a duplicate row); one key makes one service;
concurrent updates leave one caller's whole change; an archive happens once; the settings row is one caller's."""

from __future__ import annotations

from sqlmodel import col

from favmcp.domains.bookings.models import BookingSettings
from favmcp.domains.services.models import ServiceStaff
from tests.race_kit import Call, N, Outcome, Scenario, Stage, as_owner, changed_by, ok, oks, rows
from tests.support import join

STAFF = 4


async def setup_assign(s: Stage) -> None:
    s.staff = [s.owner.user_id] + [(await join(s.app, s.owner)).user_id for _ in range(STAFF - 1)]
    made = await ok(s, "create_service", {"name": "Cut", "duration_minutes": 30, "unit_amount": 2500})
    s.service = made["id"]


def staff_set(s: Stage, i: int) -> list[str]:
    """Call i's set: two or three of the four staff members, different for neighbouring calls."""
    return sorted({s.staff[i % STAFF], s.staff[(i + 1) % STAFF], s.staff[(i * 3) % STAFF]})


def assign(s: Stage, i: int) -> Call:
    return as_owner(s, "assign_staff_to_service", {"service_id": s.service, "staff_ids": staff_set(s, i)})


async def check_one_set(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == len(outs), "replacing the set never fails under concurrency"
    stored = sorted(r.user_id for r in await rows(s, ServiceStaff, col(ServiceStaff.service_id) == s.service))
    assert stored in [staff_set(s, o.i) for o in outs], ("a mix of two callers' sets", stored)
    listed = await ok(s, "list_services")
    assert listed["items"][0]["staff_ids"] == stored


async def nothing(s: Stage) -> None:
    s.name = f"Service {id(s)}"


async def check_one_service(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N and len({o.result.data["id"] for o in outs}) == 1, "one key, one service"
    listed = (await ok(s, "list_services", {"limit": 100}))["items"]
    assert [x["name"] for x in listed].count(s.name) == 1


async def setup_service(s: Stage) -> None:
    made = await ok(s, "create_service", {"name": "Cut", "duration_minutes": 30, "unit_amount": 2500})
    s.service = made["id"]


def update(s: Stage, i: int) -> Call:
    args = {"service_id": s.service, "name": f"Cut {i}", "unit_amount": 1000 + i, "duration_minutes": 30 + i}
    return as_owner(s, "update_service", args)


async def check_updated(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    [got] = (await ok(s, "list_services"))["items"]
    i = int(got["name"].removeprefix("Cut "))
    assert (got["unit_amount"], got["duration_minutes"]) == (1000 + i, 30 + i), "one call's whole change, no mix"


async def check_archived_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N and all(o.result.data["status"] == "archived" for o in outs)
    assert len(await changed_by(s, outs)) == 1


async def no_settings(s: Stage) -> None:
    s.workspace = s.owner.workspace_id


def settings_of(i: int) -> dict[str, int]:
    return {"min_notice_minutes": 10 * i, "slot_step_minutes": 5 + 5 * (i % 6), "late_cancel_fee": 100 * i}


async def check_one_settings_row(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    stored = await rows(s, BookingSettings, col(BookingSettings.workspace_id) == s.workspace)
    assert len(stored) == 1, "the first saves of twenty callers make one row"
    got = await ok(s, "get_booking_settings")
    i = got["min_notice_minutes"] // 10
    assert {k: got[k] for k in settings_of(i)} == settings_of(i), "one caller's whole change, no mix"


SCENARIOS: dict[str, Scenario] = {
    "create_service: twenty creates under one key": Scenario(
        "create_service",
        nothing,
        lambda s, i: as_owner(s, "create_service", {"name": s.name, "duration_minutes": 45, "unit_amount": 4000}),
        check_one_service,
        one_key=True,
    ),
    "update_service: twenty updates of one service": Scenario("update_service", setup_service, update, check_updated),
    "archive_service: twenty archives of one service": Scenario(
        "archive_service",
        setup_service,
        lambda s, i: as_owner(s, "archive_service", {"service_id": s.service}),
        check_archived_once,
    ),
    "update_booking_settings: twenty first saves": Scenario(
        "update_booking_settings",
        no_settings,
        lambda s, i: as_owner(s, "update_booking_settings", settings_of(i)),
        check_one_settings_row,
    ),
    "assign_staff_to_service: twenty callers each replacing the set": Scenario(
        "assign_staff_to_service", setup_assign, assign, check_one_set
    ),
}
