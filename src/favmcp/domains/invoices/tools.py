"""invoices."""

from __future__ import annotations

from favmcp.registry.domain import Domain

DOMAIN_NAME = "invoices"

DOMAIN = Domain(name=DOMAIN_NAME, tools=[])
