"""configure_channel and get_channel_status."""

from __future__ import annotations

from favmcp.registry.spec import ToolSpec

TOOLS: list[ToolSpec] = []
