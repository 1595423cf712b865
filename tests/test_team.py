"""The team: invites through the real code flow, roles and the last owner, deactivation, hours and time off."""

from __future__ import annotations

from typing import Any

import pytest

from favmcp.app import App
from favmcp.auth.models import Role, User, UserStatus
from favmcp.core.errors import ErrorCode, FavError
from favmcp.db.scoped import WorkspaceDB
from favmcp.domains.team import rules
from favmcp.effects.outbox import open_body
from tests.support import (
    Member,
    Owner,
    accept,
    call,
    confirmed,
    emails_to,
    error_code,
    gather,
    invite,
    invite_token,
    join,
    signup,
    unique_email,
)


async def make_owner(app: App, owner: Owner) -> Member:
    member = await join(app, owner, "admin")
    promoted = await call(app, owner.key, "update_team_member_role", {"user_id": member.user_id, "role": "owner"})
    assert promoted.ok and promoted.data["role"] == "owner", promoted.data
    return member


async def active_owners(app: App, key: str) -> list[str]:
    page = await call(app, key, "list_team_members", {"role": "owner", "status": "active", "limit": 100})
    assert page.ok, page.data
    return [m["id"] for m in page.data["items"]]


# Invites


async def test_invite_accept_gives_a_key_with_the_invited_role(app: App, owner: Owner) -> None:
    email = unique_email("manager")
    made = await call(app, owner.key, "create_team_member_invite", {"email": email.upper(), "role": "manager"})
    assert made.ok, made.data
    assert made.data["invite"]["status"] == "pending" and made.data["invite"]["email"] == email
    assert made.data["invite"]["invited_by"] == owner.user_id
    token = await invite_token(app, email)
    assert token not in str(made.data), "the token is only emailed"
    body = open_body(app.settings, (await emails_to(app, email))[-1])
    assert "accept_team_invite_request" in body and "http" not in body
    listed = await call(app, owner.key, "list_team_invites")
    assert token not in str(listed.data)

    done = await accept(app, email)
    assert done.ok and done.data["role"] == "manager" and done.data["workspace_id"] == owner.workspace_id
    key = done.data["api_key"]
    me = await call(app, key, "whoami")
    assert me.data["role"] == "manager" and "team:read" in me.data["scopes"] and "team:admin" not in me.data["scopes"]
    assert (await call(app, key, "list_team_members")).ok
    assert error_code(
        await call(app, key, "create_team_member_invite", {"email": unique_email(), "role": "staff"})
    ) == ("forbidden")

    invites = await call(app, owner.key, "list_team_invites", {"status": "accepted"})
    accepted = next(i for i in invites.data["items"] if i["id"] == made.data["invite"]["id"])
    assert accepted["user_id"] == done.data["user_id"] and accepted["accepted_at"]
    members = await call(app, owner.key, "list_team_members")
    member = next(m for m in members.data["items"] if m["id"] == done.data["user_id"])
    assert member == {**member, "role": "manager", "status": "active", "email": email, "service_ids": []}
    again = await call(app, None, "accept_team_invite_request", {"invite_token": token})
    assert error_code(again) == "not_found", "an invite works once"


async def test_invite_conflicts_name_the_member_or_the_pending_invite(app: App, owner: Owner) -> None:
    taken = await call(app, owner.key, "create_team_member_invite", {"email": owner.email, "role": "admin"})
    assert error_code(taken) == "conflict" and taken.data["error"]["details"]["user_id"] == owner.user_id
    email, invite_id = await invite(app, owner.key)
    twice = await call(app, owner.key, "create_team_member_invite", {"email": f"  {email.upper()} ", "role": "admin"})
    assert error_code(twice) == "conflict" and twice.data["error"]["details"]["invite_id"] == invite_id
    assert "revoke_team_invite" in twice.data["error"]["hint"]
    assert len(await emails_to(app, email)) == 1
    assert (await call(app, owner.key, "revoke_team_invite", {"invite_id": invite_id})).ok
    assert (await call(app, owner.key, "create_team_member_invite", {"email": email, "role": "admin"})).ok
    member = await join(app, owner)
    joined = await call(app, owner.key, "create_team_member_invite", {"email": member.email, "role": "admin"})
    assert error_code(joined) == "conflict" and joined.data["error"]["details"]["user_id"] == member.user_id


