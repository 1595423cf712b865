"""Property: random sequences of member, team and key calls, from two workspaces and three roles, never show one
workspace's ids or data to the other, never change the other workspace, and no role ever gets past its scopes.
A staff key never sees a customer or booking that is not theirs (their bookings and those bookings' customers),
and such a record answers exactly like one that does not exist.

Ids of the other workspace are mixed into the arguments on purpose. Destructive tools walk the confirm gate: the
preview first, then the call with its token. A preview that refuses a foreign id hands out no token, so the test
also calls with the token the server would have issued had the preview let it through (signed with the app's
secret, bound to the tool, the exact arguments and the caller): erase, merge, revoke and deactivate are really
attempted across workspaces, and their handlers must be sealed on their own, not only their previews. A record of
another workspace must answer exactly like one that does not exist.

The number of examples comes from the hypothesis profile: `ci` (default, bounded) or `thorough`
(HYPOTHESIS_PROFILE=thorough uv run pytest tests/test_isolation_property.py).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from sqlalchemy import select
from sqlmodel import col

from favmcp.app import App
from favmcp.auth import scopes
from favmcp.auth.models import ApiKey, Role, User
from favmcp.core.errors import FavError
from favmcp.core.ids import new_id
from favmcp.domains.members.models import Member
from favmcp.registry import confirm
from favmcp.registry.runner import CallResult, args_hash, validate
from tests.staff_kit import insert_booking, insert_service
from tests.support import Owner, call, error_code, join, signup

# CI is bounded and repeatable (derandomized); `thorough` explores new examples on every run.
# CI reports a failing example as found: each example builds two workspaces, so shrinking would take minutes.
settings.register_profile(
    "ci",
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROLES = ("owner", "manager", "staff")
TEAM_ADMIN = {
    "create_team_member_invite",
    "update_team_member_role",
    "set_staff_working_hours",
    "deactivate_team_member",
}
KEY_ADMIN = {"list_api_keys", "revoke_api_key"}
ERASE = {"export_member_data", "delete_member", "merge_members"}
# What domain-rules.md and the issue say each role may not do, written out independently of the scope table.
REFUSED = {
    "owner": set(),
    "manager": TEAM_ADMIN | KEY_ADMIN | ERASE,
    "staff": TEAM_ADMIN | KEY_ADMIN | ERASE | {"create_member"},
}
CONFIRMED = {"delete_member", "merge_members", "revoke_api_key", "deactivate_team_member"}
ID = re.compile(r"\b(?:ws|usr|key|mem|bkg)_[0-9a-z]{26}\b")


@dataclass
class Workspace:
    name: str
    id: str
    marker: str
    keys: dict[str, str]  # role label -> secret
    key_ids: dict[str, str]  # role label -> key id
    user_ids: dict[str, str]  # role label -> user id
    roles: dict[str, str]  # role label -> the role its user has now (the owner may change it)
    spare_user: str = ""  # a team member the test may deactivate; their key and spare_keys may be revoked
    spare_keys: list[str] = field(default_factory=list)
    member_ids: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)  # every id of this workspace the test has seen
    erased: set[str] = field(default_factory=set)
    merged: dict[str, str] = field(default_factory=dict)  # merged member id -> survivor id
    revoked: set[str] = field(default_factory=set)
    deactivated: set[str] = field(default_factory=set)
    booked: dict[str, set[str]] = field(default_factory=dict)  # member id -> staff user ids with a booking of them
    bookings: dict[str, str] = field(default_factory=dict)  # booking id -> its staff user id

    def gone(self, member_id: str) -> bool:
        return member_id in self.erased or member_id in self.merged

    def hidden_from(self, label: str) -> set[str]:
        """The member and booking ids of this workspace that `label`'s key may not see (none unless staff)."""
        if self.roles[label] != "staff":
            return set()
        user = self.user_ids[label]
        members = {m for m in self.member_ids if user not in self.booked.get(m, set())}
        return members | {b for b, staff in self.bookings.items() if staff != user}


async def key_id(app: App, key: str) -> str:
    me = await call(app, key, "whoami")
    assert me.ok, me.data
    return str(me.data["key_id"])


