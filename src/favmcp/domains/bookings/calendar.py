"""(being written)"""

from __future__ import annotations

from favmcp.registry.domain import HttpEndpoint

ROUTES: dict[str, HttpEndpoint] = {}
