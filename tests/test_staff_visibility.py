"""What a staff key sees (issue 10): only the bookings assigned to its person and those bookings' customers,
through every tool; anything else answers exactly like a record that does not exist. Invariants still read the
whole workspace (a customer's overlap with another staff member's booking is refused). SQLite and Postgres."""

from __future__ import annotations

import json
from typing import Any

from favmcp.app import App
from favmcp.core.ids import new_id
from favmcp.registry.runner import CallResult
from tests.support import FakeClock, Member, Owner, call, error_code, join, unique_email
from tests.test_bookings import at, ok, studio


def masked(result: CallResult, asked: str) -> dict[str, Any]:
    """An error body with the asked-for id blanked and without its request id."""
    body: dict[str, Any] = json.loads(json.dumps(result.data["error"]).replace(asked, "<id>"))
    body.pop("request_id", None)
    return body


async def like_missing(app: App, key: str, tool: str, args: dict[str, Any], asked: str) -> None:
    """The call answers not_found, with exactly the body of the same call naming an id that exists nowhere."""
    got = await call(app, key, tool, args)
    assert error_code(got) == "not_found", (tool, got.data)
    ghost = new_id(asked.split("_")[0])
    again = await call(app, key, tool, json.loads(json.dumps(args).replace(asked, ghost)))
    assert masked(got, asked) == masked(again, ghost), (tool, got.data, again.data)


class House:
    """A studio with two staff members; Ann is booked with staff one (and with staff two), Bo with staff two only,
    Cy with no one."""

    def __init__(self, owner: Owner, one: Member, two: Member, service: str) -> None:
        self.owner, self.one, self.two, self.service = owner, one, two, service
        self.ann = self.bo = self.cy = ""
        self.ann_email = self.cy_email = ""
        self.bookings: dict[str, str] = {}


async def house(app: App, owner: Owner, clock: FakeClock) -> House:
    service = await studio(app, owner)
    one, two = await join(app, owner), await join(app, owner)
    await ok(app, owner, "assign_staff_to_service", {"service_id": service, "staff_ids": [one.user_id, two.user_id]})
    h = House(owner, one, two, service)
    h.ann_email, h.cy_email = unique_email("ann"), unique_email("cy")
    h.ann = (await ok(app, owner, "create_member", {"name": "Ann Lee", "email": h.ann_email, "tags": ["vip"]}))["id"]
    h.bo = (await ok(app, owner, "create_member", {"name": "Bo Lee", "email": unique_email(), "tags": ["vip", "x"]}))[
        "id"
    ]
    h.cy = (await ok(app, owner, "create_member", {"name": "Cy Lee", "email": h.cy_email, "phone": "+31612345678"}))[
        "id"
    ]
    for name, member, staff, day in (
        ("ann_one", h.ann, one, 1),
        ("ann_two", h.ann, two, 2),
        ("bo_two", h.bo, two, 1),
    ):
        made = await ok(
            app,
            owner,
            "create_booking",
            {"member_id": member, "service_id": service, "starts_at": at(clock, day), "staff_id": staff.user_id},
        )
        h.bookings[name] = made["id"]
    for member in (h.ann, h.bo):
        await ok(app, owner, "add_member_note", {"member_id": member, "body": "Likes tea"})
    return h