async def build(app: App, name: str) -> Workspace:
    owner: Owner = await signup(app, name=name)
    marker = f"{name}-{uuid.uuid4().hex[:6]}"
    ws = Workspace(
        name, owner.workspace_id, marker, {"owner": owner.key}, {"owner": owner.key_id}, {"owner": owner.user_id},
        {"owner": "owner"},
    )  # fmt: skip
    for role in ("manager", "staff"):
        member = await join(app, owner, role)
        ws.keys[role], ws.user_ids[role], ws.roles[role] = member.key, member.user_id, role
        ws.key_ids[role] = await key_id(app, member.key)
    spare = await join(app, owner, "staff")
    ws.spare_user = spare.user_id
    ws.spare_keys.append(await key_id(app, spare.key))
    made = await call(app, owner.key, "create_api_key", {"name": f"{marker} spare", "scopes": ["members:read"]})
    ws.spare_keys.append(made.data["key"]["id"])
    first = await call(app, owner.key, "create_member", {"name": f"{marker} first", "email": f"{marker}@x.example"})
    second = await call(app, owner.key, "create_member", {"name": f"{marker} second", "email": f"{marker}.2@x.example"})
    ws.member_ids += [first.data["id"], second.data["id"]]
    # The first customer is the staff member's (a booking with them), the second the spare staff member's.
    service = await insert_service(app, ws.id)
    start = app.runner.clock.now().replace(microsecond=0) + timedelta(days=1)
    pairs = ((ws.member_ids[0], ws.user_ids["staff"]), (ws.member_ids[1], spare.user_id))
    for n, (member_id, staff) in enumerate(pairs):
        at = start + timedelta(days=n)
        booking = await insert_booking(
            app, ws.id, member_id=member_id, staff_user_id=staff, service_id=service, starts_at=at
        )
        ws.bookings[booking] = staff
        ws.booked.setdefault(member_id, set()).add(staff)
    ws.ids |= {ws.id, *ws.user_ids.values(), *ws.key_ids.values(), spare.user_id, *ws.spare_keys, *ws.member_ids}
    ws.ids |= set(ws.bookings)
    return ws


def step_args(draw: st.DrawFn, own: Workspace, other: Workspace) -> tuple[str, dict[str, Any]]:
    """A tool and its arguments; ids may come from the other workspace on purpose (in either merge position)."""

    def pool() -> Workspace:
        return draw(st.sampled_from([own, own, other]))

    member = draw(st.sampled_from(pool().member_ids))
    booking = draw(st.sampled_from(sorted(pool().bookings)))
    survivor = draw(st.sampled_from(pool().member_ids))
    users = pool()
    user = draw(st.sampled_from([*users.user_ids.values(), users.spare_user]))
    # Own targets of revocation and deactivation are the spares (the role keys must keep working); any of the
    # other workspace's keys and users may be aimed at.
    keys = pool()
    key = draw(st.sampled_from(keys.spare_keys if keys is own else [*other.key_ids.values(), *other.spare_keys]))
    gone = pool()
    leaving = draw(st.sampled_from([own.spare_user] if gone is own else [*other.user_ids.values(), other.spare_user]))
    n = draw(st.integers(0, 10_000))
    choices: list[tuple[str, dict[str, Any]]] = [
        (
            "create_member",
            {"name": f"{own.marker} m{n}", "email": f"{own.marker}.{n}.{uuid.uuid4().hex[:4]}@x.example"},
        ),
        ("get_member_profile", {"member_id": member}),
        ("search_members", {"text": draw(st.sampled_from([own.marker, other.marker, "first"]))}),
        ("search_members", {"limit": draw(st.integers(1, 5))}),
        ("update_member", {"member_id": member, "source": f"{own.marker} src"}),
        ("add_member_note", {"member_id": member, "body": f"{own.marker} note {n}"}),
        ("attach_tags", {"member_ids": [member], "tags": [f"t{n % 3}"]}),
        ("list_tags", {}),
        ("get_member_timeline", {"member_id": member}),
        ("list_bookings", {}),
        ("list_bookings", {"member_id": member}),
        ("get_booking_detail", {"booking_id": booking}),
        ("export_member_data", {"member_id": member}),
        # The destructive tools twice: they are what the gate and the seal are for.
        ("delete_member", {"member_id": member}),
        ("delete_member", {"member_id": member}),
        ("merge_members", {"survivor_id": survivor, "duplicate_id": member}),
        ("merge_members", {"survivor_id": survivor, "duplicate_id": member}),
        ("set_marketing_consent", {"member_id": member, "channel": "sms", "granted": bool(n % 2), "source": "p"}),
        ("list_team_members", {}),
        ("list_team_invites", {}),
        ("create_team_member_invite", {"email": f"{own.marker}.inv{n}@x.example", "role": "staff"}),
        ("update_team_member_role", {"user_id": user, "role": draw(st.sampled_from(["manager", "staff"]))}),
        ("get_staff_schedule", {"user_id": user, "from_date": "2027-01-04", "to_date": "2027-01-10"}),
        ("set_staff_working_hours", {"user_id": user, "weekly": {"mon": [{"open": "09:00", "close": "17:00"}]}}),
        ("deactivate_team_member", {"user_id": leaving}),
        ("deactivate_team_member", {"user_id": leaving}),
        ("list_api_keys", {}),
        ("revoke_api_key", {"key_id": key}),
        ("revoke_api_key", {"key_id": key}),
    ]
    return draw(st.sampled_from(choices))


