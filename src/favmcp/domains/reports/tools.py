"""Reports: headline figures, revenue, no-shows, inactive members, campaigns and memberships, in the workspace's
timezone over half-open ranges, each reproducible from the list tools."""

from __future__ import annotations

from favmcp.domains.reports import money, people
from favmcp.registry.domain import Domain

DOMAIN_NAME = "reports"

DOMAIN = Domain(name=DOMAIN_NAME, tools=[*money.TOOLS, *people.TOOLS])
