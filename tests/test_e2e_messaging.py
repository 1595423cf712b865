"""End to end over MCP, the seed's messaging scenario, against a real `favmcp serve --http` process with the SDK's
client and the local WhatsApp Cloud API, Twilio and SMTP servers, on SQLite and Postgres, on the real clock.

An agent whose key holds only `messaging:send` drafts a win-back campaign for customers inactive 60 days on each
channel, previews the audience, sends itself a test and asks to send. The owner sees each pending approval with the
rendered message and approves it. The messages reach the three providers; the providers' signed delivery callbacks
show in get_campaign_stats; a customer replies STOP by SMS and the next SMS to them is refused before any provider
is called.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
from sqlalchemy import update
from sqlmodel import col

from favmcp.app import App
from favmcp.domains.members.models import Member
from tests.messaging_servers import (
    TWILIO_ACCOUNT_SID,
    MailServer,
    TwilioServer,
    WhatsAppServer,
    running_mail_server,
)
from tests.servers import server_env
from tests.support import Owner, join, unique_email
from tests.test_e2e_mcp import http_server, ok, refused

CHANNELS = ("whatsapp", "sms", "email")
OFFER = "20% off your next visit"


async def arrived(count: int, found: Any) -> None:
    """Wait (up to 30 s) until the local providers hold `count` messages; the server's own worker delivers them."""
    with anyio.fail_after(30):
        while found() < count:  # noqa: ASYNC110 - the providers record on their own threads
            await anyio.sleep(0.1)


async def age(app: App, member_ids: list[str], days: int) -> None:
    """The passage of time: these customers were last active `days` ago."""
    async with app.db.transaction() as session:
        await session.execute(
            update(Member)
            .where(col(Member.id).in_(member_ids))
            .values(last_activity_at=datetime.now(UTC) - timedelta(days=days))
        )


async def test_a_win_back_campaign_from_draft_to_delivery_and_a_stop_reply(
    app: App, database_url: str, tmp_path: Path, owner: Owner
) -> None:
    # The agent's key is made by an admin (keys belong to the person who makes them), so that the owner, another
    # person, may approve what it asks.
    admin = await join(app, owner, "admin")
    with (
        WhatsAppServer() as wa,
        TwilioServer(account_sid=TWILIO_ACCOUNT_SID) as twilio,
        running_mail_server() as mail,
    ):
        env = {
            **server_env(database_url, tmp_path),
            "FAVMCP_PUBLIC_URL": "http://127.0.0.1:{port}",
            "FAVMCP_WHATSAPP_API_BASE": wa.base,
            "FAVMCP_TWILIO_API_BASE": twilio.base,
            "FAVMCP_ALLOW_PRIVATE_TARGETS": "1",
        }
        async with http_server(env, tmp_path / "server.log") as http:
            await scenario(app, http, owner, admin.key, admin.email, wa, twilio, mail)


