"""PLACEHOLDER"""

from __future__ import annotations

from favmcp.registry.spec import ToolSpec

TOOLS: list[ToolSpec] = []
