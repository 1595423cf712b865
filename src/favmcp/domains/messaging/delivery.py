"""Delivering messages: the outbox channels that hand a queued message (or a WhatsApp template for review) to its
provider and settle the message's status.

A message is read, checked again and sent outside any transaction (no write lock waits on a provider), then
settled in a unit of work of its own. An opt-out or suppression that arrived after the message was queued wins:
the message fails with the rule's name and nothing is sent. Providers take no idempotency key, so a worker that
dies between the provider's answer and the settling leaves the message queued, and it goes again: our message id
travels with every copy (WhatsApp's biz_opaque_callback_data, Twilio's callback `m=`, the mail's Message-ID), so
duplicates can be counted by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlmodel import col

from favmcp.core.contact import Channel
from favmcp.core.ids import new_id
from favmcp.domains.members.models import Member, MemberStatus
from favmcp.domains.messaging import channels, rules
from favmcp.domains.messaging.models import (
    ChannelConfig,
    Message,
    MessageStatus,
    MessageTemplate,
    Suppression,
    SuppressionReason,
    TemplateStatus,
)
from favmcp.domains.messaging.sending import OUTBOX_CHANNEL
from favmcp.domains.messaging.status import advance
from favmcp.domains.messaging.templates import REVIEW_CHANNEL
from favmcp.effects.approvals import SendKind
from favmcp.effects.channels import mail, sms, whatsapp
from favmcp.effects.channels.refused import Refused
from favmcp.effects.dispatcher import MAX_ATTEMPTS
from favmcp.effects.models import OutboxMessage, Undeliverable
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import ChannelOf

if TYPE_CHECKING:
    from favmcp.registry.runner import Runner

log = structlog.get_logger("favmcp.messaging")

NAME = "outbox:message"
REVIEW_NAME = "outbox:whatsapp_template"
# Examples Meta's review asks for each named parameter (the member's own are filled from the member).
EXAMPLES = {"name": "Alex Smith", "first_name": "Alex"}


@dataclass(frozen=True)
class Plan:
    message: Message
    config: ChannelConfig | None
    template: MessageTemplate | None
    refusal: str | None  # a rule that stops the message now
    unsubscribe_url: str | None


async def _plan(ctx: ToolContext, message_id: str) -> Plan | None:
    message = await ctx.db.get(Message, message_id)
    if message is None:
        return None
    config = await ctx.db.first(ctx.db.select(ChannelConfig, col(ChannelConfig.channel) == message.channel))
    template = await ctx.db.get(MessageTemplate, message.template_id) if message.template_id else None
    refusal = await _refusal(ctx, message, config)
    unsubscribe = None
    if message.channel is Channel.email and message.kind is SendKind.marketing:
        unsubscribe = channels.unsubscribe_url(ctx.settings, ctx.workspace_id, message.id)
    return Plan(message, config, template, refusal, unsubscribe)


async def _refusal(ctx: ToolContext, message: Message, config: ChannelConfig | None) -> str | None:
    """The rules that can change between queueing and delivery: the member erased or merged, an opt-out, a
    suppression, the channel removed."""
    if config is None:
        return rules.Rule.channel_not_configured
    if message.member_id is not None:
        member = await ctx.db.get(Member, message.member_id)
        if member is None or member.status is not MemberStatus.active:
            return rules.Rule.member_unreachable
        if await rules.consent_granted(ctx, member.id, message.channel) is False:
            return rules.Rule.opted_out
    if await rules.suppression_of(ctx, message.channel, message.address) is not None:
        return rules.Rule.suppressed
    return None


async def _send(runner: Runner, plan: Plan) -> str:
    """Hand the message to its provider; returns the provider's id for it."""
    message, config = plan.message, plan.config
    assert config is not None
    settings = runner.settings
    if message.channel is Channel.whatsapp:
        account = channels.whatsapp_account(settings, config)
        if plan.template is not None:
            return await whatsapp.send_template(
                account,
                message.address,
                name=plan.template.name,
                language=plan.template.language,
                parameters={k: str(v) for k, v in message.variables.items()},
                reference=message.id,
            )
        return await whatsapp.send_text(account, message.address, message.body, reference=message.id)
    if message.channel is Channel.sms:
        callback = None
        if settings.public_url:
            callback = f"{settings.public_url}{channels.hook_path(Channel.sms, config.id)}?m={message.id}"
        account_sms = channels.twilio_account(settings, config)
        return await sms.send_sms(account_sms, message.address, message.body, status_callback=callback)
    letter = mail.Mail(
        to=message.address,
        subject=message.subject or "",
        text=message.body,
        message_id=message.id,
        unsubscribe_url=plan.unsubscribe_url,
    )
    return await mail.send_mail(channels.smtp_account(settings, config), letter)


