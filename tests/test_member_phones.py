"""Phones as people type them: with a country code, or national and read in the workspace's country; stored E.164.
On SQLite and Postgres."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from favmcp.app import App
from favmcp.domains.members.models import Member
from favmcp.registry.runner import CallResult
from tests.statements import statements
from tests.support import Owner, call, error_code, signup

NL_MOBILE = "+31612345678"


async def set_country(app: App, owner: Owner, country: str | None) -> None:
    assert (await call(app, owner.key, "update_workspace", {"country": country})).ok


async def members_stored(app: App, workspace_id: str) -> int:
    async with app.db.transaction() as session:
        stmt = select(func.count()).select_from(Member).where(Member.workspace_id == workspace_id)  # type: ignore[arg-type]
        return int((await session.execute(stmt)).scalar_one())


def refused_field(result: CallResult, field: str) -> str:
    """The message of a validation refusal naming `field` (and only it)."""
    assert error_code(result) == "validation_failed", result.data
    errors = result.data["error"]["field_errors"]
    assert [e["field"] for e in errors] == [field], errors
    message: str = errors[0]["message"]
    # The library's own words ("(1) Missing or invalid default region.") never reach the caller.
    assert "default region" not in message and "(1)" not in message, message
    return message


async def test_a_national_number_without_a_workspace_country_is_refused_naming_the_field(
    app: App, owner: Owner
) -> None:
    refused = await call(app, owner.key, "create_member", {"name": "Nina", "phone": "06 12345678"})
    message = refused_field(refused, "phone")
    assert "+31 6 12345678" in message and "update_workspace" in message
    assert await members_stored(app, owner.workspace_id) == 0, "nothing created"
    made = await call(app, owner.key, "create_member", {"name": "Nina", "phone": "+31 6 1234 5678"})
    assert made.ok and made.data["phone"] == NL_MOBILE, "a number with its country code needs no country"


async def test_national_numbers_are_read_in_the_workspace_country_and_stored_e164(app: App, owner: Owner) -> None:
    await set_country(app, owner, "NL")
    made = await call(app, owner.key, "create_member", {"name": "Nina", "phone": "06 12345678"})
    assert made.ok, made.data
    assert made.data["phone"] == NL_MOBILE
    clash = await call(app, owner.key, "create_member", {"name": "Twin", "phone": "+31 (0)6-1234 5678"})
    assert error_code(clash) == "conflict", "the same number in another form is the same number"
    moved = await call(app, owner.key, "update_member", {"member_id": made.data["id"], "phone": "06-87654321"})
    assert moved.ok and moved.data["phone"] == "+31687654321"
    us = await signup(app)
    await set_country(app, us, "US")
    american = await call(app, us.key, "create_member", {"name": "Sam", "phone": "(415) 555-2671"})
    assert american.ok and american.data["phone"] == "+14155552671"


async def test_invalid_numbers_are_refused_in_our_words(app: App, owner: Owner) -> None:
    await set_country(app, owner, "NL")
    member = await call(app, owner.key, "create_member", {"name": "Nina", "email": "nina@example.com"})
    for phone, says in (
        ("12345", "not a valid phone number in NL"),
        ("(415) 555-2671", "not a valid phone number in NL"),
        ("+1", "not a valid phone number"),
        ("+999 1234 5678", "not a valid phone number"),
        ("call me", "digits"),
    ):
        created = await call(app, owner.key, "create_member", {"name": "X", "phone": phone})
        assert says in refused_field(created, "phone"), phone
        updated = await call(app, owner.key, "update_member", {"member_id": member.data["id"], "phone": phone})
        assert says in refused_field(updated, "phone"), phone
    assert await members_stored(app, owner.workspace_id) == 1
    profile = await call(app, owner.key, "get_member_profile", {"member_id": member.data["id"]})
    assert profile.data["phone"] is None


async def test_search_by_a_national_number_finds_the_member(app: App, owner: Owner) -> None:
    await set_country(app, owner, "NL")
    made = (await call(app, owner.key, "create_member", {"name": "Nina", "phone": NL_MOBILE})).data
    for text in ("06 12345678", "06-1234 5678", "+31 6 12345678", "12345678", "Nina"):
        found = await call(app, owner.key, "search_members", {"text": text})
        assert [m["id"] for m in found.data["items"]] == [made["id"]], text
    missing = await call(app, owner.key, "search_members", {"text": "06 12345679"})
    assert missing.ok and missing.data["items"] == []


async def test_import_reads_national_numbers_in_the_workspace_country(app: App, owner: Owner) -> None:
    rows: list[dict[str, Any]] = [
        {"name": "Mobile", "phone": "06 12345678"},
        {"name": "Landline", "phone": "020 123 4567"},
        {"name": "Same Mobile", "phone": "+31 6 1234 5678"},
        {"name": "Abroad", "phone": "+44 20 7946 0958"},
    ]
    without = (await call(app, owner.key, "preview_member_import", {"rows": rows})).data
    assert without["valid_rows"] == 2 and sorted(e["row"] for e in without["errors"]) == [1, 2]
    assert {e["field"] for e in without["errors"]} == {"phone"}
    assert all("update_workspace" in e["message"] for e in without["errors"])
    await set_country(app, owner, "NL")
    preview = (await call(app, owner.key, "preview_member_import", {"rows": rows})).data
    assert preview["valid_rows"] == 3 and preview["errors"] == []
    assert [(d["row"], d["duplicate_of_row"]) for d in preview["duplicates"]] == [(3, 1)]
    committed = await call(app, owner.key, "commit_member_import", {"import_id": preview["import_id"]})
    assert committed.ok and committed.data["created"] == 3
    found = await call(app, owner.key, "search_members", {"text": "+31", "limit": 10})
    assert sorted(m["phone"] for m in found.data["items"]) == ["+31201234567", NL_MOBILE]


async def test_an_import_reads_the_workspace_country_once_not_per_row(app: App, owner: Owner) -> None:
    await set_country(app, owner, "NL")

    def rows(n: int) -> list[dict[str, Any]]:
        return [{"name": f"M{i}", "phone": f"06 {12340000 + i}"} for i in range(n)]

    await call(app, owner.key, "preview_member_import", {"rows": rows(2)})  # warm: the first call may set things up
    with statements(app) as few:
        assert (await call(app, owner.key, "preview_member_import", {"rows": rows(2)})).ok
    with statements(app) as many:
        assert (await call(app, owner.key, "preview_member_import", {"rows": rows(40)})).ok
    assert len(many) == len(few)


async def test_the_workspace_contact_phone_is_read_in_its_country(app: App, owner: Owner) -> None:
    refused = await call(app, owner.key, "update_workspace", {"contact_phone": "020 123 4567"})
    assert "update_workspace" in refused_field(refused, "contact_phone")
    both = await call(app, owner.key, "update_workspace", {"country": "NL", "contact_phone": "020 123 4567"})
    assert both.ok and both.data["contact_phone"] == "+31201234567", "the country set in the same call counts"
    later = await call(app, owner.key, "update_workspace", {"contact_phone": "020 765 4321"})
    assert later.ok and later.data["contact_phone"] == "+31207654321"
    cleared = await call(app, owner.key, "update_workspace", {"country": None, "contact_phone": "020 123 4567"})
    assert error_code(cleared) == "validation_failed"
    kept = (await call(app, owner.key, "get_workspace")).data
    assert kept["country"] == "NL" and kept["contact_phone"] == "+31207654321"