@st.composite
def calls(draw: st.DrawFn, own: Workspace, other: Workspace) -> tuple[str, dict[str, Any]]:
    return step_args(draw, own, other)


def leaks(answer: dict[str, Any], sent: dict[str, Any], other: Workspace) -> list[str]:
    """The other workspace's ids or data in an answer (an id the caller itself sent may be echoed back)."""
    text, asked = json.dumps(answer), json.dumps(sent)
    found = [i for i in other.ids if i in text and i not in asked]
    if other.marker in text and other.marker not in asked:
        found.append(other.marker)
    return found


def named_ids(args: dict[str, Any]) -> list[str]:
    return ID.findall(json.dumps(args))


def valid(app: App, tool: str, args: dict[str, Any]) -> bool:
    try:
        validate(app.registry.specs[tool], args)
    except FavError:
        return False
    return True


def minted(app: App, tool: str, args: dict[str, Any], credential: str) -> str:
    """The token the server issues for exactly these arguments and this caller (what a passed preview hands out)."""
    spec = app.registry.specs[tool]
    token, _ = confirm.issue(
        app.settings.secret_key,
        tool=tool,
        args_hash=args_hash(validate(spec, args)),
        credential=credential,
        now=app.runner.clock.now(),
    )
    return token


async def through_the_gate(app: App, key: str, credential: str, tool: str, args: dict[str, Any]) -> list[CallResult]:
    """A call and, for a confirm-gated tool, its second call: with the preview's token when one was handed out,
    else (the preview refused, or a role that may not call it) with a token minted for these exact arguments."""
    first = await call(app, key, tool, args)
    if tool not in CONFIRMED or first.ok or first.data["error"]["code"] == "validation_failed":
        return [first]
    error = first.data["error"]
    if error["code"] == "confirmation_required":
        details = error["details"]
        assert details["preview"]["summary"] and details["preview"]["nothing_to_do"] is False, details
        token = details["confirmation_token"]
    else:
        if not valid(app, tool, args):  # arguments no call could pass (a refused role is told before they are read)
            return [first]
        token = minted(app, tool, args, credential)
    return [first, await call(app, key, tool, {**args, "confirmation_token": token})]


def masked(result: CallResult, ids: list[str]) -> dict[str, Any]:
    """An error body with the named ids blanked out and without its request id, to compare two answers."""
    text = json.dumps(result.data["error"], sort_keys=True)
    for i in ids:
        text = text.replace(i, "<id>")
    body: dict[str, Any] = json.loads(text)
    body.pop("request_id", None)
    return body


async def answers_like_a_missing_record(
    app: App, ws: Workspace, label: str, tool: str, args: dict[str, Any], got: list[CallResult], foreign: str
) -> None:
    """The same call with an id that exists nowhere answers the same way, step for step."""
    ghost_id = new_id(foreign.split("_")[0])
    ghost_args = json.loads(json.dumps(args).replace(foreign, ghost_id))
    ghost = await through_the_gate(app, ws.keys[label], ws.key_ids[label], tool, ghost_args)
    assert [masked(r, [foreign]) for r in got] == [masked(r, [ghost_id]) for r in ghost], (tool, args)


def check_refusal_of_gone_member(result: CallResult, own: Workspace, args: dict[str, Any]) -> None:
    """Writes naming an erased or merged member answer invalid_state; a merged one names its survivor."""
    error = result.data["error"]
    named = named_ids(args)
    assert any(own.gone(i) for i in named), (args, error)
    if error["details"]["current"] == "merged":
        assert error["details"]["survivor_id"] in {own.merged[i] for i in named if i in own.merged}, (args, error)


