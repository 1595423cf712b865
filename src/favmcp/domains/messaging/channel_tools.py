"""configure_channel and get_channel_status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, func
from standardwebhooks.webhooks import Webhook

from favmcp.core.contact import Channel, normalise_email
from favmcp.core.errors import FieldError, validation_failed
from favmcp.core.ids import new_id
from favmcp.domains.messaging import channels
from favmcp.domains.messaging.channel_schemas import (
    CREDENTIALS,
    FIELDS,
    REQUIRED,
    SECRETS,
    ChannelPublic,
    ChannelStatus,
    ChannelStatusList,
    ConfigureChannelInput,
    GetChannelStatusInput,
    LastFailure,
)
from favmcp.domains.messaging.models import (
    PROVIDER_OF,
    ChannelConfig,
    ChannelHealth,
    Direction,
    Message,
    MessageStatus,
    MessageTemplate,
)
from favmcp.domains.messaging.rules import DEFAULT_QUIET_HOURS
from favmcp.effects.approvals import SendKind
from favmcp.effects.channels.mail import is_private_host
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import ToolSpec, tool

DOMAIN_NAME = "messaging"
SENDER_FIELD = {Channel.whatsapp: "from_number", Channel.sms: "from_number", Channel.email: "from_address"}


@tool(
    domain=DOMAIN_NAME,
    title="Configure channel",
    hints="W I",
    scope="messaging:admin",
    route="PATCH /v1/channels/{channel}",
)
async def configure_channel(ctx: ToolContext, args: ConfigureChannelInput) -> ChannelPublic:
    """Set up or change a channel. whatsapp (Cloud API): phone_number_id, waba_id, access_token, app_secret,
    verify_token, from_number. sms (Twilio): account_sid, auth_token, from_number. email (SMTP): host, port,
    username, password, starttls, from_address, webhook_secret (your ESP's event signing secret). Secrets are
    write-only: left out, they stay. Paste callback_url into the provider's console."""
    given = args.model_dump(exclude_unset=True, exclude={"idempotency_key", "channel", "quiet_hours", "reminders"})
    given = {k: v for k, v in given.items() if v is not None}
    _check_fields(args.channel, given)
    await ctx.db.workspace(lock=True)  # one configuration at a time: the first one creates the row
    config = await ctx.db.first(ctx.db.select(ChannelConfig, col(ChannelConfig.channel) == args.channel))
    stored: dict[str, Any] = dict(config.settings) if config else {}
    secrets = channels.open_secrets(ctx.settings, config) if config else {}
    before = {**stored, **secrets, "sender": config.sender if config else None}
    for name, value in given.items():
        if name in SECRETS:
            secrets[name] = value
        elif name != SENDER_FIELD[args.channel]:
            stored[name] = value
    sender = _sender(args.channel, given.get(SENDER_FIELD[args.channel]) or (config.sender if config else None))
    _check_complete(args.channel, {**stored, **secrets, SENDER_FIELD[args.channel]: sender})
    if args.channel is Channel.email:
        _check_host(ctx, str(stored["host"]))
        if "webhook_secret" in given:
            _check_webhook_secret(given["webhook_secret"])
    if config is None:
        stored.setdefault("quiet_hours", list(DEFAULT_QUIET_HOURS))
    if "quiet_hours" in args.model_fields_set:
        stored["quiet_hours"] = [args.quiet_hours.start, args.quiet_hours.end] if args.quiet_hours else None
    if "reminders" in args.model_fields_set:
        if args.reminders is None:
            stored.pop("reminders", None)
        else:
            await _check_reminder_template(ctx, args.channel, args.reminders.template_id)
            stored["reminders"] = args.reminders.model_dump()
    after = {**stored, **secrets, "sender": sender}
    changed_credentials = config is None or any(before.get(k) != after.get(k) for k in CREDENTIALS)
    values: dict[str, Any] = {
        "sender": sender,
        "settings": stored,
        "secrets": channels.seal_secrets(ctx.settings, secrets),
        "updated_at": ctx.now,
    }
    if changed_credentials:
        values.update(health=ChannelHealth.unverified, verified_at=None, last_error=None)
    if config is None:
        config = ctx.db.add(
            ChannelConfig(
                id=new_id("chn"),
                workspace_id=ctx.workspace_id,
                channel=args.channel,
                provider=PROVIDER_OF[args.channel],
                created_at=ctx.now,
                **values,
            )
        )
    else:
        for name, value in values.items():
            setattr(config, name, value)
    await ctx.db.flush()
    ctx.record_change(channel_id=config.id, fields=sorted(given), credentials_changed=changed_credentials)
    return channels.public(ctx.settings, config)


def _check_fields(channel: Channel, given: dict[str, Any]) -> None:
    foreign = sorted(set(given) - set(FIELDS[channel]))
    if foreign:
        raise validation_failed(
            f"These settings are not {channel.value}'s: {', '.join(foreign)}.",
            [FieldError(field=name, message=f"not a {channel.value} setting") for name in foreign],
        )


def _check_complete(channel: Channel, merged: dict[str, Any]) -> None:
    missing = [name for name in REQUIRED[channel] if not merged.get(name)]
    if missing:
        raise validation_failed(
            f"A {channel.value} channel needs {', '.join(missing)}.",
            [FieldError(field=name, message="required") for name in missing],
        )


def _sender(channel: Channel, value: str | None) -> str:
    if value is None or channel is not Channel.email:
        return value or ""
    try:
        return normalise_email(value)
    except ValueError as exc:
        raise validation_failed(str(exc), [FieldError(field="from_address", message=str(exc))]) from None


def _check_host(ctx: ToolContext, host: str) -> None:
    if not ctx.settings.allow_private_targets and is_private_host(host):
        raise validation_failed(
            f"The SMTP host {host} is a loopback or private address.",
            [FieldError(field="host", message="must be a public mail server")],
        )


def _check_webhook_secret(secret: str) -> None:
    try:
        Webhook(secret)
    except Exception:  # the library's own errors: not base64, empty
        raise validation_failed(
            "The webhook_secret is not a Standard Webhooks secret.",
            [FieldError(field="webhook_secret", message="whsec_ followed by base64, as the provider shows it")],
        ) from None


async def _check_reminder_template(ctx: ToolContext, channel: Channel, template_id: str) -> None:
    template = await ctx.db.get(MessageTemplate, template_id)
    problem = None
    if template is None:
        problem = "no such template"
    elif template.channel is not channel:
        problem = f"a {template.channel.value} template, not {channel.value}"
    elif template.kind is not SendKind.transactional:
        problem = "reminders need a transactional template"
    if problem:
        raise validation_failed(
            f"The reminders template {template_id!r}: {problem}.",
            [FieldError(field="reminders.template_id", message=problem)],
        )


@tool(domain=DOMAIN_NAME, title="Get channel status", hints="R I", scope="messaging:read", route="GET /v1/channels")
async def get_channel_status(ctx: ToolContext, args: GetChannelStatusInput) -> ChannelStatusList:
    """Every channel, configured or not: sender, health, last error, outbound counts of the last 24 h by status
    and the last failure. Calls no provider."""
    configs = {c.channel: c for c in await ctx.db.all(ctx.db.select(ChannelConfig))}
    since = ctx.now - timedelta(hours=24)
    stmt = (
        ctx.db.select_columns(Message, col(Message.channel), col(Message.status), func.count())
        .where(col(Message.direction) == Direction.outbound, col(Message.created_at) >= since)
        .group_by(col(Message.channel), col(Message.status))
    )
    counts: dict[Channel, dict[str, int]] = {}
    for channel, status, n in await ctx.db.rows(stmt):
        counts.setdefault(Channel(channel), {})[MessageStatus(status).value] = int(n)
    found = []
    for channel in Channel:
        config = configs.get(channel)
        failed = await ctx.db.first(
            ctx.db.select(Message, col(Message.channel) == channel, col(Message.status) == MessageStatus.failed)
            .order_by(col(Message.updated_at).desc(), col(Message.id).desc())
            .limit(1)
        )
        last_failure = (
            LastFailure(message_id=failed.id, at=failed.failed_at or failed.updated_at, error=failed.error)
            if failed
            else None
        )
        status = ChannelStatus(channel=channel, configured=config is not None, last_24h=counts.get(channel, {}))
        status.last_failure = last_failure
        if config is not None:
            status.provider, status.sender, status.health = config.provider, config.sender, config.health
            status.verified_at, status.last_error = config.verified_at, config.last_error
        found.append(status)
    return ChannelStatusList(channels=found)


TOOLS: list[ToolSpec] = [configure_channel, get_channel_status]
