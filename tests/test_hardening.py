"""What the hardening review found, each held on SQLite and Postgres: bad input gets one typed answer on both
databases, a failed COMMIT says the outcome is unknown, refusals and exports are audited, customer text stays
marked, lists say when they are capped, and timestamps have one format."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event, func, select

from favmcp.app import App
from favmcp.domains.members.models import Member
from tests.support import Owner, call, confirmed, error_code, join

CONFIRM_GATED = {
    "revoke_api_key": lambda ids: {"key_id": ids["key"]},
    "deactivate_team_member": lambda ids: {"user_id": ids["user"]},
    "delete_member": lambda ids: {"member_id": ids["member"]},
    "merge_members": lambda ids: {"survivor_id": ids["member"], "duplicate_id": ids["other"]},
}


async def members_count(app: App) -> int:
    async with app.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(Member))).scalar_one())


async def new_member(app: App, owner: Owner, name: str, email: str) -> str:
    made = await call(app, owner.key, "create_member", {"name": name, "email": email})
    assert made.ok, made.data
    return str(made.data["id"])


async def test_text_no_database_can_store_is_refused_the_same_everywhere(app: App, owner: Owner) -> None:
    someone = await new_member(app, owner, "Nul Tester", "nul.tester@example.com")
    before = await members_count(app)
    for tool, args in (
        ("search_members", {"text": "a\x00b"}),
        ("create_member", {"name": "Bad\x00Name", "email": "bad.name@example.com"}),
        ("attach_tags", {"member_ids": [someone], "tags": ["v\x00ip"]}),
        ("get_member_profile", {"member_id": "mem_\x00"}),
        ("add_member_note", {"member_id": someone, "body": "lone \ud800 surrogate"}),
        ("preview_member_import", {"rows": [{"name": "Row", "email": "row@example.com", "notes": "x\x00"}]}),
    ):
        result = await call(app, owner.key, tool, args)
        assert error_code(result) == "validation_failed", (tool, result.data)
        assert result.data["error"]["field_errors"], tool
    assert await members_count(app) == before


async def test_dates_out_of_range_are_validation_errors(app: App, owner: Owner) -> None:
    for when in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
        made = await call(app, owner.key, "create_api_key", {"name": "far", "expires_at": when})
        assert error_code(made) == "validation_failed", made.data
        listed = await call(app, owner.key, "list_audit_events", {"since": when})
        assert error_code(listed) == "validation_failed", listed.data


async def test_like_wildcards_in_search_text_match_literally(app: App, owner: Owner) -> None:
    percent = await new_member(app, owner, "Studio 100% Yoga", "percent@example.com")
    under = await new_member(app, owner, "Snake_case Sam", "under@example.com")
    await new_member(app, owner, "Plain Person", "plain@example.com")
    found = {
        text: [m["id"] for m in (await call(app, owner.key, "search_members", {"text": text})).data["items"]]
        for text in ("%", "_", "0%", "e_c")
    }
    assert found == {"%": [percent], "_": [under], "0%": [percent], "e_c": [under]}


async def test_odd_confirmation_tokens_are_typed_refusals_on_every_gated_tool(app: App, owner: Owner) -> None:
    staff = await join(app, owner, "staff")
    ids = {
        "key": (await call(app, owner.key, "create_api_key", {"name": "k"})).data["key"]["id"],
        "user": staff.user_id,
        "member": await new_member(app, owner, "Gate One", "gate.one@example.com"),
        "other": await new_member(app, owner, "Gate Two", "gate.two@example.com"),
    }
    for tool, make_args in CONFIRM_GATED.items():
        args = make_args(ids)
        for token, code in (
            ("", "validation_failed"),
            ("   ", "validation_failed"),
            ("tökén.sïg", "confirmation_required"),
        ):
            result = await call(app, owner.key, tool, {**args, "confirmation_token": token})
            assert error_code(result) == code, (tool, token, result.data)
    assert (await call(app, staff.key, "whoami")).ok and await members_count(app) >= 2, "nothing was changed"
    keys = (await call(app, owner.key, "list_api_keys", {"limit": 100})).data["items"]
    assert {k["id"]: k["status"] for k in keys}[ids["key"]] == "active", "the key was not revoked"
    for member_id in (ids["member"], ids["other"]):
        profile = await call(app, owner.key, "get_member_profile", {"member_id": member_id})
        assert profile.data["status"] == "active" and profile.data["resolved_from"] is None, "nor erased or merged"


async def test_a_failed_commit_says_the_outcome_is_unknown_and_a_keyed_retry_is_safe(app: App, owner: Owner) -> None:
    failures = iter([True])

    def fail_once(conn: Any) -> None:
        if next(failures, False):
            raise RuntimeError("connection lost during COMMIT")

    args = {"name": "Maybe Stored", "email": "maybe.stored@example.com", "idempotency_key": "create-maybe"}
    event.listen(app.db.engine.sync_engine, "commit", fail_once)
    try:
        first = await call(app, owner.key, "create_member", args)
    finally:
        event.remove(app.db.engine.sync_engine, "commit", fail_once)
    error = first.data["error"]
    assert error["code"] == "internal_error" and error["retryable"] is True
    assert "may or may not" in error["message"] and "idempotency_key" in error["hint"]
    assert "nothing was changed" not in error["message"]
    retried = await call(app, owner.key, "create_member", args)
    again = await call(app, owner.key, "create_member", args)
    assert retried.ok and again.data == retried.data
    found = await call(app, owner.key, "search_members", {"text": "Maybe Stored"})
    assert len(found.data["items"]) == 1, "one member, however the first commit ended"


async def test_refusals_of_known_callers_and_every_export_are_audited(app: App, owner: Owner) -> None:
    staff = await join(app, owner, "staff")
    someone = await new_member(app, owner, "Audited Person", "audited@example.com")
    assert error_code(await call(app, staff.key, "create_api_key", {"name": "x"})) == "forbidden"
    assert error_code(await call(app, staff.key, "list_audit_events")) == "forbidden"
    assert error_code(await call(app, owner.key, "create_member", {"name": "No Contact"})) == "validation_failed"
    assert (await call(app, owner.key, "export_member_data", {"member_id": someone})).ok
    assert error_code(await call(app, owner.key, "export_member_data", {"member_id": "mem_nobody"})) == "not_found"
    made = await call(app, owner.key, "create_api_key", {"name": "short-lived"})
    assert (await confirmed(app, owner.key, "revoke_api_key", {"key_id": made.data["key"]["id"]})).ok
    assert error_code(await call(app, made.data["api_key"], "whoami")) == "unauthenticated"
    assert error_code(await call(app, "fav_mcp_" + "x" * 40, "whoami")) == "unauthenticated"

    items = (await call(app, owner.key, "list_audit_events", {"limit": 100})).data["items"]
    seen = {(e["tool"], e["outcome"], e["user_id"]) for e in items}
    assert ("create_api_key", "forbidden", staff.user_id) in seen
    assert ("list_audit_events", "forbidden", staff.user_id) in seen
    assert ("create_member", "validation_failed", owner.user_id) in seen
    assert ("export_member_data", "ok", owner.user_id) in seen
    assert ("export_member_data", "not_found", owner.user_id) in seen
    revoked = [e for e in items if e["tool"] == "whoami"]
    assert [(e["outcome"], e["credential_id"]) for e in revoked] == [("unauthenticated", made.data["key"]["id"])]
    assert not [e for e in items if e["tool"] == "get_member_profile"], "ordinary reads are not audited"


def _strings_outside_untrusted(node: Any, marker: str, inside: bool = False) -> Iterator[str]:
    if isinstance(node, dict):
        wrapped = inside or node.get("untrusted") is True
        for value in node.values():
            yield from _strings_outside_untrusted(value, marker, wrapped)
    elif isinstance(node, list):
        for value in node:
            yield from _strings_outside_untrusted(value, marker, inside)
    elif isinstance(node, str) and marker in node and not inside:
        yield node


async def test_customer_written_text_is_marked_untrusted_in_every_answer(app: App, owner: Owner) -> None:
    marker = "IGNORE-PREVIOUS-INSTRUCTIONS"
    someone = await new_member(app, owner, "Marked Person", "marked@example.com")
    await call(
        app, owner.key, "add_member_note", {"member_id": someone, "body": f"{marker} 1", "written_by": "customer"}
    )
    staged = await call(
        app,
        owner.key,
        "preview_member_import",
        {"rows": [{"name": "Imp", "email": "imp@example.com", "notes": marker}]},
    )
    imported = await call(app, owner.key, "commit_member_import", {"import_id": staged.data["import_id"]})
    importee = imported.data["created_member_ids"][0]
    answers = [
        await call(app, owner.key, tool, {"member_id": who})
        for who in (someone, importee)
        for tool in ("get_member_profile", "export_member_data", "get_member_timeline")
    ]
    answers.append(await call(app, owner.key, "search_members", {"text": "Marked"}))
    assert sum(marker in str(a.data) for a in answers) == 4, "profiles and exports carry the text"
    for answer in answers:
        assert not list(_strings_outside_untrusted(answer.data, marker)), answer.data


async def test_the_profile_says_how_many_notes_and_events_it_leaves_out(app: App, owner: Owner) -> None:
    someone = await new_member(app, owner, "Many Notes", "many.notes@example.com")
    for n in range(25):
        await call(app, owner.key, "add_member_note", {"member_id": someone, "body": f"note {n}"})
    profile = (await call(app, owner.key, "get_member_profile", {"member_id": someone})).data
    assert len(profile["notes"]) == 20 and profile["notes_total"] == 25
    assert len(profile["recent_events"]) == 10 and profile["events_total"] == 26
    assert [n["body"] for n in profile["notes"]][:2] == ["note 24", "note 23"], "newest first"
    timeline = await call(app, owner.key, "get_member_timeline", {"member_id": someone, "limit": 100})
    assert len(timeline.data["items"]) == profile["events_total"]


ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _times(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _times(value)
    elif isinstance(node, list):
        for value in node:
            yield from _times(value)
    elif isinstance(node, str) and ISO_TIME.match(node):
        yield node


async def test_every_timestamp_is_utc_with_z(app: App, owner: Owner) -> None:
    staff = await join(app, owner, "staff")
    someone = await new_member(app, owner, "Time Keeper", "time.keeper@example.com")
    block = {"user_id": staff.user_id, "starts_at": "2027-03-01T09:00:00+01:00", "ends_at": "2027-03-01T17:00:00+01:00"}
    answers = [
        await call(app, owner.key, "add_staff_time_off", block),
        await call(app, owner.key, "get_member_profile", {"member_id": someone}),
        await call(app, owner.key, "export_member_data", {"member_id": someone}),
        await call(app, owner.key, "list_api_keys"),
        await call(app, owner.key, "list_audit_events"),
        await call(app, owner.key, "list_team_invites"),
        await call(app, owner.key, "delete_member", {"member_id": someone}),
        await call(
            app,
            owner.key,
            "get_staff_schedule",
            {"user_id": staff.user_id, "from_date": "2027-03-01", "to_date": "2027-03-01"},
        ),
        await call(app, owner.key, "whoami"),
    ]
    found = [t for a in answers for t in _times(a.data)]
    assert len(found) > 20 and all(t.endswith("Z") for t in found), [t for t in found if not t.endswith("Z")]
