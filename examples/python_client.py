"""Call favmcp from Python with the MCP SDK over HTTP.

uvx --from . favmcp demo            # in one terminal: prints an owner key, serves http://127.0.0.1:8765/mcp
FAVMCP_API_KEY=fav_mcp_... uv run python examples/python_client.py

FAVMCP_URL names another server (default http://127.0.0.1:8765/mcp, where `favmcp demo` serves).
"""

from __future__ import annotations

import asyncio
import os

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    headers = {"Authorization": f"Bearer {os.environ['FAVMCP_API_KEY']}"}
    url = os.environ.get("FAVMCP_URL", "http://127.0.0.1:8765/mcp")
    transport = streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers))
    async with Client(transport) as client:
        me = await client.call_tool("whoami", {})
        print(me.structured_content)
        workspace = await client.call_tool("get_workspace", {})
        print(workspace.structured_content)


if __name__ == "__main__":
    asyncio.run(main())
