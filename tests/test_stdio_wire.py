"""The stdio wire: `favmcp serve` reads and writes it on the event loop when stdin and stdout are pipes (as MCP
clients start servers), and through the SDK's own transport otherwise (here: stdout a file). Either way a message
larger than a pipe's buffer crosses both ways, and what a handler or a child process prints or reads misses the
wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.servers import server_env

ROOT = Path(__file__).resolve().parent.parent
BIG = 300_000  # characters of one argument: several times a pipe's 64 KiB buffer
REQUESTS = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {
            "name": "register_organisation_request",
            "arguments": {"email": "x" * BIG, "organisation_name": "Studio", "owner_name": "Owner"},
        },
    },
]


def _answers(lines: list[str]) -> dict[int, dict[str, Any]]:
    return {message["id"]: message for message in map(json.loads, lines) if "id" in message}


def _read_pipe(stdout: IO[bytes], count: int) -> list[str]:
    return [stdout.readline().decode() for _ in range(count)]


def _read_file(path: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = path.read_text()
        if text.count("\n") >= count:
            return text.splitlines()[:count]
        time.sleep(0.05)
    raise AssertionError(f"no {count} answers in {path}: {path.read_text()[:500]}")


@pytest.mark.parametrize("stdout", ["pipe", "file"])
def test_messages_larger_than_a_pipe_cross_both_ways(database_url: str, tmp_path: Path, stdout: str) -> None:
    """A 246 KB tool list goes out and a 300 KB call comes in (refused for its length, field by field), with the
    client's stdin held open until the answers are in, as a client does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")} | server_env(database_url, tmp_path)
    out_path = tmp_path / "answers.jsonl"
    with out_path.open("wb") as out_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "favmcp", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if stdout == "pipe" else out_file,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )
        assert server.stdin is not None
        try:
            server.stdin.write("".join(json.dumps(r) + "\n" for r in REQUESTS).encode())
            server.stdin.flush()
            lines = _read_pipe(server.stdout, 3) if server.stdout else _read_file(out_path, 3)
            server.stdin.close()
            assert server.wait(timeout=60) == 0
        finally:
            server.kill()
    answers = _answers(lines)
    assert answers[1]["result"]["serverInfo"]["name"] == "favmcp"
    assert len(answers[2]["result"]["tools"]) == 165
    refused = answers[3]["result"]
    assert refused["isError"] is True
    error = json.loads(refused["content"][0]["text"])
    assert error["code"] == "validation_failed" and error["field_errors"][0]["field"] == "email", error


STRAY = """
import os, subprocess, sys
import anyio
import mcp.types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server
from favmcp.transports.stdio import loop_pipes


TOOL = types.Tool(name="anything", input_schema={"type": "object"})


async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[TOOL])


async def call_tool(ctx, params):
    print("stray print")
    sys.stdout.flush()
    os.write(1, b"stray write\\n")
    subprocess.run(["echo", "stray child"], check=True)
    read = sys.stdin.read()
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"read {read!r}")])


async def main():
    server = Server("stray", on_list_tools=list_tools, on_call_tool=call_tool)
    async with loop_pipes() as wire, stdio_server(*wire) as (read, write):
        print("wire on the loop", wire[0] is not None, file=sys.stderr)
        await server.run(read, write, server.create_initialization_options())


anyio.run(main)
"""


async def test_what_a_handler_prints_or_reads_misses_the_wire(tmp_path: Path) -> None:
    script = tmp_path / "stray_server.py"
    script.write_text(STRAY)
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as errlog:
        params = StdioServerParameters(command=sys.executable, args=[str(script)], cwd=ROOT)
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=30) as client:
            for _ in range(2):
                result = await client.call_tool("anything", {})
                assert not result.is_error
                assert result.content[0].text == "read ''"  # type: ignore[union-attr]
    printed = errors.read_text()
    assert "wire on the loop True" in printed
    assert printed.count("stray print") == 2 and printed.count("stray write") == 2, printed
    assert printed.count("stray child") == 2, printed
