"""Campaigns, on SQLite and Postgres: the audience filter and its exclusions (counted again with search_members),
the approval flow sending exactly the approved message, scheduling by the job, the channel's rate, quiet hours,
cancelling, one message per member under concurrent fan-outs, the test send, and the statistics with attribution.

Channels are stored rows here (the provider's credentials play no part until delivery); templates come from
create_message_template. The outbox is run by hand (app.dispatcher.run_once) and the job by its Scheduler."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import col

from favmcp.app import App
from favmcp.core.contact import Channel
from favmcp.core.ids import new_id
from favmcp.domains.bookings.models import Booking, BookingPayment, BookingStatus
from favmcp.domains.campaigns import fanout
from favmcp.domains.campaigns.models import Campaign, CampaignStatus
from favmcp.domains.members.models import Member
from favmcp.domains.messaging import status
from favmcp.domains.messaging.models import (
    Direction,
    Message,
    MessageStatus,
    Suppression,
    SuppressionReason,
)
from favmcp.domains.payments.models import Payment, PaymentMethod, PaymentStatus
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.registry.context import ToolContext
from favmcp.registry.jobs import Scheduler
from tests.messaging_servers import TWILIO_ACCOUNT_SID, Providers, configure_channels, running_providers
from tests.support import FakeClock, Owner, call, confirmed, error_code, gather, join, unique_email
from tests.test_calendar_feed import served

TZ = ZoneInfo("Europe/Amsterdam")


async def ok(app: App, key: str, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


TWILIO_SID = TWILIO_ACCOUNT_SID  # a valid account SID (tests/test_e2e_messaging.py takes it from here)


@pytest.fixture
def providers(app: App) -> Iterator[Providers]:
    """The local WhatsApp, Twilio and SMTP servers, with the app pointed at them."""
    with running_providers(app.settings) as running:
        yield running


async def template(
    app: App, owner: Owner, channel: Channel = Channel.email, body: str | None = None, *, approved: bool = True
) -> str:
    args: dict[str, Any] = {
        "channel": channel.value,
        "name": f"winback_{new_id('t')[-6:].lower()}",
        "kind": "marketing",
        "body": body or "Hi {{first_name}}, we miss you: {{offer}} this week.",
        "variables": ["first_name", "offer"],
    }
    if channel is Channel.email:
        args["subject"] = "We miss you, {{first_name}}"
    made = await ok(app, owner.key, "create_message_template", args)
    assert made["status"] == ("approved" if approved else "pending"), made
    return str(made["id"])


async def customer(
    app: App, owner: Owner, name: str, *, consent: bool | None = True, phone: str | None = None, **extra: Any
) -> str:
    args: dict[str, Any] = {"name": name, "email": unique_email("c"), **extra}
    if phone:
        args["phone"] = phone
    if consent is not None:
        args["consent"] = [{"channel": c.value, "granted": consent} for c in Channel]
    return str((await ok(app, owner.key, "create_member", args))["id"])


async def campaign(app: App, owner: Owner, template_id: str, **extra: Any) -> dict[str, Any]:
    args = {"name": "Win back", "channel": "email", "template_id": template_id, "variables": {"offer": "20% off"}}
    return await ok(app, owner.key, "create_campaign", {**args, **extra})


async def rows(app: App, owner: Owner, model: Any, *where: Any) -> list[Any]:
    async def work(ctx: ToolContext) -> list[Any]:
        return await ctx.db.all(ctx.db.select(model, *where))

    return await app.runner.read_system(owner.workspace_id, "test", work)


async def messages_of(app: App, owner: Owner, campaign_id: str) -> list[Message]:
    found = await rows(app, owner, Message, col(Message.campaign_id) == campaign_id)
    return sorted(found, key=lambda m: m.address)


async def outbox_of(app: App, owner: Owner, message: Message) -> OutboxMessage:
    found = await rows(app, owner, OutboxMessage, col(OutboxMessage.id) == message.outbox_id)
    return found[0]


async def drain(app: App) -> None:
    """Deliver everything due (the signup's and invitations' mail, earlier tests' messages)."""
    while await app.dispatcher.run_once():
        pass


def job(app: App) -> Scheduler:
    return Scheduler(app.runner, [j for j in app.runner.platform.jobs if j.name == "campaigns_fan_out"])


async def allow_self_approval(app: App, owner: Owner) -> None:
    policy = await ok(app, owner.key, "get_approval_policy")
    await ok(app, owner.key, "set_approval_policy", {"rules": policy["rules"], "allow_self_approval": True})


async def send_now(app: App, owner: Owner, campaign_id: str) -> dict[str, Any]:
    """send_campaign, approved by the owner themselves (self-approval allowed for brevity)."""
    asked = await ok(app, owner.key, "send_campaign", {"campaign_id": campaign_id})
    if asked["status"] == "done":
        return asked
    decided = await ok(app, owner.key, "approve_request", {"approval_id": asked["approval_id"]})
    assert decided["status"] == "executed", decided
    return dict(decided["execution"]["result"])


async def search_count(app: App, owner: Owner, **filters: Any) -> set[str]:
    found: set[str] = set()
    cursor = None
    while True:
        more = {"cursor": cursor} if cursor else {}
        page = await ok(app, owner.key, "search_members", {**filters, "limit": 100, **more})
        found |= {m["id"] for m in page["items"]}
        cursor = page["next_cursor"]
        if not cursor:
            return found


# -- audience ---------------------------------------------------------------------------------------------------------


async def test_the_audience_is_the_filter_less_those_the_rules_exclude(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    await configure_channels(app, owner.key, providers)
    tid = await template(app, owner)
    old = clock.current
    regular = await customer(app, owner, "Ann Old", tags=["vip"], lifecycle="regular")
    lapsed = await customer(app, owner, "Bob Lapsed", tags=["yoga"], lifecycle="lapsed")
    no_consent = await customer(app, owner, "Cat Never", consent=None, tags=["vip"], lifecycle="lapsed")
    opted_out = await customer(app, owner, "Dan Out", tags=["vip"], lifecycle="lapsed")
    await ok(
        app,
        owner.key,
        "set_marketing_consent",
        {"member_id": opted_out, "channel": "email", "granted": False, "source": "asked"},
    )
    suppressed = await customer(app, owner, "Eve Bounced", tags=["vip"], lifecycle="lapsed")
    erased = await customer(app, owner, "Fay Gone", tags=["vip"], lifecycle="lapsed")
    phone_only = str(
        (await ok(app, owner.key, "create_member", {"name": "Gil Phone", "phone": "+31612345670", "tags": ["vip"]}))[
            "id"
        ]
    )
    other_tag = await customer(app, owner, "Hal Other", tags=["pilates"], lifecycle="lapsed")
    [eve] = await rows(app, owner, Member, col(Member.id) == suppressed)

    async def suppress(ctx: ToolContext) -> None:
        ctx.db.add(
            Suppression(
                id=new_id("sup"),
                workspace_id=ctx.workspace_id,
                channel=Channel.email,
                address=eve.email or "",
                reason=SuppressionReason.bounce,
                created_at=ctx.now,
            )
        )

    await app.runner.run_system(owner.workspace_id, "test", suppress)
    assert (await confirmed(app, owner.key, "delete_member", {"member_id": erased})).ok
    clock.advance(days=61)
    recent = await customer(app, owner, "Ivy Recent", tags=["vip"], lifecycle="lapsed")

    made = await campaign(app, owner, tid, tags=["vip", "yoga"], inactive_days=60)
    preview = await ok(app, owner.key, "preview_campaign_audience", {"campaign_id": made["id"]})
    # Counted again: members with either tag, inactive 60 days (search_members has one tag per call).
    vip = await search_count(app, owner, tag="vip", inactive_days=60, include_inactive_status=True)
    yoga = await search_count(app, owner, tag="yoga", inactive_days=60, include_inactive_status=True)
    matched = vip | yoga
    assert matched == {regular, lapsed, no_consent, opted_out, suppressed, phone_only}  # erasing took the tags
    assert recent not in matched and other_tag not in matched and old < clock.current
    assert preview["matched"] == len(matched) == 6
    assert preview["count"] == 2
    assert preview["excluded"] == {"unreachable": 0, "no_address": 1, "no_consent": 1, "opted_out": 1, "suppressed": 1}
    assert {s["member_id"] for s in preview["sample"]} == {regular, lapsed}
    assert all("***@" in s["address"] for s in preview["sample"])

    quiet = await campaign(app, owner, tid, inactive_days=60)
    everyone = await ok(app, owner.key, "preview_campaign_audience", {"campaign_id": quiet["id"]})
    inactive = await search_count(app, owner, inactive_days=60, include_inactive_status=True)
    assert erased in inactive and everyone["matched"] == len(inactive) == 8
    assert everyone["excluded"]["unreachable"] == 1 and everyone["count"] == 3  # other_tag too

    narrow = await campaign(app, owner, tid, tags=["vip"], lifecycle=["regular", "customer"])
    assert (await ok(app, owner.key, "preview_campaign_audience", {"campaign_id": narrow["id"]}))["count"] == 1
    regulars = await search_count(app, owner, tag="vip", lifecycle="regular")
    assert regulars == {regular}

    tier = await ok(app, owner.key, "create_membership_tier", {"name": "Gold", "threshold": 100000})
    await ok(app, owner.key, "enrol_membership", {"member_id": lapsed, "tier_id": tier["id"]})
    gold = await campaign(app, owner, tid, tier_id=tier["id"])
    in_tier = await ok(app, owner.key, "preview_campaign_audience", {"campaign_id": gold["id"]})
    assert in_tier["count"] == 1 and in_tier["sample"][0]["member_id"] == lapsed
    assert await search_count(app, owner, tier_id=tier["id"]) == {lapsed}

    spend = await campaign(app, owner, tid, min_spend=1)
    assert (await ok(app, owner.key, "preview_campaign_audience", {"campaign_id": spend["id"]}))["count"] == 0
    bad = await call(app, owner.key, "create_campaign", {**_args(tid), "tier_id": "tier_nope"})
    assert error_code(bad) == "not_found"


def _args(template_id: str) -> dict[str, Any]:
    return {"name": "Win back", "channel": "email", "template_id": template_id, "variables": {"offer": "20% off"}}


async def test_create_campaign_checks_its_template_and_variables(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    await configure_channels(app, owner.key, providers)
    tid = await template(app, owner)
    missing = await call(app, owner.key, "create_campaign", {**_args(tid), "variables": {}})
    assert error_code(missing) == "validation_failed"
    unknown = await call(app, owner.key, "create_campaign", {**_args(tid), "variables": {"offer": "x", "nope": "y"}})
    assert error_code(unknown) == "validation_failed"
    wrong_channel = await call(app, owner.key, "create_campaign", {**_args(tid), "channel": "sms"})
    assert error_code(wrong_channel) == "validation_failed"
    past = await call(app, owner.key, "create_campaign", {**_args(tid), "scheduled_at": "2020-01-01T00:00:00Z"})
    assert error_code(past) == "validation_failed"
    made = await ok(app, owner.key, "create_campaign", _args(tid))
    assert made["status"] == "draft" and made["attribution_days"] == 7
    assert made["sample"] == {
        "subject": "We miss you, {{first_name}}",
        "body": "Hi {{first_name}}, we miss you: 20% off this week.",
    }
    listed = await ok(app, owner.key, "list_campaigns", {"status": "draft"})
    assert [c["id"] for c in listed["items"]] == [made["id"]]
    assert listed["items"][0]["counts"]["queued"] == 0


# -- approval and sending ---------------------------------------------------------------------------------------------


async def test_an_approved_campaign_queues_exactly_the_approved_message(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    await configure_channels(app, owner.key, providers)
    tid = await template(app, owner)
    ann = await customer(app, owner, "Ann Smith")
    bob = await customer(app, owner, "Bob Jones")
    await customer(app, owner, "Cat Out", consent=False)
    made = await campaign(app, owner, tid)
    manager = await join(app, owner, "manager")
    await drain(app)

    asked = await ok(app, owner.key, "send_campaign", {"campaign_id": made["id"]})
    assert asked["status"] == "pending_approval"
    approval = await ok(app, manager.key, "get_approval", {"approval_id": asked["approval_id"]})
    assert "to 2 customers" in approval["summary"]
    assert "Hi {{first_name}}, we miss you: 20% off this week." in approval["summary"]
    assert await messages_of(app, owner, made["id"]) == []  # nothing before approval

    decided = await ok(app, manager.key, "approve_request", {"approval_id": asked["approval_id"]})
    assert decided["status"] == "executed", decided
    assert decided["execution"]["result"]["queued"] == 2
    sent = await messages_of(app, owner, made["id"])
    assert {m.member_id for m in sent} == {ann, bob}
    assert {m.body for m in sent} == {
        "Hi Ann, we miss you: 20% off this week.",
        "Hi Bob, we miss you: 20% off this week.",
    }
    assert all(m.kind == "marketing" and m.status is MessageStatus.queued for m in sent)
    got = await ok(app, owner.key, "get_campaign", {"campaign_id": made["id"]})
    assert got["status"] == "sending" and got["recipients"] == 2 and got["audience_size"] == 2

    # Every message leaves (the second a fifth of a second after the first); the job marks the campaign sent.
    # Drained rather than counted: the moved clock may also make due what earlier tests on this database left queued.
    clock.advance(seconds=1)
    await drain(app)
    assert sorted(m.status for m in await messages_of(app, owner, made["id"])) == [MessageStatus.sent] * 2
    assert len(providers.mail.attempts) == 2
    await job(app).run_due()
    assert (await ok(app, owner.key, "get_campaign", {"campaign_id": made["id"]}))["status"] == "sent"
    again = await call(app, owner.key, "send_campaign", {"campaign_id": made["id"]})
    assert error_code(again) == "invalid_state"


async def test_a_template_edited_after_the_ask_is_not_sent(app: App, owner: Owner, providers: Providers) -> None:
    await configure_channels(app, owner.key, providers)
    tid = await template(app, owner)
    await customer(app, owner, "Ann Smith")
    made = await campaign(app, owner, tid)
    manager = await join(app, owner, "manager")
    asked = await ok(app, owner.key, "send_campaign", {"campaign_id": made["id"]})
    await ok(app, owner.key, "update_message_template", {"template_id": tid, "body": "Hi {{first_name}}: {{offer}}!"})
    decided = await ok(app, manager.key, "approve_request", {"approval_id": asked["approval_id"]})
    assert decided["status"] == "failed" and decided["execution"]["error"]["code"] == "conflict"
    assert await messages_of(app, owner, made["id"]) == []
    assert (await ok(app, owner.key, "get_campaign", {"campaign_id": made["id"]}))["status"] == "draft"


async def test_a_scheduled_campaign_is_fanned_out_by_the_job_when_due(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    await configure_channels(app, owner.key, providers)
    await allow_self_approval(app, owner)
    tid = await template(app, owner)
    ann = await customer(app, owner, "Ann Smith")
    at = clock.current + timedelta(hours=2)
    made = await campaign(app, owner, tid, scheduled_at=at.isoformat())
    await drain(app)
    done = await send_now(app, owner, made["id"])
    assert done["campaign_status"] == "scheduled" and done["queued"] == 0
    await job(app).run_due()
    assert await messages_of(app, owner, made["id"]) == []
    clock.advance(hours=2)
    await job(app).run_due()
    [message] = await messages_of(app, owner, made["id"])
    assert message.member_id == ann
    got = await ok(app, owner.key, "get_campaign", {"campaign_id": made["id"]})
    assert got["status"] == "sending" and got["started_at"] is not None
    await drain(app)
    [message] = await messages_of(app, owner, made["id"])
    assert message.status is MessageStatus.sent
    clock.advance(minutes=1)
    await job(app).run_due()
    assert (await ok(app, owner.key, "get_campaign", {"campaign_id": made["id"]}))["status"] == "sent"


async def test_the_rate_limit_spreads_the_messages_and_quiet_hours_defer_them(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    quiet = {"start": "21:00", "end": "09:00"}
    await configure_channels(app, owner.key, providers, quiet_hours=quiet)
    await allow_self_approval(app, owner)
    tid = await template(app, owner)
    for n in range(4):
        await customer(app, owner, f"Customer {n}")
    local = clock.current.astimezone(TZ)
    clock.current = (local.replace(hour=12, minute=0, second=0) + timedelta(days=1)).astimezone(clock.current.tzinfo)
    made = await campaign(app, owner, tid)
    assert (await send_now(app, owner, made["id"]))["queued"] == 4
    times = sorted(
        [(await outbox_of(app, owner, m)).next_attempt_at for m in await messages_of(app, owner, made["id"])]
    )
    gap = timedelta(minutes=1) / fanout.RATE_PER_MINUTE[Channel.email]
    assert [t - times[0] for t in times] == [gap * i for i in range(4)]
    assert abs(times[0] - clock.current) < timedelta(seconds=1)
    # A second campaign on the channel shares its rate: its messages follow the first one's.
    other = await campaign(app, owner, tid)
    assert (await send_now(app, owner, other["id"]))["queued"] == 4
    then = sorted(
        [(await outbox_of(app, owner, m)).next_attempt_at for m in await messages_of(app, owner, other["id"])]
    )
    assert [t - times[0] for t in then] == [gap * i for i in range(4, 8)]

    # At 22:00 local, marketing waits for 09:00 rather than being refused.
    evening = clock.current.astimezone(TZ).replace(hour=22)
    clock.current = evening.astimezone(clock.current.tzinfo)
    late = await campaign(app, owner, tid)
    await drain(app)
    assert (await send_now(app, owner, late["id"]))["queued"] == 4
    times = sorted(
        [(await outbox_of(app, owner, m)).next_attempt_at for m in await messages_of(app, owner, late["id"])]
    )
    morning = (evening + timedelta(days=1)).replace(hour=9)
    assert times[0].astimezone(TZ) == morning and times[-1] - times[0] == gap * 3
    assert await app.dispatcher.run_once() == 0  # none goes at night


async def test_cancel_stops_what_has_not_gone_and_keeps_what_has(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    await configure_channels(app, owner.key, providers)
    await allow_self_approval(app, owner)
    tid = await template(app, owner, Channel.sms)
    for n in range(3):
        await customer(app, owner, f"Customer {n}", phone=f"+3161234567{n}")
    made = await campaign(app, owner, tid, channel="sms")
    await drain(app)
    assert (await send_now(app, owner, made["id"]))["queued"] == 3
    assert await app.dispatcher.run_once() == 1  # one a second: only the first is due
    cancelled = await ok(app, owner.key, "cancel_campaign", {"campaign_id": made["id"]})
    assert cancelled["status"] == "cancelled"
    again = await ok(app, owner.key, "cancel_campaign", {"campaign_id": made["id"]})
    assert again["status"] == "cancelled" and again["cancelled_at"] == cancelled["cancelled_at"]
    clock.advance(minutes=5)
    assert await app.dispatcher.run_once() == 0
    assert len(providers.twilio.messages) == 1
    outboxes = [await outbox_of(app, owner, m) for m in await messages_of(app, owner, made["id"])]
    assert sorted(o.status for o in outboxes) == [OutboxStatus.failed, OutboxStatus.failed, OutboxStatus.sent]
    assert {o.last_error for o in outboxes if o.status is OutboxStatus.failed} == {fanout.CANCELLED}
    statuses = sorted(m.status for m in await messages_of(app, owner, made["id"]))
    assert statuses.count(MessageStatus.cancelled) == 2 and MessageStatus.cancelled not in statuses[2:]
    stats = await ok(app, owner.key, "get_campaign_stats", {"campaign_id": made["id"]})
    assert stats["counts"]["cancelled"] == 2 and stats["recipients"] == 3
    draft = await campaign(app, owner, tid, channel="sms")
    assert (await ok(app, owner.key, "cancel_campaign", {"campaign_id": draft["id"]}))["status"] == "cancelled"
    assert error_code(await call(app, owner.key, "send_campaign", {"campaign_id": draft["id"]})) == "invalid_state"


async def test_concurrent_fan_outs_message_each_member_once(app: App, owner: Owner, providers: Providers) -> None:
    await configure_channels(app, owner.key, providers)
    tid = await template(app, owner)
    members = {await customer(app, owner, f"Customer {n}") for n in range(6)}
    made = await campaign(app, owner, tid)

    async def begin(ctx: ToolContext) -> None:
        await fanout.start(ctx, await fanout.load(ctx, made["id"]))

    await app.runner.run_system(owner.workspace_id, "test", begin)

    async def fan(ctx: ToolContext) -> fanout.FanOut:
        return await fanout.fan_out(ctx, made["id"], limit=4)

    results = await gather(*[app.runner.run_system(owner.workspace_id, "test", fan) for _ in range(3)])
    assert sum(r.queued for r in results) == 6
    sent = await messages_of(app, owner, made["id"])
    assert sorted(m.member_id for m in sent) == sorted(members)
    [stored] = await rows(app, owner, Campaign, col(Campaign.id) == made["id"])
    assert stored.audience_size == 6 and stored.status is CampaignStatus.sending


async def test_the_job_continues_a_fan_out_batch_by_batch(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    await configure_channels(app, owner.key, providers)
    tid = await template(app, owner)
    members = {await customer(app, owner, f"Customer {n}") for n in range(5)}
    made = await campaign(app, owner, tid)

    async def first_batch(ctx: ToolContext) -> fanout.FanOut:
        await fanout.start(ctx, await fanout.load(ctx, made["id"]))
        return await fanout.fan_out(ctx, made["id"], limit=2)

    batch = await app.runner.run_system(owner.workspace_id, "test", first_batch)
    assert (batch.queued, batch.done) == (2, False)
    assert (await ok(app, owner.key, "get_campaign", {"campaign_id": made["id"]}))["audience_size"] is None
    await job(app).run_due()
    assert {m.member_id for m in await messages_of(app, owner, made["id"])} == members
    got = await ok(app, owner.key, "get_campaign", {"campaign_id": made["id"]})
    assert got["audience_size"] == 5 and got["status"] == "sending"
    clock.advance(minutes=1)
    await drain(app)
    await job(app).run_due()
    assert (await ok(app, owner.key, "get_campaign", {"campaign_id": made["id"]}))["status"] == "sent"
    assert len(providers.mail.messages) == 5


async def test_a_test_send_reaches_only_the_team_member(app: App, owner: Owner, providers: Providers) -> None:
    await configure_channels(app, owner.key, providers)
    tid = await template(app, owner)
    await customer(app, owner, "Ann Smith")
    made = await campaign(app, owner, tid)
    sent = await ok(app, owner.key, "send_test_campaign", {"campaign_id": made["id"]})
    assert sent["recipient"] == owner.email and sent["body"] == "Hi Ann, we miss you: 20% off this week."
    [message] = await messages_of(app, owner, made["id"])
    assert message.member_id is None and message.address == owner.email and message.variables["_test"] is True
    assert (await outbox_of(app, owner, message)).recipient == owner.email
    await drain(app)
    assert [m.rcpt_tos for m in providers.mail.messages] == [[owner.email]]  # and no customer
    assert "Hi Ann, we miss you: 20% off this week." in providers.mail.messages[0].body
    [message] = await messages_of(app, owner, made["id"])
    assert message.status is MessageStatus.sent
    stats = await ok(app, owner.key, "get_campaign_stats", {"campaign_id": made["id"]})
    assert stats["recipients"] == 0  # a test is not a recipient
    sms = await campaign(app, owner, await template(app, owner, Channel.sms), channel="sms")
    refused = await call(app, owner.key, "send_test_campaign", {"campaign_id": sms["id"]})
    assert error_code(refused) == "conflict" and refused.data["error"]["details"]["rule"] == "no_address"
    nobody = await call(app, owner.key, "send_test_campaign", {"campaign_id": made["id"], "user_id": "usr_nope"})
    assert error_code(nobody) == "not_found"
    assert (await ok(app, owner.key, "get_campaign", {"campaign_id": made["id"]}))["status"] == "draft"


# -- statistics -------------------------------------------------------------------------------------------------------


async def test_stats_attribute_bookings_and_payments_within_the_window(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    await configure_channels(app, owner.key, providers)
    await allow_self_approval(app, owner)
    tid = await template(app, owner)
    ann, bob, cat = [await customer(app, owner, name) for name in ("Ann Smith", "Bob Jones", "Cat Brown")]
    made = await campaign(app, owner, tid, attribution_days=7)
    await send_now(app, owner, made["id"])
    sent_at = clock.current

    async def provider_says_sent(ctx: ToolContext) -> None:  # stands in for the provider's delivery callbacks
        await status.advance(ctx, MessageStatus.sent, col(Message.campaign_id) == made["id"], at=ctx.now)
        await status.advance(
            ctx,
            MessageStatus.delivered,
            col(Message.campaign_id) == made["id"],
            col(Message.member_id) != cat,
            at=ctx.now,
        )

    await app.runner.run_system(owner.workspace_id, "test", provider_says_sent)
    clock.advance(days=2)
    service = await ok(
        app, owner.key, "create_service", {"name": "Massage", "duration_minutes": 60, "unit_amount": 6000}
    )

    async def activity(ctx: ToolContext) -> None:
        def booking(member_id: str, created: datetime) -> Booking:
            starts = created + timedelta(days=3)
            return Booking(
                id=new_id("bkg"), workspace_id=ctx.workspace_id, member_id=member_id, service_id=service["id"],
                staff_user_id=owner.user_id, status=BookingStatus.confirmed, starts_at=starts,
                ends_at=starts + timedelta(hours=1), blocked_from=starts, blocked_until=starts + timedelta(hours=1),
                unit_amount=6000, currency="EUR", payment=BookingPayment.none, created_at=created, updated_at=created,
            )  # fmt: skip

        def payment(member_id: str, paid: datetime, amount: int, refunded: int = 0) -> Payment:
            return Payment(
                id=new_id("pay"), workspace_id=ctx.workspace_id, member_id=member_id, method=PaymentMethod.cash,
                status=PaymentStatus.partially_refunded if refunded else PaymentStatus.succeeded, currency="EUR",
                amount=amount, amount_applied=amount, amount_refunded=refunded, paid_at=paid, created_at=paid,
            )  # fmt: skip

        ctx.db.add(booking(ann, sent_at + timedelta(days=2)))  # inside the window
        ctx.db.add(booking(bob, sent_at + timedelta(days=8)))  # outside
        ctx.db.add(booking(cat, sent_at - timedelta(days=1)))  # before the message
        ctx.db.add(payment(ann, sent_at + timedelta(days=2), 6000, refunded=1000))  # 5000 kept
        ctx.db.add(payment(bob, sent_at + timedelta(days=6, hours=23), 2500))
        ctx.db.add(payment(bob, sent_at + timedelta(days=7), 9999))  # the window is over
        ctx.db.add(
            Message(
                id=new_id("msg"), workspace_id=ctx.workspace_id, member_id=cat, channel=Channel.email,
                direction=Direction.inbound, status=MessageStatus.received, address="cat@example.com",
                body="Yes please", created_at=ctx.now, updated_at=ctx.now,
            )
        )  # fmt: skip

    await app.runner.run_system(owner.workspace_id, "test", activity)
    await ok(
        app,
        owner.key,
        "set_marketing_consent",
        {"member_id": bob, "channel": "email", "granted": False, "source": "reply"},
    )

    stats = await ok(app, owner.key, "get_campaign_stats", {"campaign_id": made["id"]})
    assert stats["recipients"] == 3
    assert stats["counts"] == {"queued": 0, "sent": 1, "delivered": 2, "read": 0, "failed": 0, "cancelled": 0}
    assert stats["opted_out"] == 1 and stats["replies"] == 1
    assert stats["bookings"] == 1
    assert stats["revenue"] == [{"currency": "EUR", "amount": 7500}]

    report = await ok(app, owner.key, "campaign_performance_report", {})
    [row] = report["items"]
    assert row["campaign_id"] == made["id"] and row["reach"] == 3 and row["delivered"] == 2
    assert row["replies"] == 1 and row["bookings"] == 1 and row["revenue"] == 7500 and row["currency"] == "EUR"


# -- through the providers --------------------------------------------------------------------------------------------


async def test_campaigns_reach_the_providers_and_their_callbacks_reach_the_stats(
    app: App, owner: Owner, providers: Providers, clock: FakeClock
) -> None:
    """SMS through Twilio: delivery callbacks and a STOP reply show in get_campaign_stats, and the next campaign's
    audience leaves the customer out. WhatsApp: a campaign waits for Meta's approval of its template, then goes as
    that template."""
    tw, wa = providers.twilio, providers.whatsapp
    async with served(app) as base, httpx.AsyncClient(timeout=10) as http:
        app.settings.public_url = base
        channels = await configure_channels(app, owner.key, providers)
        await allow_self_approval(app, owner)
        ann = await customer(app, owner, "Ann Smith", phone="+31612345671")
        bob = await customer(app, owner, "Bob Jones", phone="+31612345672")
        sms = await campaign(app, owner, await template(app, owner, Channel.sms), channel="sms")
        await send_now(app, owner, sms["id"])
        clock.advance(seconds=5)
        await drain(app)
        assert sorted((r.form or {})["To"] for r in tw.messages) == ["+31612345671", "+31612345672"]
        assert {(r.form or {})["Body"] for r in tw.messages} == {
            "Hi Ann, we miss you: 20% off this week.",
            "Hi Bob, we miss you: 20% off this week.",
        }
        to_ann = next(r for r in tw.messages if (r.form or {})["To"] == "+31612345671")
        url, params = tw.status_callback(to_ann, "delivered")
        assert (await tw.deliver(http, url, params)).status_code == 200
        clock.advance(minutes=3)
        stop = await tw.deliver(
            http, f"{base}/hooks/twilio/{channels['sms']['id']}", tw.inbound("+31612345672", "STOP")
        )
        assert stop.status_code == 200
        stats = await ok(app, owner.key, "get_campaign_stats", {"campaign_id": sms["id"]})
        assert (stats["counts"]["sent"], stats["counts"]["delivered"]) == (1, 1)
        assert stats["opted_out"] == 1 and stats["replies"] == 1
        again = await campaign(app, owner, sms["template_id"], channel="sms")
        preview = await ok(app, owner.key, "preview_campaign_audience", {"campaign_id": again["id"]})
        assert [s["member_id"] for s in preview["sample"]] == [ann] and bob not in str(preview)

        waiting = await template(app, owner, Channel.whatsapp, approved=False)
        await drain(app)  # the template goes to Meta for review
        wa_campaign = await campaign(app, owner, waiting, channel="whatsapp")
        refused = await call(app, owner.key, "send_campaign", {"campaign_id": wa_campaign["id"]})
        assert error_code(refused) == "conflict" and refused.data["error"]["details"]["rule"] == "template_not_approved"
        [provider_id] = wa.templates
        assert (
            await wa.deliver(
                http, f"{base}/hooks/whatsapp/{channels['whatsapp']['id']}", wa.template_status(provider_id, "APPROVED")
            )
        ).status_code == 200
        assert (await send_now(app, owner, wa_campaign["id"]))["queued"] == 2
        clock.advance(seconds=5)
        await drain(app)
        sent = [r.json or {} for r in wa.messages]
        assert sorted(m["to"] for m in sent) == ["+31612345671", "+31612345672"]
        assert {m["type"] for m in sent} == {"template"}
