"""Races of the template and message tools: one template per (channel, name, language), every update counted in
the version, a template deleted once, and one send under one idempotency key queued once."""

from __future__ import annotations

from sqlmodel import col

from favmcp.core.contact import Channel
from favmcp.core.ids import new_id
from favmcp.core.sealing import seal
from favmcp.domains.messaging.models import ChannelConfig, Message, Provider
from favmcp.effects.models import OutboxMessage
from tests.race_kit import N, Outcome, Scenario, Stage, as_owner, ok, oks, rows
from tests.support import unique_email

TEMPLATE = {"channel": "sms", "name": "race", "kind": "transactional", "body": "Hi {{first_name}}"}


async def setup_nothing(s: Stage) -> None:
    pass


async def check_one_template(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1, "one template per channel, name and language"
    winner = winners[0].result.data["id"]
    assert all(o.details["existing_id"] == winner for o in outs if not o.ok)
    listed = await ok(s, "list_message_templates", {"limit": 100})
    assert [t["id"] for t in listed["items"]] == [winner]


async def setup_template(s: Stage) -> None:
    s.template = (await ok(s, "create_message_template", {**TEMPLATE, "variables": ["first_name"]}))["id"]


async def check_updated(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    versions = sorted(o.result.data["version"] for o in outs)
    assert versions == list(range(2, N + 2)), "every change counted once, each saw its own version"
    listed = await ok(s, "list_message_templates", {"limit": 100})
    [template] = listed["items"]
    assert template["version"] == N + 1 and template["body"] in {f"Hi {{{{first_name}}}} {i}" for i in range(N)}


async def check_deleted_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 1
    assert all(o.code == "not_found" for o in outs if not o.ok)
    assert (await ok(s, "list_message_templates", {"limit": 100}))["items"] == []


async def setup_send(s: Stage) -> None:
    await setup_template(s)
    now = s.app.runner.clock.now()
    config = ChannelConfig(
        id=new_id("chn"), workspace_id=s.owner.workspace_id, channel=Channel.sms, provider=Provider.twilio,
        sender="+31200000000", settings={}, secrets=seal(s.app.settings.secret_key, "messaging_channel", {}),
        created_at=now, updated_at=now,
    )  # fmt: skip
    async with s.app.db.transaction() as session:
        session.add(config)
    made = await ok(s, "create_member", {"name": "Sam Lee", "email": unique_email("m"), "phone": "+31612345678"})
    s.member = made["id"]
    await ok(s, "set_marketing_consent", {"member_id": s.member, "channel": "sms", "granted": True, "source": "form"})


async def check_sent_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    assert len({str(o.result.data) for o in outs}) == 1, "twenty identical answers"
    sent = await rows(s, Message, col(Message.workspace_id) == s.owner.workspace_id)
    assert len(sent) == 1 and sent[0].body == "Hi Sam"
    queued = await rows(
        s,
        OutboxMessage,
        col(OutboxMessage.workspace_id) == s.owner.workspace_id,
        col(OutboxMessage.channel) == "message",
    )
    assert [r.payload["message_id"] for r in queued] == [sent[0].id]


SCENARIOS: dict[str, Scenario] = {
    "create_message_template: one name among twenty": Scenario(
        "create_message_template",
        setup_nothing,
        lambda s, i: as_owner(s, "create_message_template", {**TEMPLATE, "variables": ["first_name"]}),
        check_one_template,
        frozenset({"conflict"}),
    ),
    "update_message_template: every change counted": Scenario(
        "update_message_template",
        setup_template,
        lambda s, i: as_owner(
            s, "update_message_template", {"template_id": s.template, "body": f"Hi {{{{first_name}}}} {i}"}
        ),
        check_updated,
    ),
    "delete_message_template: once": Scenario(
        "delete_message_template",
        setup_template,
        lambda s, i: as_owner(s, "delete_message_template", {"template_id": s.template}),
        check_deleted_once,
        frozenset({"not_found"}),
    ),
    "send_message: one key, one message": Scenario(
        "send_message",
        setup_send,
        lambda s, i: as_owner(s, "send_message", {"member_id": s.member, "channel": "sms", "template_id": s.template}),
        check_sent_once,
        one_key=True,
    ),
}
