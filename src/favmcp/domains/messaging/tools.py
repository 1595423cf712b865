"""Messaging: channels, templates, messages and conversations. The tools live in channel_tools (setting up a
channel) and message_tools (templates and messages); delivery, callbacks and reminders beside them."""

from __future__ import annotations

from favmcp.domains.messaging import callbacks, channel_tools, delivery, links, message_tools, reminders
from favmcp.registry.domain import Domain

DOMAIN_NAME = "messaging"

DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[*channel_tools.TOOLS, *message_tools.TOOLS],
    member_links=links.MEMBER_LINKS,
    jobs=reminders.JOBS,
    http_routes=callbacks.ROUTES,
    outbox_channels=delivery.OUTBOX_CHANNELS,
)
