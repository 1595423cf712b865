"""orders."""

from __future__ import annotations

from favmcp.registry.domain import Domain

DOMAIN_NAME = "orders"

DOMAIN = Domain(name=DOMAIN_NAME, tools=[])
