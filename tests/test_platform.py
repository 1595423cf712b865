"""What a domain declares to the platform, exercised with a domain of the test's own: links to customers (merge,
erase, export), domain events and their subscribers, staff commitments; and the lifecycle helper."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import registry as orm_registry
from sqlmodel import Field, SQLModel, col

from favmcp import composition
from favmcp.app import App
from favmcp.core.errors import ErrorCode, FavError
from favmcp.core.events import DomainEvent
from favmcp.core.ids import new_id
from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.db.scoped import WorkspaceDB
from favmcp.domains.members.events import MemberErased
from favmcp.domains.members.models import Member, MemberImport
from favmcp.domains.team.lifecycle import INVITE_LIFECYCLE
from favmcp.domains.team.models import InviteStatus
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Commitment, Domain, Platform
from favmcp.registry.models import EventRecord, StateTransition
from favmcp.registry.spec import WriteInput, tool
from tests.support import FakeClock, Owner, call, confirmed, error_code, invite, make_settings, signup


class LedgerBase(SQLModel, registry=orm_registry()):
    """Tables of the test domain live apart from the product's metadata (and its migrations)."""


class LedgerEntry(LedgerBase, table=True):
    """A financial record that names a customer: erase must keep it, pseudonymised."""

    __tablename__ = "test_ledger_entries"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(max_length=40, index=True)
    member_id: str = Field(max_length=40, index=True)
    customer_name: str | None = Field(default=None, max_length=200)
    amount: int


class Reactions:
    """What the test domain's subscriber saw and whether it should refuse."""

    def __init__(self) -> None:
        self.erased: list[str] = []
        self.refuse = False

    async def on_member_erased(self, ctx: ToolContext, event: MemberErased) -> None:
        if self.refuse:
            raise FavError(ErrorCode.conflict, "The ledger refuses this erasure.")
        self.erased.append(event.member_id)
        ctx.db.add(LedgerEntry(id=new_id("led"), workspace_id="", member_id=event.member_id, amount=0))


BOOKED = Commitment(
    kind="booking",
    id="bkg_test",
    starts_at=datetime.fromisoformat("2027-02-01T10:00:00+00:00"),
    ends_at=datetime.fromisoformat("2027-02-01T11:00:00+00:00"),
    summary="Massage 60 min",
)


async def booked(db: WorkspaceDB, user_id: str, starts_at: datetime, ends_at: datetime) -> list[Commitment]:
    return [BOOKED] if BOOKED.starts_at < ends_at and BOOKED.ends_at > starts_at else []


def ledger_domain(reactions: Reactions) -> Domain:
    link = MemberLink(
        "ledger_entries",
        LedgerEntry,
        "member_id",
        OnMerge.move,
        OnErase.pseudonymise,
        personal_fields={"customer_name": None},
        export=lambda row: {"id": row.id, "amount": row.amount, "customer_name": row.customer_name},
    )
    return Domain(
        name="ledger",
        tools=[],
        member_links=[link],
        subscribers={MemberErased: [reactions.on_member_erased]},
        staff_commitments=booked,
    )


@pytest.fixture
def reactions() -> Reactions:
    return Reactions()


@pytest.fixture
async def ledger_app(database_url: str, tmp_path: Path, clock: FakeClock, reactions: Reactions) -> AsyncIterator[App]:
    platform = Platform([*composition.platform().domains, ledger_domain(reactions)])
    app = await App.open(make_settings(tmp_path, database_url), clock=clock, platform=platform)
    async with app.db.engine.begin() as conn:
        await conn.run_sync(LedgerBase.metadata.create_all)
    yield app
    await app.close()


async def ledger_rows(app: App, workspace_id: str) -> list[LedgerEntry]:
    async with app.db.transaction() as session:
        stmt = select(LedgerEntry).where(col(LedgerEntry.workspace_id) == workspace_id).order_by(col(LedgerEntry.id))
        return list((await session.execute(stmt)).scalars())


async def add_entry(app: App, workspace_id: str, member_id: str, name: str, amount: int) -> None:
    async with app.db.transaction() as session:
        WorkspaceDB(session, workspace_id).add(
            LedgerEntry(id=new_id("led"), workspace_id="", member_id=member_id, customer_name=name, amount=amount)
        )


async def member(app: App, owner: Owner, name: str, email: str) -> str:
    made = await call(app, owner.key, "create_member", {"name": name, "email": email})
    assert made.ok, made.data
    return str(made.data["id"])