async def settle_sent(ctx: ToolContext, message_id: str, provider_id: str, config_id: str) -> None:
    moved = await advance(ctx, MessageStatus.sent, col(Message.id) == message_id, at=ctx.now)
    # A callback may have moved it further already (delivered before we settled): keep its provider id all the same.
    await ctx.db.update(
        Message,
        col(Message.id) == message_id,
        col(Message.provider_message_id).is_(None),
        values={"provider_message_id": provider_id[:120]},
    )
    await channels.mark_verified(ctx, config_id)
    if moved:
        ctx.record_change(message_id=message_id, status=MessageStatus.sent.value)


async def settle_failed(
    ctx: ToolContext,
    message: Message,
    error: str,
    *,
    bounce: bool = False,
    channel_failing: bool = False,
    config_id: str | None = None,
) -> None:
    moved = await advance(ctx, MessageStatus.failed, col(Message.id) == message.id, at=ctx.now, error=error[:500])
    if bounce:
        await suppress(ctx, message.channel, message.address, SuppressionReason.bounce)
    if channel_failing and config_id:
        await channels.mark_failing(ctx, config_id, error)
    if moved:
        ctx.record_change(message_id=message.id, status=MessageStatus.failed.value)


async def suppress(ctx: ToolContext, channel: Channel, address: str, reason: SuppressionReason) -> bool:
    """Nothing more goes to the address on the channel; returns whether it was new."""
    row = {"id": new_id("sup"), "channel": channel, "address": address, "reason": reason, "created_at": ctx.now}
    return await ctx.db.insert_or_ignore(Suppression, [row]) > 0


class MessageDelivery:
    """The outbox channel "message": one queued Message to its provider."""

    name = OUTBOX_CHANNEL

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def send(self, outbox: OutboxMessage, body: str) -> dict[str, Any] | None:
        message_id = str(outbox.payload.get("message_id") or "")
        workspace_id = outbox.workspace_id
        if not message_id or not workspace_id:
            raise Undeliverable("an outbox row without its message")

        async def plan_it(ctx: ToolContext) -> Plan | None:
            return await _plan(ctx, message_id)

        plan = await self.runner.read_system(workspace_id, NAME, plan_it)
        if plan is None:
            return {"skipped": "no such message"}
        if plan.message.status is not MessageStatus.queued:  # an earlier attempt settled it
            return {"skipped": plan.message.status.value}
        config_id = plan.config.id if plan.config else None
        if plan.refusal is not None:
            await self._settle_failed(workspace_id, plan.message, plan.refusal)
            raise Undeliverable(plan.refusal)
        try:
            provider_id = await _send(self.runner, plan)
        except Refused as exc:
            await self._settle_failed(
                workspace_id, plan.message, str(exc), bounce=exc.bounce, failing=exc.credentials, config_id=config_id
            )
            raise
        except Exception as exc:
            if outbox.attempts + 1 >= MAX_ATTEMPTS:  # the outbox gives up after this one
                error = f"{type(exc).__name__}: {exc}"
                await self._settle_failed(workspace_id, plan.message, error, failing=True, config_id=config_id)
            raise
        assert config_id is not None

        async def settle(ctx: ToolContext) -> None:
            await settle_sent(ctx, message_id, provider_id, config_id)

        await self.runner.run_system(workspace_id, NAME, settle)
        return {"provider_message_id": provider_id}

    async def _settle_failed(
        self,
        workspace_id: str,
        message: Message,
        error: str,
        *,
        bounce: bool = False,
        failing: bool = False,
        config_id: str | None = None,
    ) -> None:
        async def settle(ctx: ToolContext) -> None:
            await settle_failed(ctx, message, error, bounce=bounce, channel_failing=failing, config_id=config_id)

        await self.runner.run_system(workspace_id, NAME, settle)