async def test_concurrent_invites_of_one_email_make_one_invite(app: App, owner: Owner) -> None:
    email = unique_email("staff")
    args = {"email": email, "role": "staff"}
    results = await gather(*[call(app, owner.key, "create_team_member_invite", args) for _ in range(5)])
    assert sum(r.ok for r in results) == 1
    assert all(error_code(r) == "conflict" for r in results if not r.ok)
    assert len(await emails_to(app, email)) == 1


async def test_invite_retries_with_an_idempotency_key_send_one_email(app: App, owner: Owner) -> None:
    email = unique_email("staff")
    args = {"email": email, "role": "staff", "idempotency_key": "invite-1"}
    first = await call(app, owner.key, "create_team_member_invite", args)
    second = await call(app, owner.key, "create_team_member_invite", args)
    assert first.ok and first.data == second.data
    assert len(await emails_to(app, email)) == 1
    audit = await call(app, owner.key, "list_audit_events", {"tool": "create_team_member_invite"})
    assert audit.data["items"][0]["changes"] == {"invite_id": first.data["invite"]["id"], "fields": ["role"]}
    assert email not in str(audit.data), "the audit keeps ids and field names, never personal data"


async def test_revoke_invite_is_idempotent_and_refuses_accepted_invites(app: App, owner: Owner) -> None:
    email, invite_id = await invite(app, owner.key)
    token = await invite_token(app, email)
    revoked = await call(app, owner.key, "revoke_team_invite", {"invite_id": invite_id})
    assert revoked.ok and revoked.data["status"] == "revoked"
    again = await call(app, owner.key, "revoke_team_invite", {"invite_id": invite_id})
    assert again.ok and again.data == revoked.data
    audit = await call(app, owner.key, "list_audit_events", {"tool": "revoke_team_invite"})
    assert [e["changes"] for e in audit.data["items"]] == [{}, {"invite_id": invite_id, "fields": ["status"]}]
    assert error_code(await call(app, None, "accept_team_invite_request", {"invite_token": token})) == "not_found"

    email, accepted_id = await invite(app, owner.key)
    assert (await accept(app, email)).ok
    refused = await call(app, owner.key, "revoke_team_invite", {"invite_id": accepted_id})
    assert error_code(refused) == "invalid_state" and refused.data["error"]["details"]["current"] == "accepted"
    assert "deactivate_team_member" in refused.data["error"]["hint"]
    assert error_code(await call(app, owner.key, "revoke_team_invite", {"invite_id": "inv_nope"})) == "not_found"


