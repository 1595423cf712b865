"""The rules every outbound message passes before any provider is called. Each refusal is a `conflict` whose
details name the rule (details.rule), so an agent can tell "opted out" from "outside the 24-hour window"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col

from favmcp.core.contact import Channel
from favmcp.core.errors import FavError, FieldError, conflict, validation_failed
from favmcp.domains.members.models import ConsentEvent, Member, MemberStatus
from favmcp.domains.messaging.models import (
    ChannelConfig,
    Direction,
    Message,
    MessageTemplate,
    Suppression,
    TemplateStatus,
)
from favmcp.effects.approvals import SendKind
from favmcp.registry.context import ToolContext

WHATSAPP_WINDOW = timedelta(hours=24)
DEFAULT_QUIET_HOURS = ("21:00", "09:00")  # local time; marketing waits outside them
# Variables every template may use without the caller passing them: filled from the member.
MEMBER_VARIABLES = frozenset({"name", "first_name"})
VARIABLE = re.compile(r"{{\s*([a-z][a-z0-9_]{0,39})\s*}}")


class Rule:
    """The names in details.rule."""

    channel_not_configured = "channel_not_configured"
    member_unreachable = "member_unreachable"  # erased or merged
    no_address = "no_address"
    no_consent = "no_consent"
    opted_out = "opted_out"
    suppressed = "suppressed"
    outside_whatsapp_window = "outside_whatsapp_window"
    template_not_approved = "template_not_approved"
    quiet_hours = "quiet_hours"
    no_unsubscribe_link = "no_unsubscribe_link"  # marketing email needs FAVMCP_PUBLIC_URL for its one-click link


def refuse(rule: str, message: str, *, hint: str | None = None, **facts: object) -> FavError:
    return conflict(message, hint=hint, details={"rule": rule, **facts})


def address_of(member: Member, channel: Channel) -> str | None:
    return member.email if channel is Channel.email else member.phone


def first_name(member: Member) -> str:
    return member.name.split()[0] if member.name.split() else member.name


def render(
    template: MessageTemplate, member: Member, given: dict[str, str], field: str = "variables"
) -> tuple[str | None, str, dict[str, str]]:
    """(subject, body, the values used): every variable the template declares needs a value, given or the
    member's own; a value for a name the template does not declare is refused."""
    unknown = sorted(set(given) - set(template.variables))
    if unknown:
        raise validation_failed(
            f"The template {template.name!r} declares no variable {', '.join(unknown)}.",
            [FieldError(field=f"{field}.{name}", message=f"declared: {template.variables}") for name in unknown],
        )
    values = {"name": member.name, "first_name": first_name(member), **given}
    missing = sorted(name for name in template.variables if not values.get(name))
    if missing:
        raise validation_failed(
            f"The template {template.name!r} needs a value for {', '.join(missing)}.",
            [FieldError(field=f"{field}.{name}", message="required by the template") for name in missing],
        )
    used = {name: values[name] for name in template.variables}

    def fill(text: str) -> str:
        return VARIABLE.sub(lambda m: used.get(m.group(1), m.group(0)), text)

    return (fill(template.subject) if template.subject else None), fill(template.body), used


async def consent_granted(ctx: ToolContext, member_id: str, channel: Channel) -> bool | None:
    """The member's latest consent on the channel: True, False (opted out) or None (never asked)."""
    stmt = ctx.db.select(ConsentEvent, col(ConsentEvent.member_id) == member_id, col(ConsentEvent.channel) == channel)
    latest = await ctx.db.first(stmt.order_by(col(ConsentEvent.recorded_at).desc(), col(ConsentEvent.id).desc()))
    return None if latest is None else latest.granted


async def suppression_of(ctx: ToolContext, channel: Channel, address: str) -> Suppression | None:
    return await ctx.db.first(
        ctx.db.select(Suppression, col(Suppression.channel) == channel, col(Suppression.address) == address)
    )