async def scenario(
    app: App,
    http: Any,
    owner: Owner,
    admin_key: str,
    admin_email: str,
    wa: WhatsAppServer,
    twilio: TwilioServer,
    mail: MailServer,
) -> None:
    async with (
        http.session("auto", key=owner.key) as boss,
        http.session("auto", key=admin_key) as admin,
        httpx.AsyncClient(timeout=10) as web,
    ):

        async def as_owner(name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
            return ok(await boss.call_tool(name, args or {}))

        # The owner sets up the three channels against the local providers and one win-back template each.
        channel_ids = {}
        for settings in (
            {
                "channel": "whatsapp",
                "phone_number_id": wa.phone_number_id,
                "waba_id": wa.waba_id,
                "access_token": wa.token,
                "app_secret": wa.app_secret,
                "verify_token": "verify-me-0123",
                "from_number": wa.display_number,
            },
            {
                "channel": "sms",
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": twilio.from_number,
            },
            {
                "channel": "email",
                "host": mail.host,
                "port": mail.port,
                "starttls": False,
                "from_address": "hello@studio.example",
            },
        ):
            made = await as_owner("configure_channel", {"quiet_hours": None, **settings})
            shown = json.dumps(made)
            assert all(secret not in shown for secret in (wa.token, wa.app_secret, twilio.auth_token))
            channel_ids[settings["channel"]] = made["id"]
        templates = {}
        for channel in CHANNELS:
            templates[channel] = await as_owner(
                "create_message_template",
                {
                    "channel": channel,
                    "name": "win_back",
                    "kind": "marketing",
                    "subject": "We miss you" if channel == "email" else None,
                    "body": "Hi {{first_name}}, we miss you! {{offer}}",
                    "variables": ["first_name", "offer"],
                },
            )
        assert templates["whatsapp"]["status"] == "pending" and templates["sms"]["status"] == "approved"
        # Meta reviews the WhatsApp template and says so by a signed webhook.
        with anyio.fail_after(30):
            while not wa.templates:  # noqa: ASYNC110 - the provider records on its own thread
                await anyio.sleep(0.1)
        (meta_id,) = wa.templates
        hook = f"{http.base}/hooks/whatsapp/{channel_ids['whatsapp']}"
        answer = await wa.deliver(web, hook, wa.template_status(meta_id, "APPROVED", name="win_back"))
        assert answer.status_code == 200
        listed = await as_owner("list_message_templates", {"channel": "whatsapp"})
        assert [t["status"] for t in listed["items"]] == ["approved"]

        # Customers: three lapsed ones who agreed to hear from us, one lapsed without consent, one active.
        lapsed = []
        for i in range(3):
            member = await as_owner(
                "create_member",
                {"name": f"Lapsed {i} Customer", "email": unique_email(f"lapsed{i}"), "phone": f"+3161234560{i}"},
            )
            for channel in CHANNELS:
                await as_owner(
                    "set_marketing_consent",
                    {"member_id": member["id"], "channel": channel, "granted": True, "source": "signup form"},
                )
            lapsed.append(member["id"])
        silent = await as_owner("create_member", {"name": "No Consent", "phone": "+31612345699"})
        active = await as_owner("create_member", {"name": "Still Here", "phone": "+31612345698"})
        await as_owner(
            "set_marketing_consent",
            {"member_id": active["id"], "channel": "sms", "granted": True, "source": "signup form"},
        )
        await age(app, [*lapsed, silent["id"]], days=90)

        agent_key = ok(
            await admin.call_tool("create_api_key", {"name": "win-back agent", "scopes": ["messaging:send"]})
        )["api_key"]
        async with http.session("auto", key=agent_key) as agent:

            async def as_agent(name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
                return ok(await agent.call_tool(name, args or {}))

            refused(await agent.call_tool("search_members", {}), "forbidden")
            campaigns = {}
            for channel in CHANNELS:
                campaign = await as_agent(
                    "create_campaign",
                    {
                        "name": f"Win-back ({channel})",
                        "channel": channel,
                        "template_id": templates[channel]["id"],
                        "variables": {"offer": OFFER},
                        "inactive_days": 60,
                    },
                )
                preview = await as_agent("preview_campaign_audience", {"campaign_id": campaign["id"]})
                assert preview["count"] == 3, preview
                assert {s["member_id"] for s in preview["sample"]} <= set(lapsed)
                campaigns[channel] = campaign
            test = await as_agent("send_test_campaign", {"campaign_id": campaigns["email"]["id"]})
            assert test["recipient"] == admin_email and OFFER in test["body"]
            await arrived(1, lambda: len(mail.messages))
            assert [m.rcpt_tos for m in mail.messages] == [[admin_email]]

            asked = {}
            for channel in CHANNELS:
                pending = await as_agent("send_campaign", {"campaign_id": campaigns[channel]["id"]})
                assert pending["status"] == "pending_approval", pending
                asked[channel] = pending["approval_id"]
            assert not wa.messages and not twilio.messages and len(mail.messages) == 1, "nothing goes before approval"

            # The owner sees each request with the rendered message, and approves it.
            waiting = await as_owner("list_approvals", {"status": "pending"})
            assert {a["id"] for a in waiting["items"]} == set(asked.values())
            for channel, approval_id in asked.items():
                request = await as_owner("get_approval", {"approval_id": approval_id})
                assert request["tool"] == "send_campaign" and request["channel"] == channel
                assert "we miss you" in request["summary"] and OFFER in request["summary"], request["summary"]
                decided = await as_owner("approve_request", {"approval_id": approval_id})
                assert decided["status"] == "executed", decided

            await arrived(3, lambda: len(wa.by_message_id()))
            await arrived(3, lambda: len(twilio.by_message_id()))
            await arrived(4, lambda: len(mail.messages))
            texts = [(r.json or {}) for r in wa.messages]
            assert all(t["type"] == "template" and t["template"]["name"] == "win_back" for t in texts)
            assert {(r.form or {})["Body"] for r in twilio.messages} == {f"Hi Lapsed, we miss you! {OFFER}"}, (
                "the approved text, exactly"
            )
            assert sorted(str(r.form["To"]) for r in twilio.messages) == [f"+3161234560{i}" for i in range(3)]

            # The providers report delivery (and WhatsApp reads) by signed callbacks.
            for request in wa.messages:
                for status in ("delivered", "read"):
                    assert (await wa.deliver(web, hook, wa.status_for(request, status))).status_code == 200
            for request in twilio.messages:
                url, params = twilio.status_callback(request, "delivered")
                assert (await twilio.deliver(web, url, params)).status_code == 200

            stats = {c: await as_agent("get_campaign_stats", {"campaign_id": campaigns[c]["id"]}) for c in CHANNELS}
            assert stats["whatsapp"]["counts"]["read"] == 3, stats["whatsapp"]
            assert stats["sms"]["counts"]["delivered"] == 3, stats["sms"]
            assert stats["email"]["counts"]["sent"] == 3, stats["email"]
            assert all(s["recipients"] == 3 for s in stats.values())

            # A customer answers STOP: the next SMS to them is refused before Twilio hears of it.
            stop = twilio.inbound(f"+3161234560{0}", "stop")
            sms_hook = f"{http.base}/hooks/twilio/{channel_ids['sms']}"
            assert (await twilio.deliver(web, sms_hook, stop)).status_code == 200
            sent_before = len(twilio.messages)
            again = refused(
                await agent.call_tool(
                    "send_message",
                    {
                        "member_id": lapsed[0],
                        "channel": "sms",
                        "template_id": templates["sms"]["id"],
                        "variables": {"offer": OFFER},
                    },
                ),
                "conflict",
            )
            assert again["details"]["rule"] in {"opted_out", "suppressed"}, again
            assert len(twilio.messages) == sent_before
            after = await as_agent("get_campaign_stats", {"campaign_id": campaigns["sms"]["id"]})
            assert after["opted_out"] == 1 and after["replies"] == 1, after
