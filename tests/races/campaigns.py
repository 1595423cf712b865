"""Races of the campaign tools: twenty drafts each made once, twenty test sends each one message to the caller and
none to a customer, one campaign sent by twenty calls messaging each member once, and twenty cancels of a sending
campaign stopping its queued messages once."""

from __future__ import annotations

from sqlmodel import col

from favmcp.core.contact import Channel
from favmcp.core.ids import new_id
from favmcp.core.sealing import seal
from favmcp.domains.messaging.models import ChannelConfig, Message, MessageStatus, Provider
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.registry.models import StateTransition
from tests.race_kit import N, Outcome, Scenario, Stage, as_owner, changed_by, ok, oks, rows
from tests.support import unique_email

MEMBERS = 5


async def setup_campaign(s: Stage) -> None:
    """An email channel (quiet hours off), a marketing template, five customers who agreed to email, a draft; the
    server has a public address (marketing email's unsubscribe link needs one)."""
    s.app.settings.public_url = "https://studio.favmcp.test"
    now = s.app.runner.clock.now()
    config = ChannelConfig(
        id=new_id("chn"), workspace_id=s.owner.workspace_id, channel=Channel.email, provider=Provider.smtp,
        sender="studio@example.com", settings={"quiet_hours": None},
        secrets=seal(s.app.settings.secret_key, "messaging_channel", "{}"), created_at=now, updated_at=now,
    )  # fmt: skip
    async with s.app.db.transaction() as session:
        session.add(config)
    template = {
        "channel": "email", "name": "race_offer", "kind": "marketing", "subject": "For you, {{first_name}}",
        "body": "Hi {{first_name}}: {{offer}}", "variables": ["first_name", "offer"],
    }  # fmt: skip
    s.template = (await ok(s, "create_message_template", template))["id"]
    consent = [{"channel": "email", "granted": True}]
    s.members = [
        (await ok(s, "create_member", {"name": f"Customer {i}", "email": unique_email("m"), "consent": consent}))["id"]
        for i in range(MEMBERS)
    ]
    s.args = {"name": "Race", "channel": "email", "template_id": s.template, "variables": {"offer": "10% off"}}
    s.campaign = (await ok(s, "create_campaign", s.args))["id"]
    # Marketing email runs at once here: the race is on the send itself, not on twenty approval requests.
    rule = {"channel": "email", "kind": "marketing", "needs_approval": False}
    await ok(s, "set_approval_policy", {"rules": [rule]})


async def check_created(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    ids = {o.result.data["id"] for o in outs}
    listed = await ok(s, "list_campaigns", {"status": "draft", "limit": 100})
    assert len(ids) == N and ids < {c["id"] for c in listed["items"]}


async def _messages(s: Stage) -> list[Message]:
    return await rows(s, Message, col(Message.campaign_id) == s.campaign)


async def check_tests_sent(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    sent = await _messages(s)
    assert len(sent) == N and {m.member_id for m in sent} == {None}
    assert {m.address for m in sent} == {s.owner.email}
    assert (await ok(s, "get_campaign", {"campaign_id": s.campaign}))["status"] == "draft"


async def check_sent_once(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1 and winners[0].result.data["queued"] == MEMBERS
    assert all(o.code == "invalid_state" for o in outs if not o.ok)
    sent = await _messages(s)
    assert sorted(m.member_id or "" for m in sent) == sorted(s.members), "each member once"
    moves = await rows(s, StateTransition, col(StateTransition.entity_id) == s.campaign)
    assert [m.to_state for m in moves] == ["sending"]


async def setup_sending(s: Stage) -> None:
    await setup_campaign(s)
    sent = await ok(s, "send_campaign", {"campaign_id": s.campaign})
    assert sent["queued"] == MEMBERS, sent


async def check_cancelled_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N and {o.result.data["status"] for o in outs} == {"cancelled"}
    assert len({o.result.data["cancelled_at"] for o in outs}) == 1
    assert len(await changed_by(s, outs)) == 1
    sent = await _messages(s)
    assert {m.status for m in sent} == {MessageStatus.cancelled} and len(sent) == MEMBERS
    outbox = await rows(s, OutboxMessage, col(OutboxMessage.id).in_([m.outbox_id for m in sent]))
    assert {o.status for o in outbox} == {OutboxStatus.failed}


SCENARIOS: dict[str, Scenario] = {
    "create_campaign: twenty drafts": Scenario(
        "create_campaign",
        setup_campaign,
        lambda s, i: as_owner(s, "create_campaign", {**s.args, "name": f"Race {i}"}),
        check_created,
    ),
    "send_test_campaign: twenty test sends": Scenario(
        "send_test_campaign",
        setup_campaign,
        lambda s, i: as_owner(s, "send_test_campaign", {"campaign_id": s.campaign}),
        check_tests_sent,
    ),
    "send_campaign: twenty sends of one draft": Scenario(
        "send_campaign",
        setup_campaign,
        lambda s, i: as_owner(s, "send_campaign", {"campaign_id": s.campaign}),
        check_sent_once,
        frozenset({"invalid_state"}),
    ),
    "cancel_campaign: twenty cancels of a sending campaign": Scenario(
        "cancel_campaign",
        setup_sending,
        lambda s, i: as_owner(s, "cancel_campaign", {"campaign_id": s.campaign}),
        check_cancelled_once,
    ),
}