async def last_inbound_at(ctx: ToolContext, channel: Channel, address: str) -> datetime | None:
    stmt = ctx.db.select(
        Message,
        col(Message.channel) == channel,
        col(Message.address) == address,
        col(Message.direction) == Direction.inbound,
    )
    latest = await ctx.db.first(stmt.order_by(col(Message.created_at).desc()))
    return None if latest is None else latest.created_at


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight: 21:00-09:00

    def ends_after(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The first moment at or after `moment` outside the quiet hours."""
        local = moment.astimezone(tz)
        if not self.contains(local.timetz().replace(tzinfo=None)):
            return moment
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(moment.tzinfo)


def quiet_hours_of(config: ChannelConfig) -> QuietHours | None:
    """The channel's quiet hours for marketing; settings.quiet_hours null turns them off."""
    stored = config.settings.get("quiet_hours", list(DEFAULT_QUIET_HOURS))
    if not stored:
        return None
    start, end = stored
    return QuietHours(time.fromisoformat(start), time.fromisoformat(end))


async def channel_config(ctx: ToolContext, channel: Channel) -> ChannelConfig:
    config = await ctx.db.first(ctx.db.select(ChannelConfig, col(ChannelConfig.channel) == channel))
    if config is None:
        raise refuse(
            Rule.channel_not_configured,
            f"No {channel.value} channel is configured for this workspace.",
            hint="Set one up with configure_channel.",
        )
    return config


async def check_reachable(ctx: ToolContext, member: Member, channel: Channel, kind: SendKind) -> str:
    """The member's address on the channel, if every rule that depends on the member lets the message go: not
    erased or merged, an address, consent on the channel (an opt-out always wins) and no suppression."""
    if member.status is not MemberStatus.active:
        raise refuse(Rule.member_unreachable, f"The member is {member.status.value}; nothing is sent to them.")
    address = address_of(member, channel)
    if not address:
        field = "email" if channel is Channel.email else "phone"
        raise refuse(Rule.no_address, f"The member has no {field}.", hint=f"Add one with update_member ({field}).")
    consent = await consent_granted(ctx, member.id, channel)
    if consent is False:
        raise refuse(Rule.opted_out, f"The member opted out of {channel.value} messages.")
    if consent is None:
        raise refuse(
            Rule.no_consent,
            f"The member has not consented to {channel.value} messages.",
            hint="Record their consent with set_marketing_consent once they give it.",
        )
    suppressed = await suppression_of(ctx, channel, address)
    if suppressed is not None:
        raise refuse(
            Rule.suppressed,
            f"The member's {channel.value} address is suppressed ({suppressed.reason.value}).",
            reason=suppressed.reason.value,
        )
    return address


async def check_content(
    ctx: ToolContext,
    config: ChannelConfig,
    member: Member,
    address: str,
    kind: SendKind,
    template: MessageTemplate | None,
    *,
    at: datetime,
    defer_quiet: bool = False,
) -> datetime:
    """The rules on what is sent and when: an approved template, WhatsApp free text only within 24 hours of the
    member's last message to us, marketing outside quiet hours. Returns when the message may go: `at`, or the end
    of the quiet hours when `defer_quiet` (a campaign waits them out; a single send is refused)."""
    if template is not None and template.status is not TemplateStatus.approved:
        raise refuse(
            Rule.template_not_approved,
            f"The template {template.name!r} is {template.status.value}, not approved.",
            template_status=template.status.value,
        )
    if template is None and config.channel is Channel.whatsapp:
        last = await last_inbound_at(ctx, Channel.whatsapp, address)
        if last is None or at - last > WHATSAPP_WINDOW:
            raise refuse(
                Rule.outside_whatsapp_window,
                "WhatsApp free text may only be sent within 24 hours of the customer's last message to you.",
                hint="Send an approved WhatsApp template instead (template_id).",
                last_inbound_at=None if last is None else last.isoformat(),
            )
    if kind is SendKind.marketing and config.channel is Channel.email and not ctx.settings.public_url:
        raise refuse(
            Rule.no_unsubscribe_link,
            "Marketing email carries a one-click unsubscribe link, which needs this server's public address.",
            hint="Set FAVMCP_PUBLIC_URL on the server.",
        )
    if kind is SendKind.marketing:
        quiet = quiet_hours_of(config)
        if quiet is not None:
            tz = ZoneInfo((await ctx.db.workspace()).timezone)
            allowed = quiet.ends_after(at, tz)
            if allowed != at and not defer_quiet:
                raise refuse(
                    Rule.quiet_hours,
                    f"Marketing is not sent during quiet hours ({quiet.start:%H:%M}-{quiet.end:%H:%M} local).",
                    hint="Schedule it with a campaign, or send after the quiet hours.",
                    allowed_from=allowed.isoformat(),
                )
            return allowed
    return at
