"""The bookings domain: availability, appointments and class seats, their lifecycle and policies."""

from __future__ import annotations

from favmcp.domains.bookings import availability, calendar, links, outcomes, settings
from favmcp.domains.bookings.events import EVENTS
from favmcp.registry.domain import Domain
from favmcp.registry.spec import ToolSpec

TOOLS: list[ToolSpec] = []

DOMAIN = Domain(
    "bookings",
    tools=[*availability.TOOLS, *TOOLS, *outcomes.TOOLS, *settings.TOOLS],
    member_links=links.MEMBER_LINKS,
    events=EVENTS,
    http_routes=calendar.ROUTES,
)
