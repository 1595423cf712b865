"""The classes domain's tools."""

from __future__ import annotations

from favmcp.domains.classes import models  # noqa: F401
from favmcp.registry.domain import Domain

DOMAIN = Domain("classes", tools=[])
