"""The HTTP surface of a real `favmcp serve --http` beyond what the SDK clients exercise (tests/test_e2e_mcp.py)."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from tests.servers import http_server, server_env

# A GET used to open an SSE stream that stayed open forever; a prompt answer is the point.
PROMPT = 5.0
SSE = {"Accept": "text/event-stream"}
MODERN = {"MCP-Protocol-Version": "2026-07-28"}


async def test_only_post_is_served_at_the_mcp_endpoint(tmp_path: Path) -> None:
    # The method check runs before any storage; SQLite alone is enough.
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'favmcp.db'}", tmp_path)
    async with (
        http_server(env, tmp_path / "server.log") as server,
        httpx.AsyncClient(base_url=server.base, timeout=PROMPT) as http,
    ):
        probes = [("GET", SSE), ("GET", {**SSE, **MODERN}), ("DELETE", {}), ("DELETE", MODERN), ("PUT", {})]
        for method, headers in probes:
            with anyio.fail_after(PROMPT):
                answer = await http.request(method, "/mcp", headers=headers)
            assert answer.status_code == 405, (method, headers, answer.text)
            assert answer.headers["allow"] == "POST", (method, headers)
            assert answer.json()["error"]["message"].startswith("Method Not Allowed"), answer.text

        # Many idle GETs at once: each is answered and closed, none held open.
        async def probe() -> None:
            assert (await http.get("/mcp", headers=SSE)).status_code == 405

        with anyio.fail_after(PROMPT):
            async with anyio.create_task_group() as tg:
                for _ in range(50):
                    tg.start_soon(probe)

        # The control: POST is still served, in the handshake era and in the 2026-07-28 era.
        for mode in ("legacy", "auto"):
            async with Client(streamable_http_client(server.url), mode=mode, read_timeout_seconds=PROMPT) as client:
                assert (client.protocol_version in MODERN_PROTOCOL_VERSIONS) == (mode == "auto")
                listed = await client.call_tool("whoami", {})
                assert not listed.is_error and listed.structured_content is not None, listed
                assert listed.structured_content["authenticated"] is False
