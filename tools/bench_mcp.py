"""Latency, cold start and tools/list size of favmcp, next to a bare MCP server measured the same way in the same run.

uv run python tools/bench_mcp.py [--calls N] [--cold-runs N] [--warmup N] [--mode auto|legacy]

- Per-call latency (median, p90) of `tools/call` (favmcp `whoami` as the demo owner, which reads the key from the
  database; bare `noop`) and `tools/list`, plus favmcp's anonymous `whoami` (no database) over stdio,
  over stdio and over stateless streamable HTTP (SSE responses), with the SDK client, sequential calls.
  favmcp and the bare server (tools/bare_mcp_server.py) are timed call by call in alternation, so drift and
  background load hit both alike. Target: a tool call within 1.5x of the bare server's.
- Cold start over stdio: spawn to the first `tools/list` answered (median). Target: within 2x of the bare server's.
- Size of favmcp's full `tools/list` answer (json.dumps of model_dump(by_alias, exclude_none, mode="json")).

favmcp runs as configured by default (SQLite, INFO logs) in a throwaway FAVMCP_HOME with a demo workspace,
FAVMCP_NO_DISPATCHER=1.
Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
BARE = ROOT / "tools" / "bare_mcp_server.py"
CALL_TARGET = 1.5
COLD_TARGET = 2.0
Mode = Literal["auto", "legacy"]
Op = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Stats:
    median_ms: float
    p90_ms: float

    @classmethod
    def of(cls, samples_ms: list[float]) -> Stats:
        ordered = sorted(samples_ms)
        return cls(statistics.median(ordered), ordered[math.ceil(0.9 * len(ordered)) - 1])  # p90: nearest rank

    def as_json(self) -> dict[str, float]:
        return {"median_ms": round(self.median_ms, 2), "p90_ms": round(self.p90_ms, 2)}


@dataclass(frozen=True)
class Pair:
    """One measurement of favmcp next to the bare server."""

    label: str
    favmcp: Stats
    bare: Stats
    target: float | None = None

    @property
    def ratio(self) -> float:
        return self.favmcp.median_ms / self.bare.median_ms

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "favmcp": self.favmcp.as_json(),
            "bare": self.bare.as_json(),
            "ratio": round(self.ratio, 2),
            "target": self.target,
            "met": self.met,
        }


@dataclass(frozen=True)
class Target:
    """How to reach one server: stdio parameters, the HTTP command, and the HTTP headers a client sends."""

    stdio: StdioServerParameters
    http_args: list[str]
    env: dict[str, str]
    headers: dict[str, str]
    tool: str


# -- processes -------------------------------------------------------------------------------------------------


def owner_key(env: dict[str, str]) -> str:
    """Create the demo workspace in FAVMCP_HOME and return its owner key (no email needed)."""
    out = subprocess.run(
        [sys.executable, "-m", "favmcp", "demo", "--no-serve"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = re.search(r"^Owner API key:\s+(fav_mcp_\S+)", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no owner key in the output of `favmcp demo --no-serve`:\n{out}")
    return found.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def spawned(args: list[str], env: dict[str, str], log: TextIO) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process group, stopped (SIGTERM, then SIGKILL) however the block ends."""
    proc = subprocess.Popen(
        [sys.executable, *args], env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=log, start_new_session=True
    )
    try:
        yield proc
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with status {proc.returncode} before answering /healthz")
        try:
            if httpx2.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{base_url}/healthz did not answer 200 within {timeout:.0f} s")


# -- measurements ----------------------------------------------------------------------------------------------


async def timed(op: Op) -> float:
    started = time.perf_counter()
    await op()
    return (time.perf_counter() - started) * 1000


async def alternate(a: Op, b: Op, calls: int, warmup: int) -> tuple[Stats, Stats]:
    """Warm both up, then time `calls` sequential calls of each, alternating a and b call by call."""
    for _ in range(warmup):
        await a()
        await b()
    xs: list[float] = []
    ys: list[float] = []
    for _ in range(calls):
        xs.append(await timed(a))
        ys.append(await timed(b))
    return Stats.of(xs), Stats.of(ys)


def call_op(client: Client, tool: str) -> Op:
    async def op() -> None:
        result = await client.call_tool(tool, {})
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result.content}")

    return op


def list_op(client: Client) -> Op:
    async def op() -> None:
        await client.list_tools(cache_mode="bypass")  # always a round trip, never the client's cache

    return op


