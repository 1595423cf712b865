"""Races of the services domain: twenty concurrent assign_staff_to_service calls, each with its own set, leave
exactly one caller's set (never a mix of two, never a duplicate row)."""

from __future__ import annotations

from sqlmodel import col

from favmcp.domains.services.models import ServiceStaff
from tests.race_kit import Call, Outcome, Scenario, Stage, as_owner, ok, oks, rows
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


SCENARIOS: dict[str, Scenario] = {
    "assign_staff_to_service: twenty callers each replacing the set": Scenario(
        "assign_staff_to_service", setup_assign, assign, check_one_set
    ),
}