async def test_declared_links_move_on_merge_and_stay_pseudonymised_on_erase(
    ledger_app: App, reactions: Reactions
) -> None:
    app = ledger_app
    owner = await signup(app)
    survivor = await member(app, owner, "Sam Keeper", "sam.keeper@example.com")
    duplicate = await member(app, owner, "Samuel Keeper", "samuel.keeper@example.com")
    await add_entry(app, owner.workspace_id, duplicate, "Samuel Keeper", 4500)

    args = {"survivor_id": survivor, "duplicate_id": duplicate}
    preview = await call(app, owner.key, "merge_members", args)
    assert preview.data["error"]["details"]["preview"]["records_to_move"]["ledger_entries"] == 1
    assert (await confirmed(app, owner.key, "merge_members", args)).ok
    assert [(e.member_id, e.amount) for e in await ledger_rows(app, owner.workspace_id)] == [(survivor, 4500)]

    exported = await call(app, owner.key, "export_member_data", {"member_id": survivor})
    assert exported.data["records"]["ledger_entries"] == [
        {"id": (await ledger_rows(app, owner.workspace_id))[0].id, "amount": 4500, "customer_name": "Samuel Keeper"}
    ]

    erase_preview = await call(app, owner.key, "delete_member", {"member_id": survivor})
    assert erase_preview.data["error"]["details"]["preview"]["records_kept_pseudonymised"]["ledger_entries"] == 1
    assert (await confirmed(app, owner.key, "delete_member", {"member_id": survivor})).ok
    kept = await ledger_rows(app, owner.workspace_id)
    assert [(e.member_id, e.amount, e.customer_name) for e in kept if e.amount] == [(survivor, 4500, None)]
    assert reactions.erased == [survivor], "the subscriber ran once, in the erasing call"
    assert [e.member_id for e in kept if not e.amount] == [survivor], "and its write was committed with it"


async def test_a_subscriber_that_refuses_fails_the_call_and_nothing_changes(
    ledger_app: App, reactions: Reactions
) -> None:
    app = ledger_app
    owner = await signup(app)
    someone = await member(app, owner, "Ria Refused", "ria.refused@example.com")
    reactions.refuse = True
    refused = await confirmed(app, owner.key, "delete_member", {"member_id": someone})
    assert error_code(refused) == "conflict" and "ledger refuses" in refused.data["error"]["message"]
    profile = await call(app, owner.key, "get_member_profile", {"member_id": someone})
    assert profile.data["status"] == "active" and profile.data["name"] == "Ria Refused"
    async with app.db.transaction() as session:
        recorded = await session.execute(select(EventRecord).where(col(EventRecord.workspace_id) == owner.workspace_id))
        names = [e.name for e in recorded.scalars()]
    assert "member.erased" not in names and "member.created" in names, "events are recorded only when they happen"


async def test_time_off_never_overrides_commitments_of_other_domains(ledger_app: App) -> None:
    app = ledger_app
    owner = await signup(app)
    block = {
        "user_id": owner.user_id,
        "starts_at": "2027-02-01T09:00:00Z",
        "ends_at": "2027-02-01T12:00:00Z",
    }
    refused = await call(app, owner.key, "add_staff_time_off", block)
    assert error_code(refused) == "conflict" and "bookings" not in refused.data["error"]["details"]
    listed = await call(app, owner.key, "add_staff_time_off", {**block, "list_overlapping_bookings": True})
    assert error_code(listed) == "conflict"
    assert [b["id"] for b in listed.data["error"]["details"]["bookings"]] == ["bkg_test"]
    free = await call(app, owner.key, "add_staff_time_off", {**block, "starts_at": "2027-02-01T11:00:00Z"})
    assert free.ok, "touching the booking's end is fine"
    schedule = await call(
        app,
        owner.key,
        "get_staff_schedule",
        {"user_id": owner.user_id, "from_date": "2027-02-01", "to_date": "2027-02-01"},
    )
    assert [b["id"] for b in schedule.data["bookings"]] == ["bkg_test"]


async def test_erase_forgets_the_person_in_import_staging(app: App, owner: Owner) -> None:
    rows = [
        {"name": "Staged Person", "email": "staged.person@example.com", "notes": "prefers evenings"},
        {"name": "Other Person", "email": "other.person@example.com"},
    ]
    staged = await call(app, owner.key, "preview_member_import", {"rows": rows})
    made = await member(app, owner, "Staged Person", "staged.person@example.com")
    assert (await confirmed(app, owner.key, "delete_member", {"member_id": made})).ok
    async with app.db.transaction() as session:
        kept = await session.get(MemberImport, staged.data["import_id"])
        assert kept is not None
        assert [r["email"] for r in kept.rows] == ["other.person@example.com"]
    committed = await call(app, owner.key, "commit_member_import", {"import_id": staged.data["import_id"]})
    assert committed.ok and committed.data["created"] == 1
    async with app.db.transaction() as session:
        done = await session.get(MemberImport, staged.data["import_id"], populate_existing=True)
        assert done is not None and done.rows == [], "a committed import keeps its result, not the people"


