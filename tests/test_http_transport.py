"""The HTTP surface of a real `favmcp serve --http` beyond what the SDK clients exercise (tests/test_e2e_mcp.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import anyio.abc
import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from tests.servers import free_port, http_server, server_env

# A GET used to open an SSE stream that stayed open forever; a prompt answer is the point.
PROMPT = 5.0
SSE = {"Accept": "text/event-stream"}
MODERN = {"MCP-Protocol-Version": "2026-07-28"}


async def test_only_post_is_served_at_the_mcp_endpoint(tmp_path: Path) -> None:
    # The method check runs before any storage; SQLite alone is enough. Probed at /mcp/public, which needs no key
    # (/mcp answers any request without a credential with 401 before this check: tests/test_oauth.py).
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'favmcp.db'}", tmp_path)
    async with (
        http_server(env, tmp_path / "server.log") as server,
        httpx.AsyncClient(base_url=server.base, timeout=PROMPT) as http,
    ):
        probes = [("GET", SSE), ("GET", {**SSE, **MODERN}), ("DELETE", {}), ("DELETE", MODERN), ("PUT", {})]
        for method, headers in probes:
            with anyio.fail_after(PROMPT):
                answer = await http.request(method, "/mcp/public", headers=headers)
            assert answer.status_code == 405, (method, headers, answer.text)
            assert answer.headers["allow"] == "POST", (method, headers)
            assert answer.json()["error"]["message"].startswith("Method Not Allowed"), answer.text

        # Many idle GETs at once: each is answered and closed, none held open.
        async def probe() -> None:
            assert (await http.get("/mcp/public", headers=SSE)).status_code == 405

        with anyio.fail_after(PROMPT):
            async with anyio.create_task_group() as tg:
                for _ in range(50):
                    tg.start_soon(probe)

        # The control: POST is still served, in the handshake era and in the 2026-07-28 era.
        for mode in ("legacy", "auto"):
            public = f"{server.url}/public"
            async with Client(streamable_http_client(public), mode=mode, read_timeout_seconds=PROMPT) as client:
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


async def test_every_line_the_server_logs_is_structured(tmp_path: Path) -> None:
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'favmcp.db'}", tmp_path)
    async with http_server(env, tmp_path / "server.log") as server:
        host, port = server.base.removeprefix("http://").split(":")
        async with await anyio.connect_tcp(host, int(port)) as garbage:  # uvicorn warns about it
            await garbage.send(b"NOT HTTP\r\n\r\n")
            with anyio.fail_after(PROMPT):
                assert (await garbage.receive()).startswith(b"HTTP/1.1 400")
    said = await anyio.Path(server.log).read_text()
    banner, *lines = said.splitlines()
    assert banner.startswith("favmcp: serving MCP at")
    logged = [json.loads(line) for line in lines]  # each one a JSON object, uvicorn's own too
    assert {"logger": "uvicorn.error", "level": "warning"}.items() <= next(
        entry for entry in logged if "Invalid HTTP request" in entry["event"]
    ).items()


async def test_several_workers_serve_postgres_and_sqlite_refuses_them(tmp_path: Path, database_url: str) -> None:
    env = {**server_env(database_url, tmp_path), "FAVMCP_LOG_LEVEL": "INFO"}
    command = [sys.executable, "-m", "favmcp", "serve", "--http", "--workers", "2", "--port", str(free_port())]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}
    if database_url.startswith("sqlite"):
        with anyio.fail_after(60):
            refused = await anyio.run_process(command, env={**clean, **env}, check=False)
            stdio = await anyio.run_process([*command[:4], "--workers", "2"], env={**clean, **env}, check=False)
        assert refused.returncode == 1 and refused.stderr.decode().startswith("favmcp: --workers 2 needs Postgres")
        assert "write queue" in refused.stderr.decode() and not (tmp_path / "favmcp.db").exists(), "refused first"
        assert stdio.returncode == 1 and "--workers is for --http" in stdio.stderr.decode()
        return

    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = await anyio.open_process(command, env={**clean, **env}, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{command[-1]}/mcp"
    try:
        await answered(url.removesuffix("/mcp") + "/healthz", process, log)
        assert "in 2 worker processes" in await anyio.Path(log).read_text()

        async def whoami() -> None:
            async with Client(streamable_http_client(f"{url}/public"), read_timeout_seconds=30) as client:
                result = await client.call_tool("whoami", {})
                assert not result.is_error and result.structured_content is not None, result

        # Each client opens a connection of its own; the kernel hands connections to whichever worker accepts.
        workers: set[int] = set()
        with anyio.fail_after(120):
            while len(workers) < 2:
                async with anyio.create_task_group() as tg:
                    for _ in range(8):
                        tg.start_soon(whoami)
                lines = (await anyio.Path(log).read_text()).splitlines()[1:]
                calls = [e for e in map(json.loads, lines) if e["event"] == "tool_call"]
                assert all(e["outcome"] == "ok" for e in calls), calls
                workers = {e["process"] for e in calls}
        for pid in workers:  # worker processes of this very server, not strays
            assert f"PPid:\t{process.pid}\n" in await anyio.Path(f"/proc/{pid}/status").read_text()
    finally:
        with anyio.CancelScope(shield=True):
            process.terminate()
            with anyio.fail_after(30):
                await process.wait()
    for pid in workers:
        assert not await anyio.Path(f"/proc/{pid}").exists(), "the workers stop with the server"


async def answered(health: str, process: anyio.abc.Process, log: Path) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        with anyio.fail_after(60):
            while process.returncode is None:
                try:
                    if (await http.get(health)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.1)
    raise AssertionError(f"the server exited:\n{await anyio.Path(log).read_text()}")
