"""Campaigns: see models.py."""

from __future__ import annotations

from favmcp.domains.campaigns import models as _models  # noqa: F401
from favmcp.registry.domain import Domain

DOMAIN_NAME = "campaigns"

DOMAIN = Domain(name=DOMAIN_NAME, tools=[])
