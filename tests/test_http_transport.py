"""The HTTP surface of a real `favmcp serve --http` beyond what the SDK clients exercise (tests/test_e2e_mcp.py)."""

from __future__ import annotations

import os
import sys
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


async def test_the_server_says_where_it_listens_and_refuses_a_busy_port(tmp_path: Path) -> None:
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'favmcp.db'}", tmp_path)
    async with http_server(env, tmp_path / "server.log") as server:
        said = (tmp_path / "server.log").read_text()
        assert f"serving MCP at {server.url}" in said, said
        port = server.base.rsplit(":", 1)[1]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}
        with anyio.fail_after(60):
            busy = await anyio.run_process(
                [sys.executable, "-m", "favmcp", "serve", "--http", "--port", port], env={**clean, **env}, check=False
            )
    assert busy.returncode == 1
    assert busy.stderr.decode().startswith(f"favmcp: cannot listen on 127.0.0.1:{port}"), busy.stderr
    assert "--port" in busy.stderr.decode()
