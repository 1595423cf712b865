"""Services: create, list with staff, update (left out stays, null clears), archive (repeat answers the same),
assign staff (replaces the set, refuses unknown and deactivated members); booking settings; on SQLite and
Postgres."""

from __future__ import annotations

from typing import Any

from favmcp.app import App
from tests.support import Owner, call, confirmed, error_code, join


async def ok(app: App, owner: Owner, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


async def new_service(app: App, owner: Owner, **fields: Any) -> dict[str, Any]:
    return await ok(
        app, owner, "create_service", {"name": "Massage", "duration_minutes": 60, "unit_amount": 5000, **fields}
    )


async def test_create_and_list_services_with_their_staff(app: App, owner: Owner) -> None:
    sofia = await join(app, owner)
    made = await new_service(
        app, owner, tax_rate="21", buffer_after_minutes=15, staff_ids=[sofia.user_id, owner.user_id]
    )
    assert made["currency"] == "EUR" and made["tax_rate"] == "21" and made["capacity"] == 1 and not made["is_class"]
    assert made["staff_ids"] == sorted([sofia.user_id, owner.user_id])
    yoga = await new_service(app, owner, name="Yoga", capacity=12, currency="usd", members_only=True)
    assert yoga["is_class"] and yoga["currency"] == "USD" and yoga["staff_ids"] == [] and yoga["members_only"]
    listed = await ok(app, owner, "list_services")
    assert [s["id"] for s in listed["items"]] == [yoga["id"], made["id"]]
    assert listed["items"][1]["staff_ids"] == made["staff_ids"]
    first = await ok(app, owner, "list_services", {"limit": 1})
    assert first["has_more"] and [s["id"] for s in first["items"]] == [yoga["id"]]
    second = await ok(app, owner, "list_services", {"limit": 1, "cursor": first["next_cursor"]})
    assert [s["id"] for s in second["items"]] == [made["id"]] and not second["has_more"]


async def test_bad_service_input_is_refused_and_changes_nothing(app: App, owner: Owner) -> None:
    base = {"name": "X", "duration_minutes": 30, "unit_amount": 100}
    for bad in (
        {"duration_minutes": 4}, {"duration_minutes": 1441}, {"unit_amount": -1}, {"unit_amount": 12.5},
        {"buffer_before_minutes": 241}, {"buffer_after_minutes": -1}, {"capacity": 0}, {"capacity": 1001},
        {"tax_rate": "101"}, {"tax_rate": 21}, {"currency": "XXY"}, {"name": ""}, {"colour": "red"},
    ):  # fmt: skip
        result = await call(app, owner.key, "create_service", {**base, **bad})
        assert error_code(result) == "validation_failed", (bad, result.data)
    unknown = await call(app, owner.key, "create_service", {**base, "staff_ids": ["usr_nope"]})
    assert error_code(unknown) == "not_found"
    assert (await ok(app, owner, "list_services", {"status": "all"}))["items"] == []


async def test_update_keeps_what_is_left_out_and_null_clears(app: App, owner: Owner) -> None:
    made = await new_service(app, owner, description="Deep tissue")
    changed = await ok(
        app, owner, "update_service", {"service_id": made["id"], "unit_amount": 6000, "duration_minutes": 90}
    )
    assert (changed["unit_amount"], changed["duration_minutes"], changed["description"]) == (6000, 90, "Deep tissue")
    assert changed["name"] == "Massage" and changed["updated_at"] >= made["updated_at"]
    cleared = await ok(app, owner, "update_service", {"service_id": made["id"], "description": None})
    assert cleared["description"] is None and cleared["unit_amount"] == 6000
    refused = await call(app, owner.key, "update_service", {"service_id": made["id"], "name": None})
    assert error_code(refused) == "validation_failed"
    refused = await call(app, owner.key, "update_service", {"service_id": made["id"], "buffer_after_minutes": 300})
    assert error_code(refused) == "validation_failed"
    missing = await call(app, owner.key, "update_service", {"service_id": "svc_nope", "name": "Y"})
    assert error_code(missing) == "not_found"
    assert (await ok(app, owner, "list_services"))["items"][0]["name"] == "Massage"


async def test_archive_hides_the_service_and_repeats_answer_the_same(app: App, owner: Owner) -> None:
    made = await new_service(app, owner)
    first = await ok(app, owner, "archive_service", {"service_id": made["id"]})
    again = await ok(app, owner, "archive_service", {"service_id": made["id"]})
    assert first["status"] == "archived" and first == again and first["archived_at"] is not None
    assert (await ok(app, owner, "list_services"))["items"] == []
    assert [s["id"] for s in (await ok(app, owner, "list_services", {"status": "archived"}))["items"]] == [made["id"]]
    assert len((await ok(app, owner, "list_services", {"status": "all"}))["items"]) == 1
    slots = await call(
        app, owner.key, "get_available_slots",
        {"service_id": made["id"], "from_date": "2030-01-01", "to_date": "2030-01-02"},
    )  # fmt: skip
    assert error_code(slots) == "invalid_state"


async def test_assign_staff_replaces_the_set_and_refuses_the_deactivated(app: App, owner: Owner) -> None:
    sofia, omar = await join(app, owner), await join(app, owner)
    made = await new_service(app, owner, staff_ids=[sofia.user_id])
    both = await ok(
        app,
        owner,
        "assign_staff_to_service",
        {"service_id": made["id"], "staff_ids": [omar.user_id, sofia.user_id, omar.user_id]},
    )
    assert both["staff_ids"] == sorted([sofia.user_id, omar.user_id])
    again = await ok(
        app, owner, "assign_staff_to_service", {"service_id": made["id"], "staff_ids": [sofia.user_id, omar.user_id]}
    )
    assert again == both
    only = await ok(app, owner, "assign_staff_to_service", {"service_id": made["id"], "staff_ids": [omar.user_id]})
    assert only["staff_ids"] == [omar.user_id]
    unknown = await call(app, owner.key, "assign_staff_to_service", {"service_id": made["id"], "staff_ids": ["usr_x"]})
    assert error_code(unknown) == "not_found"
    done = await confirmed(app, owner.key, "deactivate_team_member", {"user_id": sofia.user_id})
    assert done.ok, done.data
    refused = await call(
        app, owner.key, "assign_staff_to_service", {"service_id": made["id"], "staff_ids": [sofia.user_id]}
    )
    assert error_code(refused) == "invalid_state" and sofia.user_id in refused.data["error"]["message"]
    assert (await ok(app, owner, "list_services"))["items"][0]["staff_ids"] == [omar.user_id], "refusal changed nothing"
    await ok(
        app, owner, "assign_staff_to_service", {"service_id": made["id"], "staff_ids": [omar.user_id, owner.user_id]}
    )
    done = await confirmed(app, owner.key, "deactivate_team_member", {"user_id": omar.user_id})
    assert done.ok, done.data
    assert (await ok(app, owner, "list_services"))["items"][0]["staff_ids"] == [owner.user_id], "deactivated drop out"
    staff_key = await call(app, sofia.key, "list_services")
    assert error_code(staff_key) is not None


async def test_staff_can_read_but_not_write_services(app: App, owner: Owner) -> None:
    sofia = await join(app, owner)
    made = await new_service(app, owner)
    listed = await call(app, sofia.key, "list_services")
    assert listed.ok and listed.data["items"][0]["id"] == made["id"]
    refused = await call(app, sofia.key, "update_service", {"service_id": made["id"], "name": "Mine"})
    assert error_code(refused) == "forbidden"


async def test_booking_settings_defaults_and_upsert(app: App, owner: Owner) -> None:
    first = await ok(app, owner, "get_booking_settings")
    assert first["saved"] is False and first["currency"] == "EUR" and first["slot_step_minutes"] == 15
    assert (first["min_notice_minutes"], first["max_advance_days"], first["late_cancel_fee"]) == (60, 90, 0)
    saved = await ok(app, owner, "update_booking_settings", {"late_cancel_fee": 1500, "slot_step_minutes": 30})
    assert saved["saved"] and (saved["late_cancel_fee"], saved["slot_step_minutes"]) == (1500, 30)
    assert saved["min_notice_minutes"] == 60 and saved["updated_at"] is not None
    more = await ok(
        app, owner, "update_booking_settings", {"no_show_fee": 2000, "fee_currency": "gbp", "fee_tax_rate": "20"}
    )
    assert (more["late_cancel_fee"], more["no_show_fee"], more["currency"], more["fee_tax_rate"]) == (
        1500,
        2000,
        "GBP",
        "20",
    )
    back = await ok(app, owner, "update_booking_settings", {"fee_currency": None, "requires_confirmation": True})
    assert back["currency"] == "EUR" and back["requires_confirmation"] and back["slot_step_minutes"] == 30
    assert await ok(app, owner, "get_booking_settings") == back
    for bad in (
        {"slot_step_minutes": 4},
        {"slot_step_minutes": 241},
        {"late_cancel_fee": -1},
        {"min_notice_minutes": None},
    ):
        assert error_code(await call(app, owner.key, "update_booking_settings", bad)) == "validation_failed", bad
    sofia = await join(app, owner)
    assert (await call(app, sofia.key, "get_booking_settings")).ok
    assert error_code(await call(app, sofia.key, "update_booking_settings", {"no_show_fee": 1})) == "forbidden"


async def test_an_update_never_changes_a_booked_price_or_time(app: App, owner: Owner, clock: Any) -> None:
    await ok(app, owner, "set_business_hours", {"weekly": {"mon": [{"open": "09:00", "close": "17:00"}]}})
    await ok(app, owner, "update_workspace", {"timezone": "UTC"})
    clock.current = clock.current.replace(year=2030, month=6, day=1)
    made = await new_service(app, owner, staff_ids=[owner.user_id], tax_rate="21")
    member = await ok(app, owner, "create_member", {"name": "Sam Lee", "email": "sam.update@example.com"})
    booked = await ok(app, owner, "create_booking", {
        "member_id": member["id"], "service_id": made["id"], "starts_at": "2030-06-03T10:00:00Z",
    })  # fmt: skip
    await ok(app, owner, "update_service", {
        "service_id": made["id"], "unit_amount": 9900, "duration_minutes": 120, "tax_rate": "9",
        "buffer_after_minutes": 60,
    })  # fmt: skip
    detail = await ok(app, owner, "get_booking_detail", {"booking_id": booked["id"]})
    assert (detail["unit_amount"], detail["tax_rate"]) == (5000, "21")
    assert (detail["starts_at"], detail["ends_at"]) == (booked["starts_at"], booked["ends_at"])
    assert detail["ends_at"].startswith("2030-06-03T11:00")


async def test_repeating_a_settings_update_changes_nothing(app: App, owner: Owner, clock: Any) -> None:
    first = await ok(app, owner, "update_booking_settings", {"min_notice_minutes": 120})
    clock.advance(minutes=5)
    again = await ok(app, owner, "update_booking_settings", {"min_notice_minutes": 120})
    assert again == first, "the same values: nothing written, updated_at stays"
    clock.advance(minutes=5)
    moved = await ok(app, owner, "update_booking_settings", {"min_notice_minutes": 30})
    assert moved["updated_at"] > first["updated_at"] and moved["min_notice_minutes"] == 30