def record_success(own: Workspace, tool: str, args: dict[str, Any], data: dict[str, Any]) -> None:
    if tool == "create_member":
        own.member_ids.append(data["id"])
    elif tool == "delete_member":
        own.erased.add(args["member_id"])
    elif tool == "merge_members":
        survivor, duplicate = args["survivor_id"], args["duplicate_id"]
        own.merged = {m: (survivor if s == duplicate else s) for m, s in own.merged.items()}
        own.merged[duplicate] = survivor
        own.booked.setdefault(survivor, set()).update(own.booked.pop(duplicate, set()))  # the bookings move
    elif tool == "revoke_api_key":
        own.revoked.add(args["key_id"])
    elif tool == "deactivate_team_member":
        own.deactivated.add(args["user_id"])
    elif tool == "update_team_member_role":
        for holder, user_id in own.user_ids.items():
            if user_id == args["user_id"]:
                own.roles[holder] = args["role"]
    for value in (data.get("id"), (data.get("key") or {}).get("id")):
        if isinstance(value, str):
            own.ids.add(value)


async def assert_nothing_crossed(app: App, workspaces: tuple[Workspace, Workspace]) -> None:
    """In the database: every workspace is in exactly the state its own successful calls left it in, and no row of
    one workspace points at a member of the other."""
    async with app.db.transaction() as session:
        for ws, other in (workspaces, workspaces[::-1]):
            members = {
                m.id: m
                for m in (await session.execute(select(Member).where(col(Member.workspace_id) == ws.id))).scalars()
            }
            for member_id, member in members.items():
                want = "erased" if member_id in ws.erased else "merged" if member_id in ws.merged else "active"
                assert member.status == want, (ws.name, member_id, member.status, want)
                assert member.merged_into == ws.merged.get(member_id), (ws.name, member_id)
            users = {
                u.id: u for u in (await session.execute(select(User).where(col(User.workspace_id) == ws.id))).scalars()
            }
            for user_id, user in users.items():
                assert (user.status == "deactivated") == (user_id in ws.deactivated), (ws.name, user_id)
            for holder, user_id in ws.user_ids.items():
                assert users[user_id].role == ws.roles[holder], (ws.name, holder)
            keys = (await session.execute(select(ApiKey).where(col(ApiKey.workspace_id) == ws.id))).scalars()
            for key in keys:
                expect_revoked = key.id in ws.revoked or key.user_id in ws.deactivated
                assert (key.revoked_at is not None) == expect_revoked, (ws.name, key.id)
            for link in app.runner.platform.member_links:
                pointing = getattr(link.model, link.column)
                stmt = select(link.model).where(
                    link.model.workspace_id == ws.id,  # type: ignore[attr-defined]
                    col(pointing).in_(other.member_ids),
                )
                assert not (await session.execute(stmt)).all(), f"{ws.name}'s {link.label} point at {other.name}"


async def step(app: App, own: Workspace, other: Workspace, label: str, tool: str, args: dict[str, Any]) -> None:
    """One call (through the confirm gate where there is one) by the key of `label` in `own`, and what must hold."""
    role = own.roles[label]
    answers = await through_the_gate(app, own.keys[label], own.key_ids[label], tool, args)
    for answer in answers:
        assert not leaks(answer.data, args, other), (tool, role, answer.data)
        assert answer.ok or answer.data["error"]["code"] != "internal_error", (tool, role, answer.data)
    result = answers[-1]
    foreign = [i for i in named_ids(args) if i in other.ids]
    gate = "after the gate" if len(answers) == 2 else ""
    if currently_in_test_context():  # what was tried, for --hypothesis-show-statistics
        event(f"{tool} {'across workspaces' if foreign else 'own'} {gate}: {error_code(result) or 'ok'}".strip())
    if tool in REFUSED[role] or not scopes.grants(scopes.role_scopes(Role(role)), app.registry.specs[tool].scope):
        for answer in answers:  # refused before any preview, also with a valid token
            assert answer.data["error"]["code"] == "forbidden", (tool, role, answer.data)
            assert "details" not in answer.data["error"], (tool, role, answer.data)
        return
    hidden = own.hidden_from(label)
    for answer in answers:  # a staff key sees only its own customers and bookings, whatever it asks
        text = json.dumps(answer.data)
        assert not [i for i in hidden if i in text and i not in json.dumps(args)], (tool, role, answer.data)
    if foreign:
        for answer in answers:
            code = answer.data["error"]["code"] if not answer.ok else "ok"
            if code == "invalid_state":  # an own erased or merged member named beside the foreign id
                check_refusal_of_gone_member(answer, own, args)
            elif code == "validation_failed":  # arguments no workspace could accept (merging an id into itself)
                assert not valid(app, tool, args), (tool, role, args, answer.data)
            else:
                assert code == "not_found", (tool, role, args, answer.data)
        if len(set(named_ids(args))) == 1:
            await answers_like_a_missing_record(app, own, label, tool, args, answers, foreign[0])
        return
    unseen = [i for i in named_ids(args) if i in hidden]
    if unseen:  # not theirs: exactly like a record that does not exist
        for answer in answers:
            assert error_code(answer) == "not_found", (tool, role, args, answer.data)
        if len(set(named_ids(args))) == 1:
            await answers_like_a_missing_record(app, own, label, tool, args, answers, unseen[0])
        return
    if result.ok:
        record_success(own, tool, args, result.data)
        return
    code = result.data["error"]["code"]
    assert code != "not_found", ("an own record must be found", tool, args, result.data)
    if code == "invalid_state" and any(own.gone(i) for i in named_ids(args)):
        check_refusal_of_gone_member(result, own, args)