class TemplateReview:
    """The outbox channel "whatsapp_template": submit a template to Meta's review; its status stays pending until
    Meta's template status webhook says otherwise."""

    name = REVIEW_CHANNEL

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def send(self, outbox: OutboxMessage, body: str) -> dict[str, Any] | None:
        template_id = str(outbox.payload.get("template_id") or "")
        version = outbox.payload.get("version")
        workspace_id = outbox.workspace_id
        if not template_id or not workspace_id:
            raise Undeliverable("an outbox row without its template")

        async def read(ctx: ToolContext) -> tuple[MessageTemplate | None, ChannelConfig | None]:
            template = await ctx.db.get(MessageTemplate, template_id)
            config = await ctx.db.first(ctx.db.select(ChannelConfig, col(ChannelConfig.channel) == Channel.whatsapp))
            return template, config

        template, config = await self.runner.read_system(workspace_id, REVIEW_NAME, read)
        if template is None or template.status is not TemplateStatus.pending:
            return {"skipped": "no pending template"}
        if version is not None and template.version != version:
            return {"skipped": "a newer version goes to review"}
        if config is None:
            await self._note(workspace_id, template_id, template.version, None, "No WhatsApp channel is configured.")
            raise Undeliverable("no WhatsApp channel is configured")
        try:
            submitted = await whatsapp.submit_template(
                channels.whatsapp_account(self.runner.settings, config),
                name=template.name,
                language=template.language,
                marketing=template.kind is SendKind.marketing,
                body=template.body,
                examples={v: EXAMPLES.get(v, v.replace("_", " ")) for v in template.variables},
            )
        except Refused as exc:
            await self._note(workspace_id, template_id, template.version, None, str(exc), rejected=True)
            raise
        await self._note(workspace_id, template_id, template.version, submitted.id, None, meta=submitted.status)
        return {"provider_template_id": submitted.id, "status": submitted.status}

    async def _note(
        self,
        workspace_id: str,
        template_id: str,
        version: int,
        provider_id: str | None,
        reason: str | None,
        *,
        rejected: bool = False,
        meta: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status_reason": reason[:500] if reason else None}
        if provider_id:
            values["provider_template_id"] = provider_id[:120]
        status = TEMPLATE_STATUS.get(meta or "") if meta else None
        if rejected:
            status = TemplateStatus.rejected
        if status is not None:
            values["status"] = status

        async def write(ctx: ToolContext) -> None:
            values["updated_at"] = ctx.now
            changed = await ctx.db.update(
                MessageTemplate,
                col(MessageTemplate.id) == template_id,
                col(MessageTemplate.version) == version,
                col(MessageTemplate.status) == TemplateStatus.pending,
                values=values,
            )
            if changed:
                ctx.record_change(template_id=template_id, provider_template_id=provider_id)

        await self.runner.run_system(workspace_id, REVIEW_NAME, write)


# Meta's template states (in answers and in message_template_status_update webhooks) as ours.
TEMPLATE_STATUS = {
    "APPROVED": TemplateStatus.approved,
    "REJECTED": TemplateStatus.rejected,
    "PAUSED": TemplateStatus.paused,
    "DISABLED": TemplateStatus.disabled,
    "PENDING": TemplateStatus.pending,
    "REINSTATED": TemplateStatus.approved,
    "PENDING_DELETION": TemplateStatus.disabled,
}


def _message_channel(runner: Runner) -> MessageDelivery:
    return MessageDelivery(runner)


def _review_channel(runner: Runner) -> TemplateReview:
    return TemplateReview(runner)


OUTBOX_CHANNELS: dict[str, ChannelOf] = {OUTBOX_CHANNEL: _message_channel, REVIEW_CHANNEL: _review_channel}
