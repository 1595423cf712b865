"""payments."""

from __future__ import annotations

from favmcp.registry.domain import Domain

DOMAIN_NAME = "payments"

DOMAIN = Domain(name=DOMAIN_NAME, tools=[])
