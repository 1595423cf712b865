"""The approval gate and the approvals domain, with a gated send tool declared here until the messaging and money
domains bring theirs: the policy decides, what runs is exactly what was stored, once, as the requester."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitResult
from pydantic import Field
from sqlalchemy import select, update
from sqlmodel import col

from favmcp import composition
from favmcp.app import App
from favmcp.effects.approvals import ApprovalAsk, ApprovalRequest, Channel, SendKind
from favmcp.effects.models import OutboxMessage
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain, Platform
from favmcp.registry.spec import GatedResult, WriteInput, tool
from favmcp.transports.mcp import StdioCredential, build_server
from tests.support import FakeClock, Owner, call, confirmed, error_code, gather, join, make_settings, served, signup


class SendTestInput(WriteInput):
    to: str = Field(min_length=3, max_length=320)
    body: str = Field(min_length=1, max_length=500)
    kind: SendKind = SendKind.marketing


class SendTestResult(GatedResult):
    message_id: str | None = None


async def _ask(ctx: ToolContext, args: SendTestInput) -> ApprovalAsk:
    return ApprovalAsk(channel=Channel.email, kind=args.kind, recipient=args.to, summary=f"Email to {args.to}")


@tool(domain="testsend", title="Send test email", hints="W O", scope="messaging:send", gate="approval", ask=_ask)
async def send_test_email(ctx: ToolContext, args: SendTestInput) -> SendTestResult:
    """Emails `body` to `to`."""
    message = ctx.send_email(to=args.to, subject="Hello", body=args.body, workspace_id=ctx.workspace_id)
    return SendTestResult(status="done", message_id=message.id)


class SentWithReceipt(GatedResult):
    receipt: str  # required: a waiting call has no receipt to give


def test_a_gated_tool_must_be_able_to_answer_that_it_waits() -> None:
    """Declaring it fails at import, before any call could answer "pending_approval" with a field missing."""

    async def send_with_receipt(ctx: ToolContext, args: SendTestInput) -> SentWithReceipt:
        """Sends."""
        raise AssertionError("never called")

    declare = tool(domain="testsend", title="Send", hints="W O", scope="messaging:send", gate="approval", ask=_ask)
    with pytest.raises(TypeError, match="whose other fields are optional"):
        declare(send_with_receipt)
    assert declare(send_test_email.handler).gate is not None  # the same declaration, with optional fields, is fine


@pytest.fixture
async def gated_app(database_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    platform = Platform([*composition.platform().domains, Domain(name="testsend", tools=[send_test_email])])
    app = await App.open(make_settings(tmp_path, database_url), clock=clock, platform=platform)
    yield app
    await app.close()


@pytest.fixture
async def studio(gated_app: App) -> Owner:
    return await signup(gated_app)


async def sent_to(app: App, studio: Owner, recipient: str) -> list[OutboxMessage]:
    """Mail to `recipient` from this test's workspace (other tests share the Postgres database)."""
    async with app.db.transaction() as session:
        stmt = select(OutboxMessage).where(
            col(OutboxMessage.recipient) == recipient, col(OutboxMessage.workspace_id) == studio.workspace_id
        )
        return list((await session.execute(stmt)).scalars())


async def pending(app: App, owner: Owner, to: str) -> str:
    held = await call(app, owner.key, "send_test_email", {"to": to, "body": "Spring offer", "kind": "marketing"})
    assert held.ok and held.data["status"] == "pending_approval", held.data
    return str(held.data["approval_id"])


