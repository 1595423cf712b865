"""MCP over stdio: one process, one person; the key comes from FAVMCP_API_KEY or the saved config."""

from __future__ import annotations

import anyio
from mcp.server.stdio import stdio_server

from favmcp.app import App
from favmcp.transports.mcp import StdioCredential, build_server


async def serve_stdio(app: App, api_key: str | None) -> None:
    server = build_server(app.runner, stdio_credential=StdioCredential(api_key))
    async with anyio.create_task_group() as tg:
        if app.settings.run_dispatcher:
            tg.start_soon(app.run_background)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
        tg.cancel_scope.cancel()
