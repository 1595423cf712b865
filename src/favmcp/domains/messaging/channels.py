"""A workspace's channel settings: sealing its secrets, the provider accounts delivery uses, the URLs a provider
calls back, the public view (never a secret), and the unsubscribe token of a marketing email."""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidTag
from sqlmodel import col

from favmcp.config import Settings
from favmcp.core.contact import Channel
from favmcp.core.sealing import seal, unseal
from favmcp.domains.messaging.channel_schemas import SECRETS, ChannelPublic
from favmcp.domains.messaging.models import ChannelConfig, ChannelHealth
from favmcp.effects.channels.mail import SmtpAccount
from favmcp.effects.channels.sms import TwilioAccount
from favmcp.effects.channels.whatsapp import WhatsAppAccount
from favmcp.registry.context import ToolContext

SEAL_PURPOSE = "messaging_channel"
UNSUBSCRIBE_PURPOSE = "messaging_unsubscribe"
HOOK_PATH = {Channel.whatsapp: "whatsapp", Channel.sms: "twilio", Channel.email: "email"}
DEFAULT_SMTP_PORT = 587


def seal_secrets(settings: Settings, secrets: dict[str, str]) -> str:
    return seal(settings.secret_key, SEAL_PURPOSE, secrets)


def open_secrets(settings: Settings, config: ChannelConfig) -> dict[str, str]:
    """The channel's secrets; none when no server secret opens them (rotated out without a reseal)."""
    try:
        value = unseal(settings.secret_keys, SEAL_PURPOSE, config.secrets) if config.secrets else {}
    except (InvalidTag, ValueError):
        return {}
    return dict(value) if isinstance(value, dict) else {}


def hook_path(channel: Channel, channel_id: str) -> str:
    return f"/hooks/{HOOK_PATH[channel]}/{channel_id}"


def callback_url(settings: Settings, config: ChannelConfig) -> str | None:
    """Where the provider posts its webhooks (None until the server has a public URL)."""
    return f"{settings.public_url}{hook_path(config.channel, config.id)}" if settings.public_url else None


def public(settings: Settings, config: ChannelConfig) -> ChannelPublic:
    return ChannelPublic(
        id=config.id,
        channel=config.channel,
        provider=config.provider,
        sender=config.sender,
        health=config.health,
        verified_at=config.verified_at,
        last_error=config.last_error,
        settings={k: v for k, v in config.settings.items() if k not in SECRETS},
        secrets_set=sorted(open_secrets(settings, config)),
        callback_url=callback_url(settings, config),
    )


def whatsapp_account(settings: Settings, config: ChannelConfig) -> WhatsAppAccount:
    return WhatsAppAccount(
        api_base=settings.whatsapp_api_base,
        phone_number_id=str(config.settings.get("phone_number_id", "")),
        waba_id=str(config.settings.get("waba_id", "")),
        access_token=open_secrets(settings, config).get("access_token", ""),
    )


def twilio_account(settings: Settings, config: ChannelConfig) -> TwilioAccount:
    return TwilioAccount(
        api_base=settings.twilio_api_base,
        account_sid=str(config.settings.get("account_sid", "")),
        auth_token=open_secrets(settings, config).get("auth_token", ""),
        from_number=config.sender,
    )


def smtp_account(settings: Settings, config: ChannelConfig) -> SmtpAccount:
    stored: dict[str, Any] = config.settings
    return SmtpAccount(
        host=str(stored.get("host", "")),
        port=int(stored.get("port") or DEFAULT_SMTP_PORT),
        from_address=config.sender,
        username=stored.get("username") or None,
        password=open_secrets(settings, config).get("password"),
        starttls=bool(stored.get("starttls", True)),
        allow_private=settings.allow_private_targets,
    )


def unsubscribe_token(settings: Settings, workspace_id: str, message_id: str) -> str:
    """The message sealed with the server secret: whoever holds the link may unsubscribe its address, nothing else."""
    return seal(settings.secret_key, UNSUBSCRIBE_PURPOSE, {"w": workspace_id, "m": message_id})


def open_unsubscribe_token(settings: Settings, token: str) -> tuple[str, str] | None:
    """(workspace id, message id), or None for a token no server secret made."""
    try:
        value = unseal(settings.secret_keys, UNSUBSCRIBE_PURPOSE, token)
    except (InvalidTag, ValueError, TypeError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("w"), str) or not isinstance(value.get("m"), str):
        return None
    return value["w"], value["m"]


def unsubscribe_url(settings: Settings, workspace_id: str, message_id: str) -> str | None:
    if not settings.public_url:
        return None
    return f"{settings.public_url}/unsubscribe/{unsubscribe_token(settings, workspace_id, message_id)}"


async def mark_verified(ctx: ToolContext, config_id: str) -> None:
    """The provider proved the settings (a handshake, a signed callback, an accepted message): healthy."""
    await ctx.db.update(
        ChannelConfig,
        col(ChannelConfig.id) == config_id,
        col(ChannelConfig.health) != ChannelHealth.verified,
        values={"health": ChannelHealth.verified, "verified_at": ctx.now, "last_error": None, "updated_at": ctx.now},
    )


async def mark_failing(ctx: ToolContext, config_id: str, error: str) -> None:
    await ctx.db.update(
        ChannelConfig,
        col(ChannelConfig.id) == config_id,
        values={"health": ChannelHealth.failing, "last_error": error[:500], "updated_at": ctx.now},
    )