async def test_staff_see_their_customers_only_through_the_members_tools(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    h = await house(app, owner, clock)
    key = h.one.key
    everyone = {m["id"] for m in (await ok(app, owner, "search_members", {"limit": 100}))["items"]}
    assert {h.ann, h.bo, h.cy} <= everyone, "the owner sees the whole workspace"

    assert [m["id"] for m in (await ok(app, owner, "search_members", {}, key))["items"]] == [h.ann]
    assert [m["id"] for m in (await ok(app, owner, "search_members", {"text": "Lee"}, key))["items"]] == [h.ann]
    assert (await ok(app, owner, "search_members", {"tag": "x"}, key))["items"] == []
    # tag counts are over the customers the key sees
    assert (await ok(app, owner, "list_tags", {}, key))["items"] == [{"tag": "vip", "members": 1}]
    assert {t["tag"]: t["members"] for t in (await ok(app, owner, "list_tags", {}))["items"]} == {"vip": 2, "x": 1}

    profile = await ok(app, owner, "get_member_profile", {"member_id": h.ann}, key)
    assert profile["notes_total"] == 1 and profile["money"] is None
    # their own booking of Ann, not the one Ann has with the other staff member
    assert [b["id"] for b in profile["upcoming_bookings"]] == [h.bookings["ann_one"]]
    full = await ok(app, owner, "get_member_profile", {"member_id": h.ann})
    assert [b["id"] for b in full["upcoming_bookings"]] == [h.bookings["ann_one"], h.bookings["ann_two"]]
    timeline = await ok(app, owner, "get_member_timeline", {"member_id": h.ann}, key)
    assert timeline["items"]

    for hidden in (h.bo, h.cy):  # another staff member's customer, and a customer of no one
        for tool in ("get_member_profile", "get_member_timeline"):
            await like_missing(app, key, tool, {"member_id": hidden}, hidden)

    # the other staff member sees Ann and Bo, not Cy
    theirs = {m["id"] for m in (await ok(app, owner, "search_members", {"limit": 100}, h.two.key))["items"]}
    assert theirs == {h.ann, h.bo}


async def test_staff_see_only_their_bookings(app: App, owner: Owner, clock: FakeClock) -> None:
    h = await house(app, owner, clock)
    mine = await ok(app, owner, "list_bookings", {"limit": 100}, h.one.key)
    assert [b["id"] for b in mine["items"]] == [h.bookings["ann_one"]]
    # a member filter naming a customer who is not theirs answers like a missing customer; their own works
    await like_missing(app, h.one.key, "list_bookings", {"member_id": h.bo}, h.bo)
    by_ann = await ok(app, owner, "list_bookings", {"member_id": h.ann}, h.one.key)
    assert [b["id"] for b in by_ann["items"]] == [h.bookings["ann_one"]]
    assert len((await ok(app, owner, "list_bookings", {"limit": 100}))["items"]) == 3
    detail = await ok(app, owner, "get_booking_detail", {"booking_id": h.bookings["ann_one"]}, h.one.key)
    assert detail["customer"]["id"] == h.ann
    for other in (h.bookings["ann_two"], h.bookings["bo_two"]):
        await like_missing(app, h.one.key, "get_booking_detail", {"booking_id": other}, other)
        # a staff key cannot change what it cannot see either
        await like_missing(app, h.one.key, "check_in_booking", {"booking_id": other}, other)
    # another staff member's schedule shows none of their bookings to this key; the owner sees them
    week = {"user_id": h.two.user_id, "from_date": at(clock, 0)[:10], "to_date": at(clock, 6)[:10]}
    assert (await ok(app, owner, "get_staff_schedule", week, h.one.key))["bookings"] == []
    assert {b["id"] for b in (await ok(app, owner, "get_staff_schedule", week))["bookings"]} == {
        h.bookings["ann_two"],
        h.bookings["bo_two"],
    }
    own_week = {**week, "user_id": h.one.user_id}
    assert [b["id"] for b in (await ok(app, owner, "get_staff_schedule", own_week, h.one.key))["bookings"]] == [
        h.bookings["ann_one"]
    ]


async def test_staff_find_a_customer_by_exact_contact_to_book_them(app: App, owner: Owner, clock: FakeClock) -> None:
    h = await house(app, owner, clock)
    key = h.one.key
    for text in (h.cy_email, h.cy_email.upper(), "+31612345678", "+31 6 1234 5678"):
        found = await ok(app, owner, "search_members", {"text": text}, key)
        assert [m["id"] for m in found["items"]] == [h.cy], text
    for text in (h.cy_email[:-3], "612345678", "Cy Lee", "31612345678"):  # not exact: only their own customers
        assert (await ok(app, owner, "search_members", {"text": text}, key))["items"] == [], text
    # found, not yet theirs: the profile still answers like a missing record
    await like_missing(app, key, "get_member_profile", {"member_id": h.cy}, h.cy)
    # booking them makes the customer theirs
    made = await ok(
        app,
        owner,
        "create_booking",
        {"member_id": h.cy, "service_id": h.service, "starts_at": at(clock, 3), "staff_id": h.one.user_id},
        key,
    )
    profile = await ok(app, owner, "get_member_profile", {"member_id": h.cy}, key)
    assert [b["id"] for b in profile["upcoming_bookings"]] == [made["id"]]


async def test_invariants_see_every_booking(app: App, owner: Owner, clock: FakeClock) -> None:
    """Ann's booking with the other staff member is invisible to this key, yet it keeps Ann busy."""
    h = await house(app, owner, clock)
    clash = {"member_id": h.ann, "service_id": h.service, "starts_at": at(clock, 2), "staff_id": h.one.user_id}
    refused = await call(app, h.one.key, "create_booking", clash)
    assert error_code(refused) == "conflict", refused.data
    assert refused.data["error"]["details"]["reason"] == "customer_busy"
    assert h.bookings["ann_two"] not in json.dumps(refused.data), "a refusal names no hidden booking"
    # and another staff member's slot stays theirs: the staff one key cannot book staff two's busy time
    busy = {"member_id": h.ann, "service_id": h.service, "starts_at": at(clock, 1), "staff_id": h.two.user_id}
    refused = await call(app, h.one.key, "create_booking", busy)
    assert error_code(refused) == "conflict", refused.data
    assert refused.data["error"]["details"]["reason"] in {"staff_busy", "customer_busy"}


async def test_managers_and_the_owner_see_everything(app: App, owner: Owner, clock: FakeClock) -> None:
    h = await house(app, owner, clock)
    manager = await join(app, owner, "manager")
    for key in (owner.key, manager.key):
        ids = {m["id"] for m in (await ok(app, owner, "search_members", {"limit": 100}, key))["items"]}
        assert {h.ann, h.bo, h.cy} <= ids
        assert len((await ok(app, owner, "list_bookings", {"limit": 100}, key))["items"]) == 3
        assert (await ok(app, owner, "get_member_profile", {"member_id": h.bo}, key))["upcoming_bookings"]


async def test_team_members_show_their_services_and_time_off_respects_bookings(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    h = await house(app, owner, clock)
    team = {u["id"]: u["service_ids"] for u in (await ok(app, owner, "list_team_members", {}))["items"]}
    assert team[h.one.user_id] == [h.service] and team[h.two.user_id] == [h.service]
    assert team[owner.user_id] == []  # assign_staff_to_service replaced the set
    start = at(clock, 1, hour=9)
    end = at(clock, 1, hour=12)
    args = {"user_id": h.one.user_id, "starts_at": start, "ends_at": end}
    refused = await call(app, owner.key, "add_staff_time_off", args)
    assert error_code(refused) == "conflict" and refused.data["error"]["details"]["overlapping_bookings"] == 1
    listed = await call(app, owner.key, "add_staff_time_off", {**args, "list_overlapping_bookings": True})
    assert [b["id"] for b in listed.data["error"]["details"]["bookings"]] == [h.bookings["ann_one"]]
    # a cancelled booking no longer holds the time
    cancel = {"booking_id": h.bookings["ann_one"], "reason": "ill"}
    first = await call(app, owner.key, "cancel_booking", cancel)
    if error_code(first) == "confirmation_required":
        token = first.data["error"]["details"]["confirmation_token"]
        first = await call(app, owner.key, "cancel_booking", {**cancel, "confirmation_token": token})
    assert first.ok, first.data
    assert (await call(app, owner.key, "add_staff_time_off", args)).ok
