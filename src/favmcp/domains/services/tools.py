"""The services domain's tools."""

from __future__ import annotations

from favmcp.domains.services import models  # noqa: F401
from favmcp.registry.domain import Domain

DOMAIN = Domain("services", tools=[])