@given(data=st.data())
async def test_no_workspace_sees_or_changes_another_and_no_role_exceeds_its_scopes(
    app: App, data: st.DataObject
) -> None:
    a, b = await build(app, "wsa"), await build(app, "wsb")
    for _ in range(data.draw(st.integers(1, 12), label="steps")):
        own, other = data.draw(st.sampled_from([(a, b), (b, a)]), label="workspace")
        label = data.draw(st.sampled_from(("owner", *ROLES)), label="role")  # the owner may try everything
        tool, args = data.draw(calls(own, other), label="call")
        await step(app, own, other, label, tool, args)
    await assert_nothing_crossed(app, (a, b))


async def test_every_destructive_tool_is_tried_across_workspaces_past_the_gate(app: App) -> None:
    """The floor under the property, whatever it draws: each confirm-gated tool aimed at the other workspace by
    every role, through the gate, answers like a missing record (or forbidden) and changes nothing."""
    a, b = await build(app, "wsa"), await build(app, "wsb")
    theirs, mine = b.member_ids, a.member_ids
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("delete_member", {"member_id": theirs[0]}),
        ("export_member_data", {"member_id": theirs[0]}),
        ("merge_members", {"survivor_id": mine[0], "duplicate_id": theirs[0]}),
        ("merge_members", {"survivor_id": theirs[0], "duplicate_id": mine[0]}),
        ("merge_members", {"survivor_id": theirs[0], "duplicate_id": theirs[1]}),
        ("revoke_api_key", {"key_id": b.key_ids["owner"]}),
        ("revoke_api_key", {"key_id": b.spare_keys[-1]}),
        ("deactivate_team_member", {"user_id": b.user_ids["manager"]}),
        ("deactivate_team_member", {"user_id": b.spare_user}),
    ]
    for label in ROLES:
        for tool, args in attempts:
            await step(app, a, b, label, tool, args)
    await assert_nothing_crossed(app, (a, b))
    # The same calls on a's own records do pass the gate and act: the attempts above were refused for the
    # workspace, not for their shape.
    await step(app, a, b, "owner", "merge_members", {"survivor_id": mine[0], "duplicate_id": mine[1]})
    await step(app, a, b, "owner", "delete_member", {"member_id": mine[0]})
    await step(app, a, b, "owner", "revoke_api_key", {"key_id": a.spare_keys[-1]})
    await step(app, a, b, "owner", "deactivate_team_member", {"user_id": a.spare_user})
    assert a.merged == {mine[1]: mine[0]} and a.erased == {mine[0]}
    assert a.revoked == {a.spare_keys[-1]} and a.deactivated == {a.spare_user}
    for tool, args in (  # a finished target: the repeat succeeds at once, without a token
        ("delete_member", {"member_id": mine[0]}),
        ("revoke_api_key", {"key_id": a.spare_keys[-1]}),
        ("deactivate_team_member", {"user_id": a.spare_user}),
    ):
        again = await through_the_gate(app, a.keys["owner"], a.key_ids["owner"], tool, args)
        assert len(again) == 1 and again[0].ok, (tool, again[-1].data)
    await assert_nothing_crossed(app, (a, b))