async def test_invites_list_by_derived_status_with_paging(app: App, owner: Owner, clock: Any) -> None:
    old = [await invite(app, owner.key) for _ in range(3)]
    clock.advance(days=7, seconds=1)
    _, fresh_id = await invite(app, owner.key)
    _, revoked_id = await invite(app, owner.key)
    assert (await call(app, owner.key, "revoke_team_invite", {"invite_id": revoked_id})).ok

    async def ids(status: str) -> set[str]:
        page = await call(app, owner.key, "list_team_invites", {"status": status, "limit": 100})
        assert page.ok, page.data
        assert {i["status"] for i in page.data["items"]} <= {status}
        return {i["id"] for i in page.data["items"]}

    assert await ids("expired") == {i for _, i in old}
    assert await ids("pending") == {fresh_id}
    assert await ids("revoked") == {revoked_id}
    assert await ids("accepted") == set()
    seen: list[str] = []
    cursor = None
    while True:
        page = await call(app, owner.key, "list_team_invites", {"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [i["id"] for i in page.data["items"]]
        if not page.data["has_more"]:
            break
        cursor = page.data["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    # An expired invite does not block a new one, and its token no longer works.
    assert (await call(app, owner.key, "create_team_member_invite", {"email": old[1][0], "role": "staff"})).ok
    expired_token = await invite_token(app, old[0][0])
    refused = await call(app, None, "accept_team_invite_request", {"invite_token": expired_token})
    assert error_code(refused) == "not_found"


# Roles and the last owner


async def test_only_an_owner_makes_or_changes_an_owner(app: App, owner: Owner) -> None:
    admin = await join(app, owner, "admin")
    staff = await join(app, owner, "staff")
    made = await call(app, admin.key, "update_team_member_role", {"user_id": staff.user_id, "role": "owner"})
    assert error_code(made) == "forbidden" and "owner" in made.data["error"]["message"]
    changed = await call(app, admin.key, "update_team_member_role", {"user_id": owner.user_id, "role": "admin"})
    assert error_code(changed) == "forbidden"
    assert (await call(app, admin.key, "update_team_member_role", {"user_id": staff.user_id, "role": "manager"})).ok
    same = await call(app, owner.key, "update_team_member_role", {"user_id": staff.user_id, "role": "manager"})
    assert same.ok and same.data["role"] == "manager"
    promoted = await call(app, owner.key, "update_team_member_role", {"user_id": admin.user_id, "role": "owner"})
    assert promoted.ok and promoted.data["role"] == "owner"
    assert (await call(app, admin.key, "whoami")).data["role"] == "owner"
    missing = await call(app, owner.key, "update_team_member_role", {"user_id": "usr_nope", "role": "staff"})
    assert error_code(missing) == "not_found" and "list_team_members" in missing.data["error"]["hint"]


async def test_the_last_owner_cannot_be_demoted(app: App, owner: Owner) -> None:
    alone = await call(app, owner.key, "update_team_member_role", {"user_id": owner.user_id, "role": "admin"})
    assert error_code(alone) == "invalid_state" and "update_team_member_role" in alone.data["error"]["hint"]
    second = await make_owner(app, owner)
    assert (await call(app, owner.key, "update_team_member_role", {"user_id": owner.user_id, "role": "admin"})).ok
    last = await call(app, second.key, "update_team_member_role", {"user_id": second.user_id, "role": "staff"})
    assert error_code(last) == "invalid_state"
    assert await active_owners(app, second.key) == [second.user_id]
    demoted = await call(app, owner.key, "whoami")
    assert demoted.data["role"] == "admin", "a demotion limits the key from its very next call"


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(app: App, owner: Owner) -> None:
    second = await make_owner(app, owner)
    results = await gather(
        call(app, owner.key, "update_team_member_role", {"user_id": second.user_id, "role": "admin"}),
        call(app, second.key, "update_team_member_role", {"user_id": owner.user_id, "role": "admin"}),
    )
    assert sum(r.ok for r in results) == 1, [r.data for r in results]
    assert {error_code(r) for r in results if not r.ok} <= {"forbidden", "invalid_state"}
    survivors = await active_owners(app, owner.key if results[0].ok else second.key)
    assert len(survivors) == 1


async def test_last_owner_guard_counts_active_owners(app: App, owner: Owner) -> None:
    async with app.db.sessions() as session:  # never committed: closing rolls back
        db = WorkspaceDB(session, owner.workspace_id)
        me = await rules.fresh_member(db, owner.user_id)
        with pytest.raises(FavError) as refused:
            await rules.ensure_not_last_owner(db, me, "deactivate them")
        assert refused.value.code == ErrorCode.invalid_state
        session.add(
            User(
                id="usr_gone_" + owner.user_id[-8:],
                workspace_id=owner.workspace_id,
                email=unique_email(),
                name="Gone",
                role=Role.owner,
                status=UserStatus.deactivated,
                created_at=me.created_at,
            )
        )
        await session.flush()
        with pytest.raises(FavError):
            await rules.ensure_not_last_owner(db, me, "deactivate them")


# Deactivation


async def test_deactivation_walks_the_confirm_gate_and_revokes_every_key(app: App, owner: Owner) -> None:
    admin = await join(app, owner, "admin")
    extra = await call(app, admin.key, "create_api_key", {"name": "second"})
    assert extra.ok
    args = {"user_id": admin.user_id}
    first = await call(app, owner.key, "deactivate_team_member", args)
    assert error_code(first) == "confirmation_required"
    preview = first.data["error"]["details"]["preview"]
    assert preview["member"]["id"] == admin.user_id and preview["keys_to_revoke"] == 2
    assert "bookings stay assigned" in preview["summary"].lower()
    assert (await call(app, admin.key, "whoami")).ok, "the preview changes nothing"

    done = await confirmed(app, owner.key, "deactivate_team_member", args)
    assert done.ok and done.data["member"]["status"] == "deactivated"
    assert len(done.data["revoked_key_ids"]) == 2 and extra.data["key"]["id"] in done.data["revoked_key_ids"]
    for secret in (admin.key, extra.data["api_key"]):
        assert error_code(await call(app, secret, "whoami")) == "unauthenticated"
    keys = await call(app, owner.key, "list_api_keys", {"include_revoked": True, "limit": 100})
    assert {k["status"] for k in keys.data["items"] if k["user_id"] == admin.user_id} == {"revoked"}

    again = await call(app, owner.key, "deactivate_team_member", args)
    assert again.ok and again.data["revoked_key_ids"] == [], "repeating a finished deactivation needs no token"
    listed = await call(app, owner.key, "list_team_members", {"status": "deactivated"})
    assert [m["id"] for m in listed.data["items"]] == [admin.user_id]
    for tool, extra_args in (
        ("update_team_member_role", {"role": "staff"}),
        ("set_staff_working_hours", {"weekly": {}}),
        ("add_staff_time_off", {"starts_at": "2027-01-05T09:00:00Z", "ends_at": "2027-01-05T10:00:00Z"}),
    ):
        refused = await call(app, owner.key, tool, {**args, **extra_args})
        assert error_code(refused) == "invalid_state", (tool, refused.data)
    assert (
        await call(app, owner.key, "get_staff_schedule", {**args, "from_date": "2027-01-04", "to_date": "2027-01-04"})
    ).ok

    # Invited again, the person comes back with the new role and a new key; the old keys stay revoked.
    back = await call(app, owner.key, "create_team_member_invite", {"email": admin.email, "role": "staff"})
    assert back.ok
    rejoined = await accept(app, admin.email)
    assert rejoined.ok and rejoined.data["user_id"] == admin.user_id and rejoined.data["role"] == "staff"
    assert (await call(app, rejoined.data["api_key"], "whoami")).data["role"] == "staff"
    assert error_code(await call(app, admin.key, "whoami")) == "unauthenticated"


async def test_deactivation_guards(app: App, owner: Owner) -> None:
    myself = await call(app, owner.key, "deactivate_team_member", {"user_id": owner.user_id})
    assert error_code(myself) == "forbidden" and "yourself" in myself.data["error"]["message"]
    admin = await join(app, owner, "admin")
    other_admin = await join(app, owner, "admin")
    by_admin = await call(app, admin.key, "deactivate_team_member", {"user_id": owner.user_id})
    assert error_code(by_admin) == "forbidden" and "owner" in by_admin.data["error"]["message"]
    assert (await confirmed(app, admin.key, "deactivate_team_member", {"user_id": other_admin.user_id})).ok
    assert error_code(await call(app, owner.key, "deactivate_team_member", {"user_id": "usr_nope"})) == "not_found"


async def test_two_owners_deactivating_each_other_at_once_leave_one_owner(app: App, owner: Owner) -> None:
    second = await make_owner(app, owner)
    tokens = []
    for key, target in ((owner.key, second.user_id), (second.key, owner.user_id)):
        first = await call(app, key, "deactivate_team_member", {"user_id": target})
        tokens.append(first.data["error"]["details"]["confirmation_token"])
    results = await gather(
        call(app, owner.key, "deactivate_team_member", {"user_id": second.user_id, "confirmation_token": tokens[0]}),
        call(app, second.key, "deactivate_team_member", {"user_id": owner.user_id, "confirmation_token": tokens[1]}),
    )
    assert sum(r.ok for r in results) == 1, [r.data for r in results]
    survivor = owner if results[0].ok else second
    assert await active_owners(app, survivor.key) == [survivor.user_id]


async def test_staff_can_read_the_team_but_not_administer_it(app: App, owner: Owner) -> None:
    staff = await join(app, owner, "staff")
    user = {"user_id": staff.user_id}
    for tool, args in (
        ("create_team_member_invite", {"email": unique_email(), "role": "staff"}),
        ("revoke_team_invite", {"invite_id": "inv_x"}),
        ("update_team_member_role", {**user, "role": "admin"}),
        ("deactivate_team_member", {"user_id": owner.user_id}),
        ("set_staff_working_hours", {**user, "weekly": {}}),
        ("add_staff_time_off", {**user, "starts_at": "2027-01-05T09:00:00Z", "ends_at": "2027-01-05T10:00:00Z"}),
        ("remove_staff_time_off", {"time_off_id": "off_x"}),
    ):
        refused = await call(app, staff.key, tool, args)
        assert error_code(refused) == "forbidden" and "team:admin" in refused.data["error"]["message"], tool
    members = await call(app, staff.key, "list_team_members")
    assert members.ok and {owner.user_id, staff.user_id} <= {m["id"] for m in members.data["items"]}
    assert (await call(app, staff.key, "list_team_invites")).ok
    own = await call(app, staff.key, "get_staff_schedule", {**user, "from_date": "2027-01-04", "to_date": "2027-01-10"})
    assert own.ok and own.data["bookings"] == []


# Working hours and time off


async def test_working_hours_are_replaced_as_a_whole_and_shown_per_date(app: App, owner: Owner) -> None:
    staff = await join(app, owner, "staff")
    weekly = {
        "wed": [{"open": "10:00", "close": "14:00"}],
        "mon": [{"open": "13:00", "close": "17:00"}, {"open": "09:00", "close": "12:00"}],
    }
    hours = await call(app, owner.key, "set_staff_working_hours", {"user_id": staff.user_id, "weekly": weekly})
    assert hours.ok and hours.data["timezone"] == "Europe/Amsterdam"
    assert hours.data["weekly"]["mon"] == [
        {"open": "09:00", "close": "12:00"},
        {"open": "13:00", "close": "17:00"},
    ]
    args = {"user_id": staff.user_id, "from_date": "2027-01-04", "to_date": "2027-01-10"}
    schedule = await call(app, owner.key, "get_staff_schedule", args)
    assert schedule.ok, schedule.data
    data = schedule.data
    assert data["range_starts_at"].startswith("2027-01-03T23:00:00") and data["range_ends_at"].startswith(
        "2027-01-10T23"
    )
    assert [d["weekday"] for d in data["days"]] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert len(data["days"][0]["working_hours"]) == 2 and data["days"][1]["working_hours"] == []
    assert data["days"][2]["working_hours"] == [{"open": "10:00", "close": "14:00"}]
    assert data["time_off"] == [] and data["bookings"] == []

    replaced = await call(
        app,
        owner.key,
        "set_staff_working_hours",
        {"user_id": staff.user_id, "weekly": {"tue": [{"open": "08:00", "close": "12:00"}]}},
    )
    assert replaced.ok and list(replaced.data["weekly"]) == ["tue"]
    assert list((await call(app, owner.key, "get_staff_schedule", args)).data["weekly"]) == ["tue"]
    fri = [{"open": "08:00", "close": "12:00"}, {"open": "11:59", "close": "13:00"}]
    overlap = await call(app, owner.key, "set_staff_working_hours", {"user_id": staff.user_id, "weekly": {"fri": fri}})
    assert error_code(overlap) == "validation_failed"
    cleared = await call(app, owner.key, "set_staff_working_hours", {"user_id": staff.user_id, "weekly": {}})
    assert cleared.ok and cleared.data["weekly"] == {}
    too_long = await call(app, owner.key, "get_staff_schedule", {**args, "to_date": "2027-03-07"})
    assert error_code(too_long) == "validation_failed"
    assert (await call(app, owner.key, "get_staff_schedule", {**args, "to_date": "2027-03-06"})).ok


async def test_time_off_refuses_overlaps_and_can_be_removed(app: App, owner: Owner) -> None:
    staff = await join(app, owner, "staff")
    other = await join(app, owner, "staff")
    block = {"user_id": staff.user_id, "starts_at": "2027-01-05T09:00:00+01:00", "ends_at": "2027-01-05T17:00:00+01:00"}
    added = await call(app, owner.key, "add_staff_time_off", {**block, "reason": "training"})
    assert added.ok and added.data["starts_at"].startswith("2027-01-05T08:00:00")
    assert added.data["created_by"] == owner.user_id
    clash = await call(
        app,
        owner.key,
        "add_staff_time_off",
        {**block, "starts_at": "2027-01-05T15:59:00Z", "ends_at": "2027-01-05T18:00:00Z"},
    )
    assert error_code(clash) == "conflict" and clash.data["error"]["details"]["time_off_id"] == added.data["id"]
    touching = await call(
        app,
        owner.key,
        "add_staff_time_off",
        {**block, "starts_at": "2027-01-05T17:00:00+01:00", "ends_at": "2027-01-05T18:00:00+01:00"},
    )
    assert touching.ok
    assert (await call(app, owner.key, "add_staff_time_off", {**block, "user_id": other.user_id})).ok
    too_long = {**block, "ends_at": "2028-01-06T17:00:00+01:00"}
    assert error_code(await call(app, owner.key, "add_staff_time_off", too_long)) == "validation_failed"

    args = {"user_id": staff.user_id, "from_date": "2027-01-05", "to_date": "2027-01-05"}
    schedule = await call(app, owner.key, "get_staff_schedule", args)
    assert [b["id"] for b in schedule.data["time_off"]] == [added.data["id"], touching.data["id"]]
    later = await call(
        app, owner.key, "get_staff_schedule", {**args, "from_date": "2027-01-06", "to_date": "2027-01-06"}
    )
    assert later.data["time_off"] == []

    removed = await call(app, owner.key, "remove_staff_time_off", {"time_off_id": added.data["id"]})
    assert removed.ok and removed.data["removed"]["id"] == added.data["id"]
    again = await call(app, owner.key, "remove_staff_time_off", {"time_off_id": added.data["id"]})
    assert again.ok and again.data == removed.data, "a repeated removal answers as the first did"
    unknown = await call(app, owner.key, "remove_staff_time_off", {"time_off_id": "off_unknown"})
    assert error_code(unknown) == "not_found" and "get_staff_schedule" in unknown.data["error"]["hint"]
    schedule = await call(app, owner.key, "get_staff_schedule", args)
    assert [b["id"] for b in schedule.data["time_off"]] == [touching.data["id"]]
    assert (await call(app, owner.key, "add_staff_time_off", block)).ok, "the freed time can be blocked again"


async def test_concurrent_overlapping_time_off_makes_one_block(app: App, owner: Owner) -> None:
    staff = await join(app, owner, "staff")
    results = await gather(
        *[
            call(
                app,
                owner.key,
                "add_staff_time_off",
                {"user_id": staff.user_id, "starts_at": f"2027-02-01T0{n}:00:00Z", "ends_at": "2027-02-01T12:00:00Z"},
            )
            for n in range(6)
        ]
    )
    assert sum(r.ok for r in results) == 1, [r.data for r in results]
    assert all(error_code(r) == "conflict" for r in results if not r.ok)


async def test_another_workspaces_team_answers_not_found(app: App, owner: Owner) -> None:
    other = await signup(app)
    their_staff = await join(app, other, "staff")
    _, their_invite = await invite(app, other.key)
    their_block = await call(
        app,
        other.key,
        "add_staff_time_off",
        {"user_id": their_staff.user_id, "starts_at": "2027-01-05T09:00:00Z", "ends_at": "2027-01-05T10:00:00Z"},
    )
    assert their_block.ok
    for uid in (other.user_id, their_staff.user_id):
        for tool, args in (
            ("update_team_member_role", {"role": "staff"}),
            ("deactivate_team_member", {}),
            ("set_staff_working_hours", {"weekly": {"mon": [{"open": "09:00", "close": "10:00"}]}}),
            ("get_staff_schedule", {"from_date": "2027-01-05", "to_date": "2027-01-05"}),
            ("add_staff_time_off", {"starts_at": "2027-03-05T09:00:00Z", "ends_at": "2027-03-05T10:00:00Z"}),
        ):
            result = await call(app, owner.key, tool, {"user_id": uid, **args})
            assert error_code(result) == "not_found", (tool, result.data)
            assert uid in result.data["error"]["message"]
    assert error_code(await call(app, owner.key, "revoke_team_invite", {"invite_id": their_invite})) == "not_found"
    removed = await call(app, owner.key, "remove_staff_time_off", {"time_off_id": their_block.data["id"]})
    assert error_code(removed) == "not_found"
    members = await call(app, owner.key, "list_team_members", {"limit": 100})
    assert {m["id"] for m in members.data["items"]} == {owner.user_id}
    invites = await call(app, owner.key, "list_team_invites", {"limit": 100})
    assert invites.data["items"] == []
    still = await call(
        app,
        other.key,
        "get_staff_schedule",
        {"user_id": their_staff.user_id, "from_date": "2027-01-05", "to_date": "2027-01-05"},
    )
    assert [b["id"] for b in still.data["time_off"]] == [their_block.data["id"]]


async def test_a_promotion_widens_the_personal_key_from_the_next_call(app: App, owner: Owner) -> None:
    member = await join(app, owner, "staff")
    assert error_code(await call(app, member.key, "list_api_keys")) == "forbidden"
    promoted = await call(app, owner.key, "update_team_member_role", {"user_id": member.user_id, "role": "admin"})
    assert promoted.ok, promoted.data
    assert (await call(app, member.key, "list_api_keys")).ok
    await call(app, owner.key, "update_team_member_role", {"user_id": member.user_id, "role": "staff"})
    assert error_code(await call(app, member.key, "list_api_keys")) == "forbidden"