async def test_the_policy_decides_whether_a_send_runs_or_waits(gated_app: App, studio: Owner) -> None:
    app = gated_app
    done = await call(
        app, studio.key, "send_test_email", {"to": "a@example.com", "body": "Receipt", "kind": "transactional"}
    )
    assert done.ok and done.data["status"] == "done" and done.data["message_id"]
    assert len(await sent_to(app, studio, "a@example.com")) == 1

    approval_id = await pending(app, studio, "b@example.com")
    assert await sent_to(app, studio, "b@example.com") == [], "nothing left while it waits"
    shown = (await call(app, studio.key, "get_approval", {"approval_id": approval_id})).data
    assert shown["status"] == "pending" and shown["tool"] == "send_test_email"
    assert shown["arguments"] == {"to": "b@example.com", "body": "Spring offer", "kind": "marketing"}
    assert shown["requested_by_user_id"] == studio.user_id and shown["summary"] == "Email to b@example.com"
    listed = await call(app, studio.key, "list_approvals", {"status": "pending"})
    assert [a["id"] for a in listed.data["items"]] == [approval_id]

    policy = {"rules": [{"channel": "email", "kind": "transactional", "needs_approval": True}]}
    assert (await call(app, studio.key, "set_approval_policy", policy)).ok
    waits = await call(
        app, studio.key, "send_test_email", {"to": "c@example.com", "body": "R", "kind": "transactional"}
    )
    assert waits.data["status"] == "pending_approval"
    rules = (await call(app, studio.key, "get_approval_policy")).data["rules"]
    assert {(r["channel"], r["kind"]): r["needs_approval"] for r in rules}[("sms", "transactional")] is False


async def test_approval_runs_the_stored_call_once_as_the_requester(gated_app: App, studio: Owner) -> None:
    app = gated_app
    manager = await join(app, studio, "manager")
    approval_id = await pending(app, studio, "once@example.com")
    results = await gather(
        *[call(app, manager.key, "approve_request", {"approval_id": approval_id}) for _ in range(10)]
    )
    assert sorted(error_code(r) or "ok" for r in results) == ["invalid_state"] * 9 + ["ok"]
    done = next(r for r in results if r.ok).data
    assert done["status"] == "executed" and done["decided_by_user_id"] == manager.user_id
    assert done["execution"]["ok"] and done["execution"]["result"]["status"] == "done"
    assert len(await sent_to(app, studio, "once@example.com")) == 1, "executed once"
    audit = (await call(app, studio.key, "list_audit_events", {"tool": "send_test_email"})).data["items"]
    runs = [(e["user_id"], e["credential_id"], e["outcome"], e["changes"]["approval_id"]) for e in audit]
    assert runs == [(studio.user_id, studio.key_id, "ok", approval_id)] * 2, "held, then run as the requester"
    late = await call(app, manager.key, "approve_request", {"approval_id": approval_id})
    assert error_code(late) == "invalid_state" and late.data["error"]["details"]["current"] == "executed"


async def test_what_cannot_be_approved(gated_app: App, studio: Owner, clock: FakeClock) -> None:
    app = gated_app
    manager = await join(app, studio, "manager")

    own = await pending(app, studio, "self@example.com")
    assert error_code(await call(app, studio.key, "approve_request", {"approval_id": own})) == "forbidden"
    assert (await call(app, studio.key, "set_approval_policy", {"allow_self_approval": True})).ok
    assert (await call(app, studio.key, "approve_request", {"approval_id": own})).data["status"] == "executed"

    edited = await pending(app, studio, "edited@example.com")
    async with app.db.transaction() as session:
        tampered = {"to": "attacker@example.com", "body": "Spring offer", "kind": "marketing"}
        await session.execute(
            update(ApprovalRequest).where(col(ApprovalRequest.id) == edited).values(arguments=tampered)
        )
    failed = (await call(app, manager.key, "approve_request", {"approval_id": edited})).data
    assert failed["status"] == "failed" and failed["execution"]["error"]["code"] == "conflict"
    assert (
        await sent_to(app, studio, "attacker@example.com") == []
        and await sent_to(app, studio, "edited@example.com") == []
    )

    made = await call(app, studio.key, "create_api_key", {"name": "sender", "scopes": ["messaging:send"]})
    revoked_sender = await call(app, made.data["api_key"], "send_test_email", {"to": "gone@example.com", "body": "x"})
    assert (await confirmed(app, studio.key, "revoke_api_key", {"key_id": made.data["key"]["id"]})).ok
    orphan = (await call(app, manager.key, "approve_request", {"approval_id": revoked_sender.data["approval_id"]})).data
    assert orphan["status"] == "failed" and orphan["execution"]["error"]["code"] == "unauthenticated"
    assert "revoked" in orphan["execution"]["error"]["message"] and await sent_to(app, studio, "gone@example.com") == []

    rejected = await pending(app, studio, "no@example.com")
    no = await call(app, manager.key, "reject_request", {"approval_id": rejected, "reason": "Wrong audience"})
    assert no.data["status"] == "rejected" and no.data["reason"] == "Wrong audience"
    assert error_code(await call(app, manager.key, "approve_request", {"approval_id": rejected})) == "invalid_state"

    stale = await pending(app, studio, "late@example.com")
    clock.advance(hours=73)
    assert (await call(app, studio.key, "get_approval", {"approval_id": stale})).data["status"] == "expired"
    expired = await call(app, manager.key, "approve_request", {"approval_id": stale})
    assert error_code(expired) == "invalid_state" and await sent_to(app, studio, "late@example.com") == []