async def test_invites_move_through_their_lifecycle_once_with_a_transition_row(app: App, owner: Owner) -> None:
    _, invite_id = await invite(app, owner.key)
    first = await call(app, owner.key, "revoke_team_invite", {"invite_id": invite_id})
    again = await call(app, owner.key, "revoke_team_invite", {"invite_id": invite_id})
    assert first.ok and again.ok and again.data["status"] == "revoked"
    async with app.db.transaction() as session:
        moves = (
            await session.execute(select(StateTransition).where(col(StateTransition.entity_id) == invite_id))
        ).scalars()
        assert [(m.from_state, m.to_state, m.tool) for m in moves] == [("pending", "revoked", "revoke_team_invite")]
        events = (
            await session.execute(select(EventRecord).where(col(EventRecord.name) == "team_invite.revoked"))
        ).scalars()
        assert [e.payload for e in events if e.workspace_id == owner.workspace_id] == [{"invite_id": invite_id}]


def test_lifecycle_refusals_name_the_state_the_next_states_and_the_tools() -> None:
    error = INVITE_LIFECYCLE.refuse("inv_x", InviteStatus.accepted, InviteStatus.revoked)
    assert error.code == ErrorCode.invalid_state
    assert error.body.details == {
        "entity": "invite",
        "id": "inv_x",
        "current": "accepted",
        "requested": "revoked",
        "allowed": [],
        "tools": {},
    }
    pending = INVITE_LIFECYCLE.refuse("inv_y", InviteStatus.pending, InviteStatus.pending)
    assert pending.body.details is not None
    assert pending.body.details["tools"] == {
        "accepted": "accept_team_invite_verify",
        "revoked": "revoke_team_invite",
    }
    assert "accept_team_invite_verify" in (pending.body.hint or "")


def test_an_approval_gated_tool_cannot_be_declared_before_the_approval_queue_exists() -> None:
    with pytest.raises(TypeError, match="approval"):

        @tool(domain="messaging", title="Send", hints="W O", scope="messaging:send", gate="approval")
        async def send_message(ctx: Any, args: WriteInput) -> Any:
            """Sends."""


def test_subscribers_must_name_declared_events() -> None:
    class Unknown(DomainEvent):
        name = "unknown.happened"

    async def react(ctx: ToolContext, event: Any) -> None:
        return None

    with pytest.raises(ValueError, match="undeclared"):
        Platform([Domain(name="x", tools=[], subscribers={Unknown: [react]})])


async def test_merged_ids_resolve_for_reads_and_are_refused_for_writes(app: App, owner: Owner) -> None:
    survivor = await member(app, owner, "Kept One", "kept.one@example.com")
    duplicate = await member(app, owner, "Gone One", "gone.one@example.com")
    assert (await confirmed(app, owner.key, "merge_members", {"survivor_id": survivor, "duplicate_id": duplicate})).ok
    read = await call(app, owner.key, "get_member_profile", {"member_id": duplicate})
    assert read.data["id"] == survivor and read.data["resolved_from"] == duplicate
    for tool_name, args in (
        ("update_member", {"member_id": duplicate, "source": "x"}),
        ("add_member_note", {"member_id": duplicate, "body": "x"}),
        ("attach_tags", {"member_ids": [duplicate], "tags": ["x"]}),
        ("set_marketing_consent", {"member_id": duplicate, "channel": "sms", "granted": True, "source": "x"}),
        ("delete_member", {"member_id": duplicate}),
    ):
        refused = await call(app, owner.key, tool_name, args)
        assert error_code(refused) == "invalid_state", (tool_name, refused.data)
        assert refused.data["error"]["details"]["survivor_id"] == survivor
    async with app.db.transaction() as session:
        kept = await session.get(Member, survivor)
        assert kept is not None and kept.status == "active" and kept.name == "Kept One"
        count = await session.execute(text("SELECT count(*) FROM member_notes WHERE member_id = :m"), {"m": duplicate})
        assert count.scalar_one() == 0
