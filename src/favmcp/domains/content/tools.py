"""Content: posts in typed blocks for a headless blog, and the public read API front ends render."""

from __future__ import annotations

from favmcp.domains.content import models as _models  # noqa: F401  (the tables, until the tools import them)
from favmcp.registry.domain import Domain

DOMAIN_NAME = "content"

DOMAIN = Domain(name=DOMAIN_NAME, tools=[])
