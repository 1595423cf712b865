"""The REST API under /v1, generated from the registry: each tool at its declared route, through the runner."""

from __future__ import annotations

from starlette.routing import Route

from favmcp.app import App


def routes(app: App) -> list[Route]:
    return []
