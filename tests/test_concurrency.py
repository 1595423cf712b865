"""Twenty parallel calls of every mutating tool on shared targets: no internal_error, and each tool's invariant.

SCENARIOS declares, for every mutating tool the server lists, at least one race: how to set up the shared
targets, call i of the 20, the typed refusals that race may answer, and the invariant checked afterwards (through
the read tools, or a direct SELECT where no tool shows it). A new mutating tool fails
`test_every_mutating_tool_has_a_race` until its domain declares a race: here for the first domains, in
tests/races/<domain>.py (a SCENARIOS dict, collected below) for the others. tests/race_kit.py has the helpers.

The races run on Postgres, where they show (SQLite serialises writers; they pass there too, at twice the time:
FAVMCP_RACES_ON_SQLITE=1 runs them on both).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import uuid
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from sqlmodel import col

from favmcp.app import App
from favmcp.auth.codes import PER_HOUR
from favmcp.db.tenancy import Workspace
from favmcp.domains.members.models import ConsentEvent, Member, MemberNote, MemberTag
from favmcp.domains.messaging.models import Message, MessageStatus
from favmcp.effects.approvals import ApprovalRequest
from favmcp.registry.models import StateTransition
from favmcp.registry.spec import ConfirmInput
from tests import races
from tests.race_kit import (
    RACER,
    Call,
    MovingClock,
    N,
    Outcome,
    Scenario,
    Stage,
    as_owner,
    changed_by,
    member,
    ok,
    oks,
    rows,
    tokens,
)
from tests.support import (
    FakeClock,
    Owner,
    call,
    emails_to,
    invite,
    invite_token,
    join,
    latest_code,
    unique_email,
)


@pytest.fixture
def clock() -> FakeClock:
    return MovingClock()


async def profile(s: Stage, member_id: str) -> dict[str, Any]:
    return await ok(s, "get_member_profile", {"member_id": member_id})


async def left_on(s: Stage, member_id: str) -> dict[str, int]:
    """Notes, tags and consent rows still pointing at a member id."""
    return {
        "notes": len(await rows(s, MemberNote, col(MemberNote.member_id) == member_id)),
        "tags": len(await rows(s, MemberTag, col(MemberTag.member_id) == member_id)),
        "consent": len(await rows(s, ConsentEvent, col(ConsentEvent.member_id) == member_id)),
    }


async def team(s: Stage) -> dict[str, dict[str, Any]]:
    return {u["id"]: u for u in (await ok(s, "list_team_members", {"limit": 100}))["items"]}


async def works(s: Stage, key: str) -> bool:
    """Whether a key still authenticates (a revoked key, or a deactivated person's, is refused as unauthenticated)."""
    result = await call(s.app, key, "whoami")
    assert result.ok or result.data["error"]["code"] == "unauthenticated", result.data
    return result.ok


async def schedule(s: Stage, user_id: str) -> dict[str, Any]:
    return await ok(s, "get_staff_schedule", {"user_id": user_id, "from_date": DAY, "to_date": DAY})


DAY = "2031-03-04"


def block(s: Stage, start: str, end: str) -> dict[str, Any]:
    return {"user_id": s.staff.user_id, "starts_at": f"{DAY}T{start}:00Z", "ends_at": f"{DAY}T{end}:00Z"}


# -- onboarding ----------------------------------------------------------------------------------------------------

SIGNUP_EMAILS = 4  # N calls over 4 emails: each email hits its hourly limit


async def setup_signup_requests(s: Stage) -> None:
    s.emails = [unique_email("signup") for _ in range(SIGNUP_EMAILS)]


def signup_request(s: Stage, i: int) -> Call:
    args = {"email": s.emails[i % SIGNUP_EMAILS], "organisation_name": f"Studio {i}", "owner_name": "Ann"}
    return Call("register_organisation_request", args, None)


async def check_signup_requests(s: Stage, outs: list[Outcome]) -> None:
    for email in s.emails:
        mine = [o for o in outs if o.call.args["email"] == email]
        assert len(oks(mine)) == PER_HOUR, "each email gets exactly its hourly allowance, however the calls race"
        assert all(o.code == "rate_limited" for o in mine if not o.ok)
        assert len(await emails_to(s.app, email)) == PER_HOUR, "one code email per accepted request"
    assert len({o.result.data["request_id"] for o in oks(outs)}) == len(oks(outs))


async def setup_signup_verify(s: Stage) -> None:
    s.email = unique_email("signup")
    requested = await call(
        s.app, None, "register_organisation_request", {"email": s.email, "organisation_name": "Twin", "owner_name": "A"}
    )
    assert requested.ok, requested.data
    s.request_id, s.code = requested.data["request_id"], await latest_code(s.app, s.email)


async def check_signup_verify(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1, "a code is spent once"
    assert len(await rows(s, Workspace, col(Workspace.contact_email) == s.email)) == 1, "one workspace"
    assert await works(s, winners[0].result.data["api_key"])


async def setup_invite_requests(s: Stage) -> None:
    s.email, _ = await invite(s.app, s.owner.key)
    s.token = await invite_token(s.app, s.email)


async def check_invite_requests(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == PER_HOUR, "the invited email gets exactly its hourly allowance of codes"
    assert len(await emails_to(s.app, s.email)) == 1 + PER_HOUR, "the invite and one code per accepted request"


async def setup_invite_verify(s: Stage) -> None:
    """One invite, three codes for it (three accept requests): every call races for the one invite."""
    s.email, s.invite_id = await invite(s.app, s.owner.key)
    token = await invite_token(s.app, s.email)
    s.codes = []
    for _ in range(3):
        requested = await ok(s, "accept_team_invite_request", {"invite_token": token}, anonymous=True)
        s.codes.append({"request_id": requested["request_id"], "code": await latest_code(s.app, s.email)})


async def check_invite_verify(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1, "an invite is accepted once"
    joined = [u for u in (await team(s)).values() if u["email"] == s.email]
    assert len(joined) == 1 and joined[0]["status"] == "active"
    keys = (await ok(s, "list_api_keys", {"limit": 100}))["items"]
    assert [k["id"] for k in keys if k["user_id"] == joined[0]["id"]] == [winners[0].result.data["key_id"]]
    assert len(await rows(s, StateTransition, col(StateTransition.entity_id) == s.invite_id)) == 1


# -- workspace -----------------------------------------------------------------------------------------------------


async def check_workspace_update(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    ws = await ok(s, "get_workspace")
    i = int(ws["name"].removeprefix("Studio "))
    assert ws["industry"] == f"yoga {i}", "both fields come from one call, never a mix of two"


def business_hours(i: int) -> dict[str, Any]:
    return {
        "weekly": {
            "mon": [{"open": "09:00", "close": f"17:{i:02d}"}],
            "tue": [{"open": "10:00", "close": f"18:{i:02d}"}],
        },
        "closures": [{"date": f"2031-12-{i + 1:02d}"}],
    }


async def check_business_hours(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    ws = await ok(s, "get_workspace")
    i = int(ws["business_hours"]["mon"][0]["close"][3:5])
    assert ws["business_hours"]["tue"][0]["close"].startswith(f"18:{i:02d}"), "one call's week, not a mix"
    assert [c["date"] for c in ws["closures"]] == [f"2031-12-{i + 1:02d}"], "hours and closures replaced together"


# -- access --------------------------------------------------------------------------------------------------------


async def check_new_keys(s: Stage, outs: list[Outcome]) -> None:
    made = {o.result.data["key"]["id"] for o in outs}
    assert len(made) == N and len({o.result.data["api_key"] for o in outs}) == N
    listed = {k["id"] for k in (await ok(s, "list_api_keys", {"limit": 100}))["items"]}
    assert listed == made | {s.owner.key_id}
    assert all(await asyncio.gather(*[works(s, o.result.data["api_key"]) for o in outs]))


async def check_one_key_replayed(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data == outs[0].result.data for o in outs), "20 identical answers"
    listed = {k["id"] for k in (await ok(s, "list_api_keys", {"limit": 100}))["items"]}
    assert listed == {s.owner.key_id, outs[0].result.data["key"]["id"]}, "one effect"


async def setup_revoke(s: Stage, n: int) -> None:
    made = await ok(s, "create_api_key", {"name": "target"})
    s.target, s.secret = made["key"]["id"], made["api_key"]
    s.tokens = await tokens(s, "revoke_api_key", {"key_id": s.target}, n)


async def check_revoked(s: Stage, outs: list[Outcome]) -> None:
    assert not await works(s, s.secret)
    keys = (await ok(s, "list_api_keys", {"include_revoked": True, "limit": 100}))["items"]
    assert [k["status"] for k in keys if k["id"] == s.target] == ["revoked"]
    assert [e["changes"] for e in await changed_by(s, outs)] == [{"key_id": s.target}], "revoked once"


async def check_revoke_one_token(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 1, "a confirmation token is spent once"
    await check_revoked(s, outs)


# -- members -------------------------------------------------------------------------------------------------------


async def setup_one_email(s: Stage) -> None:
    s.email = unique_email("twin")


async def check_one_create(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1, "one member per email"
    winner = winners[0].result.data["id"]
    assert all(o.details["existing_member_id"] == winner for o in outs if not o.ok), "the conflict names the winner"
    found = await ok(s, "search_members", {"text": s.email})
    assert [m["id"] for m in found["items"]] == [winner]


async def setup_update_members(s: Stage) -> None:
    s.members = [await member(s, f"M{n}") for n in range(4)]
    s.email = unique_email("wanted")


async def check_update_members(s: Stage, outs: list[Outcome]) -> None:
    holders = (await ok(s, "search_members", {"text": s.email}))["items"]
    assert len(holders) == 1, "one active member holds an email"
    holder = holders[0]["id"]
    for o in outs:
        if o.call.args["member_id"] == holder:
            assert o.ok, o.result.data
        else:
            assert o.code == "conflict" and o.details["existing_member_id"] == holder, o.result.data
    assert (await profile(s, holder))["name"] in {f"Renamed {o.i}" for o in outs if o.ok}


async def setup_erase(s: Stage) -> None:
    s.member = await member(s, tags=["vip"], consent=[{"channel": "email", "granted": True}])
    await ok(s, "add_member_note", {"member_id": s.member, "body": "likes mornings"})
    s.tokens = await tokens(s, "delete_member", {"member_id": s.member}, N)


async def check_erased(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data["status"] == "erased" for o in outs)
    gone = await profile(s, s.member)
    assert gone["status"] == "erased" and gone["email"] is None and gone["name"] == "Erased member"
    assert await left_on(s, s.member) == {"notes": 0, "tags": 0, "consent": 0}
    assert [e["changes"] for e in await changed_by(s, outs)] == [{"member_id": s.member}], "erased once"


async def check_erase_one_key(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data == outs[0].result.data for o in outs), "20 identical answers"
    await check_erased(s, outs)


async def setup_erase_racing_writes(s: Stage) -> None:
    s.member = await member(s)
    [s.token] = await tokens(s, "delete_member", {"member_id": s.member}, 1)


def erase_racing_writes(s: Stage, i: int) -> Call:
    m = s.member
    if i == RACER:
        return as_owner(s, "delete_member", {"member_id": m, "confirmation_token": s.token})
    writes = [
        ("add_member_note", {"member_id": m, "body": f"note {i}"}),
        ("attach_tags", {"member_ids": [m], "tags": [f"tag-{i}"]}),
        ("set_marketing_consent", {"member_id": m, "channel": "sms", "granted": i // 4 % 2 == 0, "source": "desk"}),
        ("update_member", {"member_id": m, "name": f"Name {i}"}),
    ]
    return as_owner(s, *writes[i % len(writes)])


async def check_erase_racing_writes(s: Stage, outs: list[Outcome]) -> None:
    assert outs[RACER].ok, outs[RACER].result.data
    assert all(o.details["current"] == "erased" for o in outs if not o.ok), "writes after the erase are refused"
    gone = await profile(s, s.member)
    assert gone["status"] == "erased" and gone["name"] == "Erased member", "no write lands after the erase"
    assert gone["tags"] == [] and gone["notes_total"] == 0 and gone["consent"] == []
    assert await left_on(s, s.member) == {"notes": 0, "tags": 0, "consent": 0}


async def setup_erase_racing_merge(s: Stage) -> None:
    s.survivor = await member(s, "Survivor")
    await ok(s, "add_member_note", {"member_id": s.survivor, "body": "keep me"})
    s.duplicate = await member(s, "Duplicate")
    merge = {"survivor_id": s.survivor, "duplicate_id": s.duplicate}
    [s.merge_token] = await tokens(s, "merge_members", merge, 1)
    s.tokens = await tokens(s, "delete_member", {"member_id": s.duplicate}, N)


def erase_racing_merge(s: Stage, i: int) -> Call:
    if i == RACER:
        merge = {"survivor_id": s.survivor, "duplicate_id": s.duplicate, "confirmation_token": s.merge_token}
        return as_owner(s, "merge_members", merge)
    return as_owner(s, "delete_member", {"member_id": s.duplicate, "confirmation_token": s.tokens[i]})


async def check_erase_racing_merge(s: Stage, outs: list[Outcome]) -> None:
    merge, erases = outs[RACER], [o for o in outs if o.i != RACER]
    if merge.ok:
        assert all(o.code == "invalid_state" and o.details["survivor_id"] == s.survivor for o in erases), (
            "erasing a merged id is refused, naming the survivor"
        )
    else:
        assert merge.code == "invalid_state" and any(o.ok for o in erases)
    [duplicate] = await rows(s, Member, col(Member.id) == s.duplicate)
    assert duplicate.status == ("merged" if merge.ok else "erased")
    again = await call(s.app, s.owner.key, "delete_member", {"member_id": s.duplicate})
    if merge.ok:
        assert again.data["error"]["code"] == "invalid_state", again.data
        assert again.data["error"]["details"]["survivor_id"] == s.survivor
    else:
        assert again.ok and again.data["status"] == "erased", "erasing an erased member again is a no-op"
    kept = await profile(s, s.survivor)
    assert kept["status"] == "active" and kept["name"] == "Survivor", "the survivor is never erased"
    assert kept["notes_total"] == 1 and kept["email"]


async def setup_merge_both_ways(s: Stage) -> None:
    s.a = await member(s, "A", tags=["from-a"])
    s.b = await member(s, "B", tags=["from-b"])
    for m in (s.a, s.b):
        await ok(s, "add_member_note", {"member_id": m, "body": f"note of {m}"})
    half = N // 2
    s.a_wins = await tokens(s, "merge_members", {"survivor_id": s.a, "duplicate_id": s.b}, half)
    s.b_wins = await tokens(s, "merge_members", {"survivor_id": s.b, "duplicate_id": s.a}, N - half)


def merge_both_ways(s: Stage, i: int) -> Call:
    survivor, duplicate, token = (s.a, s.b, s.a_wins[i // 2]) if i % 2 == 0 else (s.b, s.a, s.b_wins[i // 2])
    return as_owner(
        s, "merge_members", {"survivor_id": survivor, "duplicate_id": duplicate, "confirmation_token": token}
    )


async def check_merge_both_ways(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1, "two members merge once, in one direction"
    survivor, duplicate = winners[0].call.args["survivor_id"], winners[0].call.args["duplicate_id"]
    kept = await profile(s, survivor)
    assert kept["status"] == "active" and kept["notes_total"] == 2 and kept["tags"] == ["from-a", "from-b"]
    resolved = await profile(s, duplicate)
    assert resolved["id"] == survivor and resolved["resolved_from"] == duplicate
    assert await left_on(s, duplicate) == {"notes": 0, "tags": 0, "consent": 0}


async def setup_merge_racing_writes(s: Stage) -> None:
    s.survivor = await member(s, "Survivor")
    s.duplicate = await member(s, "Duplicate")
    [s.token] = await tokens(s, "merge_members", {"survivor_id": s.survivor, "duplicate_id": s.duplicate}, 1)


CHANNELS = ("email", "sms", "whatsapp")


def merge_racing_writes(s: Stage, i: int) -> Call:
    d = s.duplicate
    if i == RACER:
        merge = {"survivor_id": s.survivor, "duplicate_id": d, "confirmation_token": s.token}
        return as_owner(s, "merge_members", merge)
    writes = [
        ("add_member_note", {"member_id": d, "body": f"note {i}"}),
        ("attach_tags", {"member_ids": [d], "tags": [f"tag-{i}"]}),
        ("set_marketing_consent", {"member_id": d, "channel": CHANNELS[i // 3 % 3], "granted": False, "source": "x"}),
    ]
    return as_owner(s, *writes[i % len(writes)])


async def check_merge_racing_writes(s: Stage, outs: list[Outcome]) -> None:
    assert outs[RACER].ok, outs[RACER].result.data
    for o in outs:
        if not o.ok:
            assert o.code == "invalid_state" and o.details["survivor_id"] == s.survivor, o.result.data
    assert await left_on(s, s.duplicate) == {"notes": 0, "tags": 0, "consent": 0}, "nothing stays on the merged id"
    kept = await ok(s, "export_member_data", {"member_id": s.survivor})
    note_ids = {n["id"] for n in kept["records"]["notes"]}
    consent = {c["channel"]: c["granted"] for c in kept["profile"]["consent"]}
    for o in oks(outs):
        if o.call.tool == "add_member_note":
            assert o.result.data["id"] in note_ids, "a note that answered ok is on the survivor"
        elif o.call.tool == "attach_tags":
            assert o.call.args["tags"][0] in kept["profile"]["tags"], "a tag that answered ok is on the survivor"
        elif o.call.tool == "set_marketing_consent":
            assert consent[o.call.args["channel"]] is False, "an opt-out on the duplicate survives the merge"


TAGS = ("morning", "evening", "vip", "trial")


async def setup_members_3(s: Stage) -> None:
    s.members = [await member(s, f"M{n}") for n in range(3)]


def retag(s: Stage, tool: str, i: int, tags: list[str]) -> Call:
    """Overlapping targets: call i touches two of the three members (in either order) and its tags."""
    members = [s.members[i % 3], s.members[(i + 1) % 3]]
    return as_owner(s, tool, {"member_ids": members[:: 1 if i % 2 else -1], "tags": tags})


def pairs_of(outs: list[Outcome]) -> set[tuple[str, str]]:
    return {(m, t) for o in outs for m in o.call.args["member_ids"] for t in o.call.args["tags"]}


async def tags_now(s: Stage) -> dict[str, set[str]]:
    return {m: set((await profile(s, m))["tags"]) for m in s.members}


async def check_attached(s: Stage, outs: list[Outcome]) -> None:
    pairs = pairs_of(outs)
    assert sum(o.result.data["changed"] for o in outs) == len(pairs), "each member-tag pair is added exactly once"
    assert await tags_now(s) == {m: {t for mm, t in pairs if mm == m} for m in s.members}
    counted = {t["tag"]: t["members"] for t in (await ok(s, "list_tags"))["items"]}
    assert counted == Counter(t for _, t in pairs)


async def setup_detach(s: Stage) -> None:
    await setup_members_3(s)
    await ok(s, "attach_tags", {"member_ids": s.members, "tags": list(TAGS)})


async def check_detached(s: Stage, outs: list[Outcome]) -> None:
    pairs = pairs_of(outs)
    assert sum(o.result.data["changed"] for o in outs) == len(pairs), "each member-tag pair is removed exactly once"
    assert await tags_now(s) == {m: {t for t in TAGS if (m, t) not in pairs} for m in s.members}


async def setup_one_member(s: Stage) -> None:
    s.member = await member(s)


async def check_notes(s: Stage, outs: list[Outcome]) -> None:
    made = {o.result.data["id"] for o in outs}
    assert len(made) == N
    exported = await ok(s, "export_member_data", {"member_id": s.member})
    assert {n["id"] for n in exported["records"]["notes"]} == made
    assert (await profile(s, s.member))["events_total"] == 1 + N, "created, then one event per note"


def consent_call(s: Stage, i: int) -> Call:
    """sms: every call opts in; email: calls alternate opt-in and opt-out."""
    channel, granted = ("sms", True) if i % 2 else ("email", (i // 2) % 2 == 0)
    return as_owner(
        s, "set_marketing_consent", {"member_id": s.member, "channel": channel, "granted": granted, "source": f"s{i}"}
    )


async def check_consent(s: Stage, outs: list[Outcome]) -> None:
    log = await rows(s, ConsentEvent, col(ConsentEvent.member_id) == s.member)
    log.sort(key=lambda e: (e.recorded_at, e.id))  # the order the tool reads "latest" in
    sms = [e.granted for e in log if e.channel == "sms"]
    assert sms == [True], "twenty identical opt-ins record one row"
    email = [e.granted for e in log if e.channel == "email"]
    assert all(a != b for a, b in pairwise(email)), f"no repeated state in the log: {email}"
    latest = {c["channel"]: c["granted"] for c in (await profile(s, s.member))["consent"]}
    assert latest == {"sms": True, "email": email[-1]}


async def setup_import_preview(s: Stage) -> None:
    s.existing = await member(s, "Existing")
    s.existing_email = (await profile(s, s.existing))["email"]
    s.shared = unique_email("shared")


def import_preview(s: Stage, i: int) -> Call:
    rows_ = [
        {"name": "Shared", "email": s.shared},
        {"name": f"Own {i}", "email": f"own{i}.{s.shared}"},
        {"name": "Clash", "email": s.existing_email},
    ]
    return as_owner(s, "preview_member_import", {"rows": rows_})


async def check_import_preview(s: Stage, outs: list[Outcome]) -> None:
    assert len({o.result.data["import_id"] for o in outs}) == N
    assert all(o.result.data["valid_rows"] == 2 and len(o.result.data["duplicates"]) == 1 for o in outs)
    found = await ok(s, "search_members", {"limit": 100})
    assert [m["id"] for m in found["items"]] == [s.existing], "a preview creates nobody"


async def setup_import_commit(s: Stage) -> None:
    """Two staged imports that overlap in two emails, committed ten times each, all at once."""
    tag = uuid.uuid4().hex[:8]
    s.emails = [f"imp{n}.{tag}@example.com" for n in range(8)]
    s.imports = []
    for chunk in (s.emails[:5], s.emails[3:]):
        staged = await ok(s, "preview_member_import", {"rows": [{"name": "I", "email": e} for e in chunk]})
        assert staged["valid_rows"] == 5
        s.imports.append(staged["import_id"])


async def check_import_commit(s: Stage, outs: list[Outcome]) -> None:
    first = {}
    for o in outs:
        first.setdefault(o.call.args["import_id"], o.result.data)
        assert o.result.data == first[o.call.args["import_id"]], "a commit applies once; repeats answer the same"
    assert sum(r["created"] for r in first.values()) == len(s.emails), "each row created once over both imports"
    found = await ok(s, "search_members", {"limit": 100})
    assert sorted(m["email"] for m in found["items"]) == sorted(s.emails), "no email twice"


# -- team ----------------------------------------------------------------------------------------------------------

INVITE_EMAILS = 4


async def setup_invites(s: Stage) -> None:
    s.emails = [unique_email("invitee") for _ in range(INVITE_EMAILS)]


async def check_invites(s: Stage, outs: list[Outcome]) -> None:
    pending = (await ok(s, "list_team_invites", {"status": "pending", "limit": 100}))["items"]
    assert sorted(i["email"] for i in pending) == sorted(s.emails), "one pending invite per email"
    by_email = {i["email"]: i["id"] for i in pending}
    assert len(oks(outs)) == INVITE_EMAILS
    for o in outs:
        if not o.ok:
            assert o.details["invite_id"] == by_email[o.call.args["email"]], "the conflict names the invite"
    for email in s.emails:
        assert len(await emails_to(s.app, email)) == 1, "one invite email"


async def setup_one_invite(s: Stage) -> None:
    s.email, s.invite_id = await invite(s.app, s.owner.key)


async def check_invite_revoked(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data["status"] == "revoked" for o in outs)
    assert len(await rows(s, StateTransition, col(StateTransition.entity_id) == s.invite_id)) == 1
    assert len(await changed_by(s, outs)) == 1, "revoked once"


async def setup_revoke_racing_accept(s: Stage) -> None:
    await setup_one_invite(s)
    token = await invite_token(s.app, s.email)
    requested = await ok(s, "accept_team_invite_request", {"invite_token": token}, anonymous=True)
    s.code = {"request_id": requested["request_id"], "code": await latest_code(s.app, s.email)}


def revoke_racing_accept(s: Stage, i: int) -> Call:
    if i == RACER:
        return Call("accept_team_invite_verify", dict(s.code), None)
    return as_owner(s, "revoke_team_invite", {"invite_id": s.invite_id})


async def check_revoke_racing_accept(s: Stage, outs: list[Outcome]) -> None:
    accepted, revokes = outs[RACER], [o for o in outs if o.i != RACER]
    state = [i["status"] for i in (await ok(s, "list_team_invites", {"limit": 100}))["items"] if i["id"] == s.invite_id]
    joined = [u for u in (await team(s)).values() if u["email"] == s.email]
    if accepted.ok:
        assert state == ["accepted"] and len(joined) == 1
        assert all(o.code == "invalid_state" for o in revokes), "an accepted invite cannot be revoked"
    else:
        assert accepted.code == "not_found" and state == ["revoked"] and joined == []
        assert all(o.ok for o in revokes)
    assert len(await rows(s, StateTransition, col(StateTransition.entity_id) == s.invite_id)) == 1


async def setup_two_owners(s: Stage) -> None:
    s.second = await join(s.app, s.owner, "admin")
    await ok(s, "update_team_member_role", {"user_id": s.second.user_id, "role": "owner"})


def demotion(s: Stage, i: int) -> Call:
    """Each owner demotes the other or themselves, all at once."""
    me, other = (s.owner.key, s.owner.user_id), (s.second.key, s.second.user_id)
    caller, target = [(me, other), (other, me), (me, me), (other, other)][i % 4]
    return Call("update_team_member_role", {"user_id": target[1], "role": "admin"}, caller[0])


async def check_demotions(s: Stage, outs: list[Outcome]) -> None:
    owners = [u for u in (await team(s)).values() if u["role"] == "owner" and u["status"] == "active"]
    assert len(owners) == 1, "there is always an owner; the first demotion leaves exactly one"
    assert len(await changed_by(s, outs)) == 1, "one role actually changed"


async def setup_deactivate(s: Stage) -> None:
    s.staff = await join(s.app, s.owner, "staff")
    s.tokens = await tokens(s, "deactivate_team_member", {"user_id": s.staff.user_id}, N)


async def check_deactivated(s: Stage, outs: list[Outcome]) -> None:
    assert (await team(s))[s.staff.user_id]["status"] == "deactivated"
    assert not await works(s, s.staff.key)
    [change] = await changed_by(s, outs)
    assert change["changes"]["user_id"] == s.staff.user_id and len(change["changes"]["revoked_key_ids"]) == 1


async def setup_admins_at_each_other(s: Stage) -> None:
    s.a = await join(s.app, s.owner, "admin")
    s.b = await join(s.app, s.owner, "admin")
    half = N // 2
    s.a_tokens = await tokens(s, "deactivate_team_member", {"user_id": s.b.user_id}, half, key=s.a.key)
    s.b_tokens = await tokens(s, "deactivate_team_member", {"user_id": s.a.user_id}, N - half, key=s.b.key)


def admins_at_each_other(s: Stage, i: int) -> Call:
    caller, target, token = (s.a, s.b, s.a_tokens[i // 2]) if i % 2 == 0 else (s.b, s.a, s.b_tokens[i // 2])
    return Call("deactivate_team_member", {"user_id": target.user_id, "confirmation_token": token}, caller.key)


async def check_admins_at_each_other(s: Stage, outs: list[Outcome]) -> None:
    members = await team(s)
    status = {p.user_id: members[p.user_id]["status"] for p in (s.a, s.b)}
    assert sorted(status.values()) == ["active", "deactivated"], "exactly one of two admins deactivates the other"
    winner, loser = (s.a, s.b) if status[s.a.user_id] == "active" else (s.b, s.a)
    assert await works(s, winner.key) and not await works(s, loser.key)
    assert all(o.ok for o in outs if o.call.key == winner.key)
    assert all(o.code == "unauthenticated" for o in outs if o.call.key == loser.key), "a deactivated caller stops"


async def setup_staff(s: Stage) -> None:
    s.staff = await join(s.app, s.owner, "staff")


def working_hours(s: Stage, i: int) -> Call:
    weekly = {"mon": [{"open": "09:00", "close": f"17:{i:02d}"}], "tue": [{"open": "08:00", "close": f"16:{i:02d}"}]}
    return as_owner(s, "set_staff_working_hours", {"user_id": s.staff.user_id, "weekly": weekly})


async def check_working_hours(s: Stage, outs: list[Outcome]) -> None:
    weekly = (await schedule(s, s.staff.user_id))["weekly"]
    i = int(weekly["mon"][0]["close"][3:5])
    assert weekly["tue"][0]["close"].startswith(f"16:{i:02d}"), "one call's week, not a mix"


def time_off(s: Stage, i: int) -> Call:
    """Two of three calls want overlapping morning hours, the third the afternoon that touches them."""
    start, end = [("09:00", "12:00"), ("10:00", "11:00"), ("12:00", "15:00")][i % 3]
    return as_owner(s, "add_staff_time_off", block(s, start, end))


async def check_time_off(s: Stage, outs: list[Outcome]) -> None:
    live = (await schedule(s, s.staff.user_id))["time_off"]
    assert len(oks(outs)) == 2 and {b["id"] for b in live} == {o.result.data["id"] for o in oks(outs)}
    assert live[0]["ends_at"] <= live[1]["starts_at"], "blocks of one person never overlap"
    assert all(o.details["time_off_id"] in {b["id"] for b in live} for o in outs if not o.ok), "conflicts name it"


async def setup_time_off(s: Stage) -> None:
    await setup_staff(s)
    s.block = (await ok(s, "add_staff_time_off", block(s, "09:00", "12:00")))["id"]


async def check_time_off_removed(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data == outs[0].result.data for o in outs), "repeats answer as the first removal did"
    assert (await schedule(s, s.staff.user_id))["time_off"] == []
    assert len(await changed_by(s, outs)) == 1, "removed once"


def remove_racing_adds(s: Stage, i: int) -> Call:
    if i == RACER:
        return as_owner(s, "remove_staff_time_off", {"time_off_id": s.block})
    return as_owner(s, "add_staff_time_off", block(s, "09:00", "12:00"))


async def check_remove_racing_adds(s: Stage, outs: list[Outcome]) -> None:
    assert outs[RACER].ok
    added = [o.result.data["id"] for o in oks(outs) if o.i != RACER]
    live = [b["id"] for b in (await schedule(s, s.staff.user_id))["time_off"]]
    assert len(added) <= 1 and live == added, "the freed hours are blocked again at most once"


# -- approvals ------------------------------------------------------------------------------------------------------


async def check_nothing_requested(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.code == "validation_failed" for o in outs), "only approval-gated tools can be requested"
    assert await rows(s, ApprovalRequest, col(ApprovalRequest.workspace_id) == s.owner.workspace_id) == []


async def setup_stored_request(s: Stage) -> None:
    """A free-text SMS that the default policy holds for approval: approving it decides once and sends once."""
    s.manager = await join(s.app, s.owner, "manager")
    twilio = {"account_sid": "AC" + "0" * 32, "auth_token": "race-token", "from_number": "+15005550006"}
    await ok(s, "configure_channel", {"channel": "sms", "quiet_hours": None, **twilio})
    s.member = (await ok(s, "create_member", {"name": "Ann Offer", "phone": "+31612345678"}))["id"]
    consent = {"member_id": s.member, "channel": "sms", "granted": True, "source": "front desk"}
    await ok(s, "set_marketing_consent", consent)
    held = await ok(s, "send_message", {"member_id": s.member, "channel": "sms", "text": "Spring offer"})
    assert held["status"] == "pending_approval", held
    s.approval_id = held["approval_id"]


def as_manager(s: Stage, tool: str, args: dict[str, Any]) -> Call:
    return Call(tool, args, s.manager.key)


async def check_decided_once(s: Stage, outs: list[Outcome]) -> None:
    done = oks(outs)
    assert len(done) == 1 and all(o.code == "invalid_state" for o in outs if not o.ok), "one decision"
    assert done[0].result.data["status"] == "executed", done[0].result.data
    moves = await rows(s, StateTransition, col(StateTransition.entity_id) == s.approval_id)
    assert sorted((m.from_state, m.to_state) for m in moves) == [("approved", "executed"), ("pending", "approved")]
    sent = await rows(s, Message, col(Message.member_id) == s.member)
    assert [(m.body, m.status) for m in sent] == [("Spring offer", MessageStatus.queued)], "sent once"


async def check_rejected_once(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data["status"] == "rejected" for o in outs)
    assert len({o.result.data["reason"] for o in outs}) == 1, "the first reason stands"
    assert len(await rows(s, StateTransition, col(StateTransition.entity_id) == s.approval_id)) == 1


def approval_policy(i: int) -> dict[str, Any]:
    return {"expiry_hours": i + 1, "rules": [{"channel": "sms", "kind": "marketing", "needs_approval": i % 2 == 0}]}


async def check_policy(s: Stage, outs: list[Outcome]) -> None:
    final = await ok(s, "get_approval_policy")
    pairs = [(r["channel"], r["kind"]) for r in final["rules"]]
    assert len(pairs) == len(set(pairs)) == 9, "one rule per channel and kind"
    rule = next(r for r in final["rules"] if (r["channel"], r["kind"]) == ("sms", "marketing"))
    assert approval_policy(final["expiry_hours"] - 1)["rules"][0] == rule, "the last writer's policy, whole"


# -- the table -----------------------------------------------------------------------------------------------------


async def nothing(s: Stage) -> None:
    return None


CORE_SCENARIOS: dict[str, Scenario] = {
    "register_organisation_request: 4 emails, 5 requests each": Scenario(
        "register_organisation_request",
        setup_signup_requests,
        signup_request,
        check_signup_requests,
        frozenset({"rate_limited"}),
    ),
    "register_organisation_verify: one code": Scenario(
        "register_organisation_verify",
        setup_signup_verify,
        lambda s, i: Call("register_organisation_verify", {"request_id": s.request_id, "code": s.code}, None),
        check_signup_verify,
        frozenset({"validation_failed"}),
    ),
    "accept_team_invite_request: one invite token": Scenario(
        "accept_team_invite_request",
        setup_invite_requests,
        lambda s, i: Call("accept_team_invite_request", {"invite_token": s.token}, None),
        check_invite_requests,
        frozenset({"rate_limited"}),
    ),
    "accept_team_invite_verify: three codes for one invite": Scenario(
        "accept_team_invite_verify",
        setup_invite_verify,
        lambda s, i: Call("accept_team_invite_verify", dict(s.codes[i % 3]), None),
        check_invite_verify,
        frozenset({"validation_failed", "not_found"}),
    ),
    "update_workspace": Scenario(
        "update_workspace",
        nothing,
        lambda s, i: as_owner(s, "update_workspace", {"name": f"Studio {i}", "industry": f"yoga {i}"}),
        check_workspace_update,
    ),
    "set_business_hours": Scenario(
        "set_business_hours",
        nothing,
        lambda s, i: as_owner(s, "set_business_hours", business_hours(i)),
        check_business_hours,
    ),
    "create_api_key": Scenario(
        "create_api_key",
        nothing,
        lambda s, i: as_owner(s, "create_api_key", {"name": f"agent {i}"}),
        check_new_keys,
    ),
    "create_api_key: one idempotency key": Scenario(
        "create_api_key",
        nothing,
        lambda s, i: as_owner(s, "create_api_key", {"name": "agent"}),
        check_one_key_replayed,
        one_key=True,
    ),
    "revoke_api_key: one token spent 20 times": Scenario(
        "revoke_api_key",
        lambda s: setup_revoke(s, 1),
        lambda s, i: as_owner(s, "revoke_api_key", {"key_id": s.target, "confirmation_token": s.tokens[0]}),
        check_revoke_one_token,
        frozenset({"confirmation_required"}),
    ),
    "revoke_api_key: a token each": Scenario(
        "revoke_api_key",
        lambda s: setup_revoke(s, N),
        lambda s, i: as_owner(s, "revoke_api_key", {"key_id": s.target, "confirmation_token": s.tokens[i]}),
        check_revoked,
    ),
    "create_member: one email": Scenario(
        "create_member",
        setup_one_email,
        lambda s, i: as_owner(s, "create_member", {"name": f"Twin {i}", "email": s.email}),
        check_one_create,
        frozenset({"conflict"}),
    ),
    "update_member: four members want one email": Scenario(
        "update_member",
        setup_update_members,
        lambda s, i: as_owner(
            s, "update_member", {"member_id": s.members[i % 4], "email": s.email, "name": f"Renamed {i}"}
        ),
        check_update_members,
        frozenset({"conflict"}),
    ),
    "delete_member: a token each": Scenario(
        "delete_member",
        setup_erase,
        lambda s, i: as_owner(s, "delete_member", {"member_id": s.member, "confirmation_token": s.tokens[i]}),
        check_erased,
    ),
    "delete_member: one token, one idempotency key": Scenario(
        "delete_member",
        setup_erase,
        lambda s, i: as_owner(s, "delete_member", {"member_id": s.member, "confirmation_token": s.tokens[0]}),
        check_erase_one_key,
        one_key=True,
    ),
    "delete_member racing notes, tags, consent and updates": Scenario(
        "delete_member",
        setup_erase_racing_writes,
        erase_racing_writes,
        check_erase_racing_writes,
        frozenset({"invalid_state"}),
    ),
    "delete_member of the duplicate racing its merge": Scenario(
        "delete_member",
        setup_erase_racing_merge,
        erase_racing_merge,
        check_erase_racing_merge,
        frozenset({"invalid_state"}),
    ),
    "merge_members: both directions, a token each": Scenario(
        "merge_members",
        setup_merge_both_ways,
        merge_both_ways,
        check_merge_both_ways,
        frozenset({"invalid_state"}),
    ),
    "merge_members racing notes, tags and opt-outs on the duplicate": Scenario(
        "merge_members",
        setup_merge_racing_writes,
        merge_racing_writes,
        check_merge_racing_writes,
        frozenset({"invalid_state"}),
    ),
    "attach_tags: overlapping members and tags": Scenario(
        "attach_tags",
        setup_members_3,
        lambda s, i: retag(s, "attach_tags", i, [TAGS[i % 4], TAGS[(i + 1) % 4]]),
        check_attached,
    ),
    "detach_tags: overlapping members and tags": Scenario(
        "detach_tags",
        setup_detach,
        lambda s, i: retag(s, "detach_tags", i, [TAGS[i % 3]]),
        check_detached,
    ),
    "add_member_note": Scenario(
        "add_member_note",
        setup_one_member,
        lambda s, i: as_owner(
            s, "add_member_note", {"member_id": s.member, "body": f"n{i}", "written_by": ("staff", "customer")[i % 2]}
        ),
        check_notes,
    ),
    "set_marketing_consent: same and alternating states": Scenario(
        "set_marketing_consent",
        setup_one_member,
        consent_call,
        check_consent,
    ),
    "preview_member_import": Scenario(
        "preview_member_import",
        setup_import_preview,
        import_preview,
        check_import_preview,
    ),
    "commit_member_import: two overlapping imports": Scenario(
        "commit_member_import",
        setup_import_commit,
        lambda s, i: as_owner(s, "commit_member_import", {"import_id": s.imports[i % 2]}),
        check_import_commit,
    ),
    "create_team_member_invite: 4 emails": Scenario(
        "create_team_member_invite",
        setup_invites,
        lambda s, i: as_owner(
            s, "create_team_member_invite", {"email": s.emails[i % INVITE_EMAILS], "role": "staff", "name": f"P{i}"}
        ),
        check_invites,
        frozenset({"conflict"}),
    ),
    "revoke_team_invite": Scenario(
        "revoke_team_invite",
        setup_one_invite,
        lambda s, i: as_owner(s, "revoke_team_invite", {"invite_id": s.invite_id}),
        check_invite_revoked,
    ),
    "revoke_team_invite racing its acceptance": Scenario(
        "revoke_team_invite",
        setup_revoke_racing_accept,
        revoke_racing_accept,
        check_revoke_racing_accept,
        frozenset({"invalid_state", "not_found"}),
    ),
    "update_team_member_role: two owners demote each other and themselves": Scenario(
        "update_team_member_role",
        setup_two_owners,
        demotion,
        check_demotions,
        frozenset({"forbidden", "invalid_state"}),
    ),
    "deactivate_team_member: a token each": Scenario(
        "deactivate_team_member",
        setup_deactivate,
        lambda s, i: as_owner(
            s, "deactivate_team_member", {"user_id": s.staff.user_id, "confirmation_token": s.tokens[i]}
        ),
        check_deactivated,
    ),
    "deactivate_team_member: two admins at each other": Scenario(
        "deactivate_team_member",
        setup_admins_at_each_other,
        admins_at_each_other,
        check_admins_at_each_other,
        frozenset({"unauthenticated"}),
    ),
    "set_staff_working_hours": Scenario(
        "set_staff_working_hours",
        setup_staff,
        working_hours,
        check_working_hours,
    ),
    "add_staff_time_off: overlapping and touching blocks": Scenario(
        "add_staff_time_off",
        setup_staff,
        time_off,
        check_time_off,
        frozenset({"conflict"}),
    ),
    "remove_staff_time_off": Scenario(
        "remove_staff_time_off",
        setup_time_off,
        lambda s, i: as_owner(s, "remove_staff_time_off", {"time_off_id": s.block}),
        check_time_off_removed,
    ),
    "remove_staff_time_off racing re-adds of the same hours": Scenario(
        "remove_staff_time_off",
        setup_time_off,
        remove_racing_adds,
        check_remove_racing_adds,
        frozenset({"conflict"}),
    ),
    "request_send_approval: a tool that is not gated": Scenario(
        "request_send_approval",
        nothing,
        lambda s, i: as_owner(s, "request_send_approval", {"tool": "create_member", "arguments": {"name": f"m{i}"}}),
        check_nothing_requested,
        frozenset({"validation_failed"}),
    ),
    "approve_request: twenty deciders on one request": Scenario(
        "approve_request",
        setup_stored_request,
        lambda s, i: as_manager(s, "approve_request", {"approval_id": s.approval_id}),
        check_decided_once,
        frozenset({"invalid_state"}),
    ),
    "reject_request: twenty rejections of one request": Scenario(
        "reject_request",
        setup_stored_request,
        lambda s, i: as_manager(s, "reject_request", {"approval_id": s.approval_id, "reason": f"no {i}"}),
        check_rejected_once,
    ),
    "set_approval_policy": Scenario(
        "set_approval_policy",
        nothing,
        lambda s, i: as_owner(s, "set_approval_policy", approval_policy(i)),
        check_policy,
    ),
}


def _domain_scenarios() -> dict[str, Scenario]:
    found: dict[str, Scenario] = {}
    for module in pkgutil.iter_modules(races.__path__):
        declared = importlib.import_module(f"{races.__name__}.{module.name}").SCENARIOS
        assert not set(declared) & set(found), f"race names declared twice: {sorted(set(declared) & set(found))}"
        found.update(declared)
    return found


SCENARIOS = {**CORE_SCENARIOS, **_domain_scenarios()}


# -- the tests -----------------------------------------------------------------------------------------------------


async def test_every_mutating_tool_has_a_race(app: App) -> None:
    mutating = {spec.name for spec in app.registry.listed() if spec.mutating}
    covered = {scenario.tool for scenario in SCENARIOS.values()}
    assert not mutating - covered, f"declare a race in SCENARIOS for: {sorted(mutating - covered)}"
    assert not covered - mutating, f"not a mutating tool: {sorted(covered - mutating)}"


DATABASES = ["postgres", "sqlite"] if os.environ.get("FAVMCP_RACES_ON_SQLITE") == "1" else ["postgres"]


def _races() -> list[Any]:
    races = []
    for database in DATABASES:
        for name in SCENARIOS:
            races.append(pytest.param(database, name, id=f"{database}-{name}"))
    return races


@pytest.mark.parametrize(("database_url", "name"), _races(), indirect=["database_url"])
async def test_twenty_parallel_calls(app: App, owner: Owner, name: str) -> None:
    scenario = SCENARIOS[name]
    stage = Stage(app=app, owner=owner)
    await scenario.setup(stage)
    calls = [scenario.call(stage, i) for i in range(N)]
    shared_key = f"race-{uuid.uuid4().hex}"
    for i, c in enumerate(calls):
        spec = app.registry.get(c.tool)
        assert spec.mutating, f"{c.tool} is read-only: read in the check, not in the race"
        if "confirmation_token" in c.args:
            assert issubclass(spec.input_model, ConfirmInput)
        c.args.setdefault("idempotency_key", shared_key if scenario.one_key else f"race-{i}-{uuid.uuid4().hex}")
    results = await asyncio.gather(*[call(app, c.key, c.tool, c.args) for c in calls])
    outs = [Outcome(i, c, r) for i, (c, r) in enumerate(zip(calls, results, strict=True))]
    answers = [(o.i, o.call.tool, o.code, o.result.data["error"]["message"]) for o in outs if not o.ok]
    assert not [a for a in answers if a[2] == "internal_error"], f"internal_error under concurrency: {answers}"
    assert not [a for a in answers if a[2] not in scenario.refusals], f"refusals this race should not give: {answers}"
    await scenario.check(stage, outs)
