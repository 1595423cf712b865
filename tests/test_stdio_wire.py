"""The stdio wire: `favmcp serve` reads and writes it on the event loop when stdin and stdout are pipes (as MCP
clients start servers), and through the SDK's own transport otherwise (here: stdout a file). Either way a message
larger than a pipe's buffer crosses both ways, what a handler or a child process prints or reads misses the wire,
and a client that writes its requests and closes stdin at once still gets every answer."""

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


def _calls_then_eof(count: int) -> str:
    """A session written whole and then closed: the handshake, then `count` calls, as `favmcp serve < calls.jsonl`."""
    calls = [
        {"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
        for i in range(count)
    ]
    return "".join(json.dumps(message) + "\n" for message in [*REQUESTS[:3], *calls])


@pytest.mark.parametrize("stdin", ["pipe", "file"])
def test_requests_sent_before_stdin_closes_are_all_answered(database_url: str, tmp_path: Path, stdin: str) -> None:
    """The client writes its calls and closes stdin at once. The second start answers its tool list from the cache
    and loads the domains meanwhile, so at the end of input every call is still waiting for them: each is answered
    all the same, on the event loop's wire (stdin a pipe) and on the SDK's (stdin a file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")} | server_env(
        database_url, tmp_path, shared_cache=False
    )
    session = tmp_path / "session.jsonl"
    session.write_text(_calls_then_eof(5))
    for start in ("cold", "warm"):
        with session.open("rb") as calls:
            server = subprocess.Popen(
                [sys.executable, "-m", "favmcp", "serve"],
                stdin=subprocess.PIPE if stdin == "pipe" else calls,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=ROOT,
            )
            try:
                out, err = server.communicate(session.read_bytes() if stdin == "pipe" else None, timeout=90)
            finally:
                server.kill()
        answers = _answers(out.decode().splitlines())
        assert server.returncode == 0, (start, err[-2000:])
        assert sorted(answers) == [1, 2, *range(10, 15)], (start, out[-500:], err[-2000:])
        assert all(answers[i]["result"]["structuredContent"]["authenticated"] is False for i in range(10, 15)), start


HANGING = """
import anyio
import mcp.types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server
from favmcp.transports import stdio

stdio.DRAIN_SECONDS = 0.5


async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[types.Tool(name="hang", input_schema={"type": "object"})])


async def call_tool(ctx, params):
    await anyio.sleep_forever()


async def main():
    server = Server("hanging", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio.loop_pipes() as wire, stdio_server(*wire) as (read, write):
        await server.run(*stdio.answered_before_exit(read, write), server.create_initialization_options())


anyio.run(main)
"""


def test_a_call_that_never_ends_holds_the_exit_only_so_long(tmp_path: Path) -> None:
    """After the end of input the server waits DRAIN_SECONDS (here half a second) for a call, then cancels it."""
    script = tmp_path / "hanging_server.py"
    script.write_text(HANGING)
    hang = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "hang", "arguments": {}}}
    session = "".join(json.dumps(message) + "\n" for message in [*REQUESTS[:3], hang])
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)], input=session.encode(), capture_output=True, cwd=ROOT, timeout=30, check=True
    )
    assert time.monotonic() - started < 20
    answers = _answers(done.stdout.decode().splitlines())
    assert sorted(answers) == [1, 2, 9]
    assert answers[9]["error"]["message"] == "Connection closed"  # cancelled after the wait, and said so
    assert b"stdin_closed_with_requests_running" in done.stderr
