"""Tiers: membership levels reached by points earned in 12 months or by lifetime spend, or set by hand."""

from __future__ import annotations

from favmcp.domains.tiers.events import EVENTS
from favmcp.registry.domain import Domain

DOMAIN_NAME = "tiers"

DOMAIN = Domain(name=DOMAIN_NAME, tools=[], events=EVENTS)
