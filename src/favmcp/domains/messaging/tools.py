"""Messaging: channels, templates, messages and conversations. The tools live in channel_tools (setting up a
channel) and message_tools (templates and messages); delivery, callbacks and reminders beside them."""

from __future__ import annotations

from favmcp.db.maintenance import SealedColumn
from favmcp.domains.messaging import callbacks, channel_tools, channels, delivery, links, message_tools, reminders
from favmcp.domains.messaging.models import ChannelConfig
from favmcp.registry.domain import Domain

DOMAIN_NAME = "messaging"

DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[*channel_tools.TOOLS, *message_tools.TOOLS],
    member_links=links.MEMBER_LINKS,
    jobs=reminders.JOBS,
    http_routes=callbacks.ROUTES,
    outbox_channels=delivery.OUTBOX_CHANNELS,
    subscribers={**reminders.SUBSCRIBERS, **links.SUBSCRIBERS},
    sealed_columns=[SealedColumn("messaging_channel_secrets", ChannelConfig, "secrets", channels.SEAL_PURPOSE)],
)