async def check_whoami(client: Client) -> None:
    result = await client.call_tool("whoami", {})
    if result.is_error or not (result.structured_content or {}).get("authenticated"):
        raise RuntimeError(f"whoami did not authenticate the owner key: {result.structured_content}")


async def compare(
    transport: str, fav: Client, bare: Client, fav_tool: str, bare_tool: str, calls: int, warmup: int
) -> list[Pair]:
    await check_whoami(fav)
    call_f, call_b = await alternate(call_op(fav, fav_tool), call_op(bare, bare_tool), calls, warmup)
    list_f, list_b = await alternate(list_op(fav), list_op(bare), calls, warmup)
    return [
        Pair(f"{transport} tools/call", call_f, call_b, CALL_TARGET),
        Pair(f"{transport} tools/list", list_f, list_b),
    ]


async def bench_stdio(
    fav: Target, anonymous: Target, bare: Target, mode: Mode, log: TextIO, calls: int, warmup: int
) -> list[Pair]:
    async with AsyncExitStack() as stack:
        f = await stack.enter_async_context(Client(stdio_client(fav.stdio, errlog=log), mode=mode))
        b = await stack.enter_async_context(Client(stdio_client(bare.stdio, errlog=log), mode=mode))
        pairs = await compare("stdio", f, b, fav.tool, bare.tool, calls, warmup)
        # The same tool without a key touches no database: what the MCP adapter and the runner cost alone.
        a = await stack.enter_async_context(Client(stdio_client(anonymous.stdio, errlog=log), mode=mode))
        call_a, call_b = await alternate(call_op(a, anonymous.tool), call_op(b, bare.tool), calls, warmup)
        return [*pairs, Pair("stdio call, no db", call_a, call_b)]


async def bench_http(
    fav: Target, bare: Target, urls: tuple[str, str], mode: Mode, calls: int, warmup: int
) -> list[Pair]:
    timeout = httpx2.Timeout(30.0, read=300.0)  # the SDK's own defaults
    async with AsyncExitStack() as stack:
        clients: list[Client] = []
        for server, url in zip((fav, bare), urls, strict=True):
            http = await stack.enter_async_context(httpx2.AsyncClient(headers=server.headers, timeout=timeout))
            transport = streamable_http_client(f"{url}/mcp", http_client=http)
            clients.append(await stack.enter_async_context(Client(transport, mode=mode)))
        return await compare("http", clients[0], clients[1], fav.tool, bare.tool, calls, warmup)


async def cold_start_once(server: Target, mode: Mode, log: TextIO) -> float:
    started = time.perf_counter()
    async with Client(stdio_client(server.stdio, errlog=log), mode=mode) as client:
        await client.list_tools(cache_mode="bypass")
        return (time.perf_counter() - started) * 1000


async def bench_cold(fav: Target, bare: Target, mode: Mode, log: TextIO, runs: int) -> Pair:
    """Spawn to first tools/list answered; one unmeasured spawn each first, then alternating runs."""
    await cold_start_once(fav, mode, log)
    await cold_start_once(bare, mode, log)
    xs: list[float] = []
    ys: list[float] = []
    for _ in range(runs):
        xs.append(await cold_start_once(fav, mode, log))
        ys.append(await cold_start_once(bare, mode, log))
    return Pair("stdio cold start", Stats.of(xs), Stats.of(ys), COLD_TARGET)


async def tools_list_size(server: Target, mode: Mode, log: TextIO) -> dict[str, Any]:
    async with Client(stdio_client(server.stdio, errlog=log), mode=mode) as client:
        result = await client.list_tools(cache_mode="bypass")
    size = len(json.dumps(result.model_dump(by_alias=True, exclude_none=True, mode="json")).encode())
    count = len(result.tools)
    return {"tools": count, "bytes": size, "bytes_per_tool": round(size / count, 1) if count else 0.0}


# -- report ----------------------------------------------------------------------------------------------------


