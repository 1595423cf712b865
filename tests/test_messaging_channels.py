"""Channels against local providers that speak the real protocols: configure_channel (secrets sealed, write-only,
never returned) and get_channel_status; delivery through the outbox to WhatsApp Cloud, Twilio and SMTP in their
own wire formats; rules checked again at delivery (an opt-out after queueing wins, zero requests reach the
provider); retries on 5xx, failure on a 4xx refusal, bounces suppressed; WhatsApp templates submitted for review.
SQLite and Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from favmcp.app import App
from favmcp.core.contact import Channel
from favmcp.core.ids import new_id
from favmcp.domains.messaging.models import (
    ChannelConfig,
    ChannelHealth,
    Message,
    MessageTemplate,
    Suppression,
    SuppressionReason,
    TemplateStatus,
)
from favmcp.effects.dispatcher import MAX_ATTEMPTS
from favmcp.effects.models import OutboxMessage, OutboxStatus
from tests.messaging_servers import (
    GRAPH_VERSION,
    Providers,
    configure_channels,
    email_settings,
    running_providers,
    sms_settings,
    whatsapp_settings,
)
from tests.support import FakeClock, Owner, call
from tests.test_messaging import (
    NO_APPROVALS,
    customer,
    inbound,
    local,
    ok,
    refused,
    send,
    set_template_status,
    template,
)

PUBLIC = "https://favmcp.example.com"


@pytest.fixture
def providers(app: App) -> Iterator[Providers]:
    app.settings.public_url = PUBLIC
    with running_providers(app.settings) as found:
        yield found


async def ready(app: App, owner: Owner, providers: Providers) -> dict[str, dict[str, Any]]:
    await ok(app, owner.key, "set_approval_policy", NO_APPROVALS)
    return await configure_channels(app, owner.key, providers)


async def message_row(app: App, message_id: str) -> Message:
    async with app.db.transaction() as session:
        found = await session.get(Message, message_id)
    assert found is not None
    return found


async def channel_row(app: App, owner: Owner, channel: str) -> ChannelConfig:
    async with app.db.transaction() as session:
        stmt = select(ChannelConfig).where(
            col(ChannelConfig.workspace_id) == owner.workspace_id, col(ChannelConfig.channel) == channel
        )
        return (await session.execute(stmt)).scalars().one()


async def outbox_of(app: App, message_id: str) -> OutboxMessage:
    async with app.db.transaction() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    [row] = [r for r in rows if r.payload.get("message_id") == message_id]
    return row


async def suppressions(app: App, owner: Owner) -> list[tuple[str, str, str]]:
    async with app.db.transaction() as session:
        stmt = select(Suppression).where(col(Suppression.workspace_id) == owner.workspace_id)
        return sorted((s.channel.value, s.address, s.reason.value) for s in (await session.execute(stmt)).scalars())


async def drain(app: App) -> None:
    while await app.dispatcher.run_once():
        pass


# -- configure_channel and get_channel_status --------------------------------------------------------------------


async def test_configure_keeps_secrets_sealed_and_write_only(app: App, owner: Owner, providers: Providers) -> None:
    wa = providers.whatsapp
    made = await ok(app, owner.key, "configure_channel", whatsapp_settings(wa))
    assert made["channel"] == "whatsapp" and made["provider"] == "whatsapp_cloud"
    assert made["sender"] == wa.display_number and made["health"] == "unverified" and made["verified_at"] is None
    assert made["secrets_set"] == ["access_token", "app_secret", "verify_token"]
    assert made["settings"] == {
        "phone_number_id": wa.phone_number_id,
        "waba_id": wa.waba_id,
        "quiet_hours": ["21:00", "09:00"],
    }
    assert made["callback_url"] == f"{PUBLIC}/hooks/whatsapp/{made['id']}"
    text = json.dumps(made)
    for secret in (wa.token, wa.app_secret, "verify-me-0123"):
        assert secret not in text
    row = await channel_row(app, owner, "whatsapp")
    assert wa.token not in row.secrets and wa.app_secret not in row.secrets and wa.token not in json.dumps(row.settings)

    # A reconfigure that changes no credentials keeps the secrets and the health.
    async with app.db.transaction() as session:
        stored = await session.get(ChannelConfig, made["id"])
        assert stored is not None
        stored.health = ChannelHealth.verified
        stored.verified_at = app.runner.clock.now()
    quiet = await ok(
        app, owner.key, "configure_channel", {"channel": "whatsapp", "quiet_hours": {"start": "22:00", "end": "08:00"}}
    )
    assert quiet["id"] == made["id"] and quiet["secrets_set"] == made["secrets_set"] and quiet["health"] == "verified"
    assert quiet["settings"]["quiet_hours"] == ["22:00", "08:00"]
    none = await ok(app, owner.key, "configure_channel", {"channel": "whatsapp", "quiet_hours": None})
    assert none["settings"]["quiet_hours"] is None

    # A new token is a change of credentials: unverified until the provider proves it again.
    rotated = await ok(app, owner.key, "configure_channel", {"channel": "whatsapp", "access_token": "EAAnew0token"})
    assert rotated["health"] == "unverified" and rotated["verified_at"] is None
    assert rotated["secrets_set"] == made["secrets_set"] and "EAAnew0token" not in json.dumps(rotated)

    status = await ok(app, owner.key, "get_channel_status", {})
    by_channel = {c["channel"]: c for c in status["channels"]}
    assert set(by_channel) == {"whatsapp", "sms", "email"}
    assert by_channel["whatsapp"]["configured"] and by_channel["whatsapp"]["health"] == "unverified"
    assert not by_channel["sms"]["configured"] and by_channel["sms"]["health"] is None
    assert "EAAnew0token" not in json.dumps(status) and wa.app_secret not in json.dumps(status)


async def test_configure_refuses_what_does_not_belong_or_is_missing(
    app: App, owner: Owner, providers: Providers
) -> None:
    foreign = await refused(app, owner.key, "configure_channel", {**sms_settings(providers.twilio), "host": "x"})
    assert foreign["code"] == "validation_failed" and foreign["field_errors"][0]["field"] == "host"
    missing = await refused(app, owner.key, "configure_channel", {"channel": "sms", "account_sid": "AC" + "1" * 32})
    assert {e["field"] for e in missing["field_errors"]} == {"auth_token", "from_number"}
    bad_number = await refused(
        app, owner.key, "configure_channel", {**sms_settings(providers.twilio), "from_number": "0612"}
    )
    assert bad_number["code"] == "validation_failed"

    app.settings.allow_private_targets = False
    for host in ("127.0.0.1", "localhost", "10.1.2.3", "192.168.0.9", "::1"):
        private = await refused(app, owner.key, "configure_channel", {**email_settings(providers.mail), "host": host})
        assert private["field_errors"][0]["field"] == "host", host
    public = await ok(
        app, owner.key, "configure_channel", {**email_settings(providers.mail), "host": "smtp.example.com"}
    )
    assert public["settings"]["host"] == "smtp.example.com"
    assert public["secrets_set"] == ["webhook_secret"]
    not_a_secret = await refused(app, owner.key, "configure_channel", {"channel": "email", "webhook_secret": "plain"})
    assert not_a_secret["field_errors"][0]["field"] == "webhook_secret"

    agent = (await ok(app, owner.key, "create_api_key", {"name": "a", "scopes": ["messaging:send"]}))["api_key"]
    denied = await call(app, agent, "configure_channel", sms_settings(providers.twilio))
    assert not denied.ok and denied.data["error"]["code"] == "forbidden"


async def test_reminders_need_a_transactional_template_of_the_channel(
    app: App, owner: Owner, providers: Providers
) -> None:
    await ok(app, owner.key, "configure_channel", sms_settings(providers.twilio))
    visit = await template(app, owner, name="visit")
    offer = await template(app, owner, name="offer", kind="marketing")
    mail = await template(app, owner, channel="email", name="mail", subject="Hi")
    for template_id, why in ((offer["id"], "transactional"), (mail["id"], "email"), ("tpl_nope", "no such")):
        error = await refused(
            app,
            owner.key,
            "configure_channel",
            {"channel": "sms", "reminders": {"template_id": template_id, "hours_before": 24}},
        )
        assert why in error["message"], error
    done = await ok(
        app,
        owner.key,
        "configure_channel",
        {"channel": "sms", "reminders": {"template_id": visit["id"], "hours_before": 24}},
    )
    assert done["settings"]["reminders"] == {"template_id": visit["id"], "hours_before": 24}
    off = await ok(app, owner.key, "configure_channel", {"channel": "sms", "reminders": None})
    assert "reminders" not in off["settings"]


# -- delivery: each provider receives its own wire format ----------------------------------------------------------


async def test_each_provider_receives_its_wire_format(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    local(clock, 11)
    configured = await ready(app, owner, providers)
    member = await customer(app, owner)
    wa, tw, mail = providers.whatsapp, providers.twilio, providers.mail

    visit = await template(
        app,
        owner,
        channel="whatsapp",
        name="visit_reminder",
        body="Hi {{first_name}}, see you {{day}}",
        variables=["first_name", "day"],
    )
    await set_template_status(app, visit["id"], TemplateStatus.approved)
    wa_sent = await ok(
        app, owner.key, "send_message", send(member, "whatsapp", template_id=visit["id"], variables={"day": "Friday"})
    )
    sms_sent = await ok(app, owner.key, "send_message", send(member, "sms", text="Your bag is at the desk."))
    offer = await template(
        app, owner, channel="email", name="offer", kind="marketing", subject="For you, {{first_name}}",
        body="20% off this week.\n\nSee you soon!",
    )  # fmt: skip
    mail_sent = await ok(app, owner.key, "send_message", send(member, "email", template_id=offer["id"]))
    await drain(app)

    [request] = wa.messages
    assert request.headers["authorization"] == f"Bearer {wa.token}"
    assert request.path == f"/{GRAPH_VERSION}/{wa.phone_number_id}/messages"
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": member["phone"],
        "type": "template",
        "template": {
            "name": "visit_reminder",
            "language": {"code": "en"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": "day", "text": "Friday"},
                        {"type": "text", "parameter_name": "first_name", "text": "Sam"},
                    ],
                }
            ],
        },
        "biz_opaque_callback_data": wa_sent["message"]["id"],
    }
    sent = await message_row(app, wa_sent["message"]["id"])
    assert sent.status == "sent" and sent.provider_message_id == wa.wamid_of(request) and sent.sent_at is not None

    [sms] = tw.messages
    assert sms.form == {
        "To": member["phone"],
        "From": tw.from_number,
        "Body": "Your bag is at the desk.",
        "StatusCallback": f"{PUBLIC}/hooks/twilio/{configured['sms']['id']}?m={sms_sent['message']['id']}",
    }
    assert (await message_row(app, sms_sent["message"]["id"])).provider_message_id == tw.sid_of(sms)

    [letter] = mail.to(member["email"])
    headers = letter.message
    assert headers["From"] == "studio@example.com" and headers["Subject"] == "For you, Sam"
    assert headers["Message-ID"] == f"<{mail_sent['message']['id']}@favmcp>"
    unsubscribe = headers["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{PUBLIC}/unsubscribe/") and unsubscribe.endswith(">")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert letter.body.replace("\r\n", "\n").startswith("20% off this week.\n\nSee you soon!")
    html = letter.message.get_body(("html",))
    assert html is not None and "<p>20% off this week.</p>" in html.get_content()

    status = {c["channel"]: c for c in (await ok(app, owner.key, "get_channel_status", {}))["channels"]}
    for channel in ("whatsapp", "sms", "email"):
        assert status[channel]["health"] == "verified" and status[channel]["last_24h"] == {"sent": 1}, status[channel]


async def test_transactional_mail_has_no_unsubscribe_header_and_free_whatsapp_text(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    await ready(app, owner, providers)
    member = await customer(app, owner)
    receipt = await template(
        app, owner, channel="email", name="receipt", subject="Receipt", body="Thanks {{first_name}}"
    )
    await ok(app, owner.key, "send_message", send(member, "email", template_id=receipt["id"]))
    await inbound(app, owner, member, "Is my bag there?", clock.now() - timedelta(hours=1))
    reply = await ok(app, owner.key, "send_message", send(member, "whatsapp", text="Yes, at the desk."))
    await drain(app)
    [letter] = providers.mail.to(member["email"])
    assert letter.message["List-Unsubscribe"] is None and letter.body.strip() == "Thanks Sam"
    [request] = providers.whatsapp.messages
    assert request.json is not None and request.json["type"] == "text"
    assert request.json["text"] == {"preview_url": False, "body": "Yes, at the desk."}
    assert request.json["biz_opaque_callback_data"] == reply["message"]["id"]


async def test_an_opt_out_after_queueing_wins_and_reaches_no_provider(
    app: App, owner: Owner, providers: Providers
) -> None:
    await ready(app, owner, providers)
    leaver, bounced = await customer(app, owner), await customer(app, owner)
    first = await ok(app, owner.key, "send_message", send(leaver, "sms", text="Hello"))
    second = await ok(app, owner.key, "send_message", send(bounced, "sms", text="Hello"))
    args = {"member_id": leaver["id"], "channel": "sms", "granted": False, "source": "called the studio"}
    await ok(app, owner.key, "set_marketing_consent", args)
    async with app.db.transaction() as session:  # a STOP arrived for the other number meanwhile
        session.add(
            Suppression(
                id=new_id("sup"), workspace_id=owner.workspace_id, channel=Channel.sms, address=bounced["phone"],
                reason=SuppressionReason.stop, created_at=app.runner.clock.now(),
            )
        )  # fmt: skip
    await drain(app)
    assert providers.twilio.received == [], "nothing reached the provider"
    for sent, rule in ((first, "opted_out"), (second, "suppressed")):
        row = await message_row(app, sent["message"]["id"])
        assert (row.status, row.error) == ("failed", rule)
        assert (await outbox_of(app, row.id)).status is OutboxStatus.failed
    status = {c["channel"]: c for c in (await ok(app, owner.key, "get_channel_status", {}))["channels"]}
    assert status["sms"]["last_24h"] == {"failed": 2} and status["sms"]["last_failure"]["error"] in {
        "opted_out",
        "suppressed",
    }
    assert status["sms"]["health"] == "unverified", "a rule's refusal says nothing about the channel"


async def test_a_5xx_is_retried_and_a_4xx_fails_the_message(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    await ready(app, owner, providers)
    member = await customer(app, owner)
    tw = providers.twilio
    tw.fail(500, times=2)
    sent = await ok(app, owner.key, "send_message", send(member, "sms", text="Hello"))
    await drain(app)
    assert len(tw.received) == 1 and (await message_row(app, sent["message"]["id"])).status == "queued"
    row = await outbox_of(app, sent["message"]["id"])
    assert row.status is OutboxStatus.pending and row.attempts == 1 and "500" in (row.last_error or "")
    clock.advance(seconds=11)
    await drain(app)
    clock.advance(seconds=21)
    await drain(app)
    assert len(tw.received) == 3 and len(tw.messages) == 3
    delivered = await message_row(app, sent["message"]["id"])
    assert delivered.status == "sent" and delivered.provider_message_id == tw.sid_of(tw.messages[-1])
    assert list(tw.by_message_id()) == [delivered.id], "sent once: the refused attempts created nothing"

    tw.fail(400)
    refused_one = await ok(app, owner.key, "send_message", send(member, "sms", text="Again"))
    await drain(app)
    row = await outbox_of(app, refused_one["message"]["id"])
    assert row.status is OutboxStatus.failed and row.attempts == 1
    failed = await message_row(app, refused_one["message"]["id"])
    assert failed.status == "failed" and "21610" in (failed.error or "") and failed.failed_at is not None
    assert await suppressions(app, owner) == [("sms", member["phone"], "bounce")], "an unsubscribed number"
    tw.recover()


async def test_a_provider_down_for_every_attempt_fails_the_message_and_the_channel(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    await ready(app, owner, providers)
    member = await customer(app, owner)
    providers.whatsapp.fail(503)
    await inbound(app, owner, member, "Hi", clock.now())
    sent = await ok(app, owner.key, "send_message", send(member, "whatsapp", text="Hello"))
    for _ in range(MAX_ATTEMPTS):
        await drain(app)
        clock.advance(hours=1)
    assert len(providers.whatsapp.received) == MAX_ATTEMPTS
    row = await message_row(app, sent["message"]["id"])
    assert row.status == "failed" and "503" in (row.error or "")
    assert (await outbox_of(app, row.id)).status is OutboxStatus.failed
    config = await channel_row(app, owner, "whatsapp")
    assert config.health == "failing" and "503" in (config.last_error or "")


async def test_a_refused_token_marks_the_channel_failing(app: App, owner: Owner, providers: Providers) -> None:
    await ready(app, owner, providers)
    await ok(app, owner.key, "configure_channel", {"channel": "sms", "auth_token": "wrong-token-0000"})
    member = await customer(app, owner)
    sent = await ok(app, owner.key, "send_message", send(member, "sms", text="Hello"))
    await drain(app)
    assert (await message_row(app, sent["message"]["id"])).status == "failed"
    config = await channel_row(app, owner, "sms")
    assert config.health == "failing" and "20003" in (config.last_error or "")
    assert await suppressions(app, owner) == [], "our credentials, not the customer's number"


async def test_an_smtp_5xx_recipient_refusal_is_a_bounce(app: App, owner: Owner, providers: Providers) -> None:
    await ready(app, owner, providers)
    gone, later = await customer(app, owner), await customer(app, owner)
    providers.mail.bounce(gone["email"])
    providers.mail.defer(later["email"])
    receipt = await template(app, owner, channel="email", name="receipt", subject="Receipt", body="Thanks")
    lost = await ok(app, owner.key, "send_message", send(gone, "email", template_id=receipt["id"]))
    waits = await ok(app, owner.key, "send_message", send(later, "email", template_id=receipt["id"]))
    await drain(app)
    bounced = await message_row(app, lost["message"]["id"])
    assert bounced.status == "failed" and "550" in (bounced.error or "")
    assert await suppressions(app, owner) == [("email", gone["email"], "bounce")]
    assert (await message_row(app, waits["message"]["id"])).status == "queued", "a 4xx is tried again"
    assert (await outbox_of(app, waits["message"]["id"])).status is OutboxStatus.pending
    again = await refused(app, owner.key, "send_message", send(gone, "email", template_id=receipt["id"]))
    assert again["details"] == {"rule": "suppressed", "reason": "bounce"}
    assert (await channel_row(app, owner, "email")).health == "unverified"


async def test_a_whatsapp_template_goes_to_metas_review(app: App, owner: Owner, providers: Providers) -> None:
    await ready(app, owner, providers)
    made = await template(
        app, owner, channel="whatsapp", name="win_back", kind="marketing", body="Hi {{ first_name }}, {{deal}}!",
        variables=["first_name", "deal"],
    )  # fmt: skip
    await drain(app)
    [submitted] = providers.whatsapp.template_submissions
    assert submitted.path == f"/{GRAPH_VERSION}/{providers.whatsapp.waba_id}/message_templates"
    assert submitted.json == {
        "name": "win_back",
        "language": "en",
        "category": "MARKETING",
        "parameter_format": "NAMED",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{first_name}}, {{deal}}!",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "deal", "example": "deal"},
                        {"param_name": "first_name", "example": "Alex"},
                    ]
                },
            }
        ],
    }
    async with app.db.transaction() as session:
        stored = await session.get(MessageTemplate, made["id"])
    assert stored is not None and stored.status == "pending"
    assert stored.provider_template_id in providers.whatsapp.templates


async def test_status_counts_only_this_workspace(app: App, owner: Owner, providers: Providers) -> None:
    await ready(app, owner, providers)
    member = await customer(app, owner)
    await ok(app, owner.key, "send_message", send(member, "sms", text="Hello"))
    await drain(app)
    from tests.support import signup

    other = await signup(app)
    status = (await ok(app, other.key, "get_channel_status", {}))["channels"]
    assert all(not c["configured"] and c["last_24h"] == {} and c["last_failure"] is None for c in status)
