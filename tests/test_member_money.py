"""A customer's money on their profile and in search: only for keys that may read invoices (staff see no revenue);
lifetime spend follows payments and refunds, moves with a merge, and stays after an erase. On SQLite and Postgres."""

from __future__ import annotations

from datetime import timedelta

from favmcp.app import App
from favmcp.domains.members import service
from favmcp.registry.context import ToolContext
from tests.staff_kit import insert_booking, insert_service
from tests.support import Owner, call, confirmed, error_code, join, unique_email


async def member(app: App, owner: Owner, name: str = "Ann") -> str:
    made = await call(app, owner.key, "create_member", {"name": name, "email": unique_email("m")})
    assert made.ok, made.data
    return str(made.data["id"])


async def spend(app: App, owner: Owner, member_id: str, amount: int, currency: str = "EUR") -> None:
    async def record(ctx: ToolContext) -> None:
        await service.record_spend(ctx, member_id, amount, currency)

    await app.runner.run_system(owner.workspace_id, "test:spend", record)


async def found(app: App, key: str, **filters: object) -> list[str]:
    page = await call(app, key, "search_members", {"limit": 100, **filters})
    assert page.ok, page.data
    return [m["id"] for m in page.data["items"]]


async def test_spend_is_shown_and_filtered_only_for_keys_that_read_invoices(app: App, owner: Owner) -> None:
    big, small = await member(app, owner, "Big"), await member(app, owner, "Small")
    await spend(app, owner, big, 12_000)
    await spend(app, owner, small, 1_500)
    await spend(app, owner, big, -2_000)  # a refund
    await spend(app, owner, small, 999, "USD")  # another currency is not this workspace's spend

    profile = (await call(app, owner.key, "get_member_profile", {"member_id": big})).data
    assert profile["money"]["currency"] == "EUR" and profile["money"]["lifetime_spend"] == 10_000
    assert await found(app, owner.key, min_spend=10_000) == [big]
    assert await found(app, owner.key, max_spend=1_500, currency="EUR") == [small]
    assert sorted(await found(app, owner.key, min_spend=1_500, max_spend=10_000)) == sorted([big, small])
    mismatch = await call(app, owner.key, "search_members", {"min_spend": 1, "currency": "USD"})
    assert error_code(mismatch) == "validation_failed"

    staff = await join(app, owner, "staff")
    service_id = await insert_service(app, owner.workspace_id)  # a booking makes Big this staff member's customer
    starts_at = app.runner.clock.now() + timedelta(days=1)
    await insert_booking(
        app, owner.workspace_id, member_id=big, staff_user_id=staff.user_id, service_id=service_id, starts_at=starts_at
    )
    seen = (await call(app, staff.key, "get_member_profile", {"member_id": big})).data
    assert seen["money"] is None, "staff see no revenue"
    refused = await call(app, staff.key, "search_members", {"min_spend": 1})
    assert error_code(refused) == "forbidden"


async def test_spend_moves_with_a_merge_and_stays_after_an_erase(app: App, owner: Owner) -> None:
    survivor, duplicate = await member(app, owner, "Ann"), await member(app, owner, "Ann B")
    await spend(app, owner, survivor, 3_000)
    await spend(app, owner, duplicate, 4_500)
    merged = await confirmed(app, owner.key, "merge_members", {"survivor_id": survivor, "duplicate_id": duplicate})
    assert merged.ok, merged.data
    profile = (await call(app, owner.key, "get_member_profile", {"member_id": duplicate})).data
    assert profile["id"] == survivor and profile["money"]["lifetime_spend"] == 7_500
    assert await found(app, owner.key, min_spend=7_500) == [survivor], "the absorbed profile counts nothing"

    erased = await confirmed(app, owner.key, "delete_member", {"member_id": survivor})
    assert erased.ok, erased.data
    gone = (await call(app, owner.key, "get_member_profile", {"member_id": survivor})).data
    assert gone["name"] == "Erased member" and gone["money"]["lifetime_spend"] == 7_500