async def test_an_explicit_request_waits_whatever_the_policy(gated_app: App, studio: Owner) -> None:
    app = gated_app
    args = {
        "tool": "send_test_email",
        "arguments": {"to": "ask@example.com", "body": "Receipt", "kind": "transactional"},
    }
    asked = await call(app, studio.key, "request_send_approval", args)
    assert asked.ok and asked.data["status"] == "pending" and await sent_to(app, studio, "ask@example.com") == []
    refused = await call(app, studio.key, "request_send_approval", {"tool": "create_member", "arguments": {}})
    assert error_code(refused) == "validation_failed"
    bad = await call(app, studio.key, "request_send_approval", {"tool": "send_test_email", "arguments": {"to": 1}})
    assert error_code(bad) == "validation_failed"
    staff = await join(app, studio, "staff")
    assert error_code(await call(app, staff.key, "approve_request", {"approval_id": asked.data["id"]})) == "forbidden"


class Approver:
    """The elicitation callback: answers the approval question, as a person would, and records what was asked."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        return ElicitResult(action="accept", content={"approve": self.answer})


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_that_can_ask_lets_the_person_approve_only_where_they_may(
    gated_app: App, studio: Owner, mode: str
) -> None:
    app = gated_app
    args = {"to": "asked@example.com", "body": "Spring offer", "kind": "marketing"}

    def session(person: Approver) -> Client:
        server = build_server(*served(app), stdio_credential=StdioCredential(studio.key))
        return Client(server, mode=mode, elicitation_callback=person)

    never = Approver(True)
    async with session(never) as client:
        waiting = await client.call_tool("send_test_email", args)
    assert never.asked == [] and waiting.structured_content is not None, "no self-approval: nobody is asked"
    assert waiting.structured_content["status"] == "pending_approval"

    assert (await call(app, studio.key, "set_approval_policy", {"allow_self_approval": True})).ok
    declines = Approver(False)
    async with session(declines) as client:
        still = await client.call_tool("send_test_email", args)
    assert declines.asked == ["Approve and send now? Email to asked@example.com"]
    assert still.structured_content is not None and still.structured_content["status"] == "pending_approval"
    assert await sent_to(app, studio, "asked@example.com") == []

    agrees = Approver(True)
    async with session(agrees) as client:
        sent = await client.call_tool("send_test_email", args)
    assert not sent.is_error and sent.structured_content is not None, sent
    assert sent.structured_content["status"] == "done" and sent.structured_content["message_id"]
    assert len(await sent_to(app, studio, "asked@example.com")) == 1, "approved once, sent once"
    approvals = (await call(app, studio.key, "list_approvals", {"limit": 100})).data["items"]
    assert sorted(a["status"] for a in approvals) == ["executed", "pending", "pending"]


async def test_another_workspace_sees_and_decides_nothing(gated_app: App, studio: Owner) -> None:
    app = gated_app
    approval_id = await pending(app, studio, "private@example.com")
    other = await signup(app)
    assert (await call(app, other.key, "list_approvals")).data["items"] == []
    for name, args in (
        ("get_approval", {"approval_id": approval_id}),
        ("approve_request", {"approval_id": approval_id}),
        ("reject_request", {"approval_id": approval_id, "reason": "not mine"}),
    ):
        assert error_code(await call(app, other.key, name, args)) == "not_found", name
    still = await call(app, studio.key, "get_approval", {"approval_id": approval_id})
    assert still.data["status"] == "pending" and await sent_to(app, studio, "private@example.com") == []
