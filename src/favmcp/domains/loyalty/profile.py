"""The loyalty domain's part of get_member_profile: points and tier."""

from __future__ import annotations

from typing import Any

from favmcp.registry.context import ToolContext


async def loyalty_profile(ctx: ToolContext, member_id: str) -> dict[str, Any]:
    return {}
