"""Delivering messages: the outbox channels that hand a queued message (or a WhatsApp template for review) to its
provider and settle the message's status."""

from __future__ import annotations

from favmcp.registry.domain import ChannelOf

OUTBOX_CHANNELS: dict[str, ChannelOf] = {}