def print_table(pairs: list[Pair], size: dict[str, Any], calls: int, cold_runs: int, mode: Mode) -> None:
    print(f"favmcp vs bare MCP server: {calls} sequential calls per figure, {cold_runs} cold starts, mode={mode}")
    print("All figures in milliseconds. Ratio = favmcp median / bare median.\n")
    columns = ("favmcp med", "favmcp p90", "bare med", "bare p90")
    head = f"{'measure':<20} " + " ".join(f"{c:>11}" for c in columns) + f" {'ratio':>7}  target"
    print(head)
    print("-" * len(head))
    for p in pairs:
        verdict = "-" if p.target is None else f"<= {p.target:.1f}x {'ok' if p.met else 'MISSED'}"
        print(
            f"{p.label:<20} {p.favmcp.median_ms:>11.2f} {p.favmcp.p90_ms:>11.2f} "
            f"{p.bare.median_ms:>11.2f} {p.bare.p90_ms:>11.2f} {p.ratio:>6.2f}x  {verdict}"
        )
    print(
        f"\nfavmcp tools/list answer: {size['tools']} tools, {size['bytes']} bytes, "
        f"{size['bytes_per_tool']:.1f} bytes per tool"
    )


def run(calls: int, cold_runs: int, warmup: int, mode: Mode) -> None:
    with tempfile.TemporaryDirectory(prefix="favmcp-bench-") as tmp, ExitStack() as stack:
        log_path = Path(tmp) / "servers.log"
        log = stack.enter_context(log_path.open("a"))
        env = {"FAVMCP_HOME": str(Path(tmp) / "home"), "FAVMCP_NO_DISPATCHER": "1"}
        try:
            anonymous_env = dict(env)
            anonymous = Target(
                stdio=StdioServerParameters(
                    command=sys.executable, args=["-m", "favmcp", "serve"], env=anonymous_env, cwd=ROOT
                ),
                http_args=[],
                env=anonymous_env,
                headers={},
                tool="whoami",
            )
            key = owner_key(env)
            env["FAVMCP_API_KEY"] = key
            fav = Target(
                stdio=StdioServerParameters(command=sys.executable, args=["-m", "favmcp", "serve"], env=env, cwd=ROOT),
                http_args=["-m", "favmcp", "serve", "--http"],
                env=env,
                headers={"Authorization": f"Bearer {key}"},
                tool="whoami",
            )
            bare = Target(
                stdio=StdioServerParameters(command=sys.executable, args=[str(BARE)], cwd=ROOT),
                http_args=[str(BARE), "--http"],
                env={},
                headers={},
                tool="noop",
            )

            cold = anyio.run(bench_cold, fav, bare, mode, log, cold_runs)
            size = anyio.run(tools_list_size, fav, mode, log)
            pairs = anyio.run(bench_stdio, fav, anonymous, bare, mode, log, calls, warmup)

            urls: list[str] = []
            for server in (fav, bare):
                port = free_port()
                proc = stack.enter_context(spawned([*server.http_args, "--port", str(port)], server.env, log))
                urls.append(f"http://127.0.0.1:{port}")
                wait_healthy(urls[-1], proc)
            pairs += anyio.run(bench_http, fav, bare, (urls[0], urls[1]), mode, calls, warmup)
            pairs.append(cold)
        except BaseException:
            log.flush()
            tail = log_path.read_text(errors="replace").splitlines()[-40:]
            if tail:
                print("--- last lines the servers wrote to stderr ---", *tail, sep="\n", file=sys.stderr)
            raise

    print_table(pairs, size, calls, cold_runs, mode)
    summary = {
        "calls": calls,
        "cold_runs": cold_runs,
        "warmup": warmup,
        "mode": mode,
        **{p.label.replace(" ", "_").replace("/", "_"): p.as_json() for p in pairs},
        "tools_list_size": size,
    }
    print(json.dumps(summary))


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so SIGTERM, like Ctrl-C, unwinds the blocks that stop the servers


def main() -> None:
    signal.signal(signal.SIGTERM, interrupt)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300, help="Timed sequential calls per figure (default 300).")
    parser.add_argument("--cold-runs", type=int, default=5, help="Cold starts per server (default 5).")
    parser.add_argument("--warmup", type=int, default=20, help="Untimed calls before timing (default 20).")
    parser.add_argument("--mode", choices=["auto", "legacy"], default="auto", help="Client protocol era.")
    args = parser.parse_args()
    if args.calls < 1 or args.cold_runs < 1 or args.warmup < 0:
        parser.error("--calls and --cold-runs must be at least 1, --warmup at least 0")
    run(args.calls, args.cold_runs, args.warmup, cast(Mode, args.mode))


if __name__ == "__main__":
    main()
