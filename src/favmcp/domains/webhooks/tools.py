"""Webhooks: see models.py."""

from __future__ import annotations

from favmcp.domains.webhooks import models as _models  # noqa: F401
from favmcp.registry.domain import Domain

DOMAIN_NAME = "webhooks"

DOMAIN = Domain(name=DOMAIN_NAME, tools=[])
