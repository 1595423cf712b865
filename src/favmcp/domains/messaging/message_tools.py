"""Templates, send_message, list_messages and get_conversation."""

from __future__ import annotations

from favmcp.registry.spec import ToolSpec

TOOLS: list[ToolSpec] = []
