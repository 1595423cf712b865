"""What a user of favmcp feels, next to a bare MCP server measured the same way in the same run.

uv run python tools/bench_mcp.py [--database-url URL] [--runs N] [--calls N] [--load-calls N] [--cold-runs N]
                                 [--warmup N] [--mode auto|legacy]

The floor is tools/bare_mcp_server.py: the SDK's low-level server listing favmcp's own tools (the bench writes
favmcp's listing to a JSON file before starting it, so a `tools/list` costs both servers the same bytes) plus
`noop`, which answers every call with "ok". Each favmcp call is paired with a `noop` call carrying the same
arguments. Figures:

- Latency of sequential calls (median, p90, p99), over stdio and over stateless streamable HTTP (SSE responses),
  with the SDK client, favmcp and the bare server timed call by call in alternation so that drift and background
  load hit both alike: `whoami` as the demo owner (an authenticated call), `search_members` answering 20 rows,
  `create_member` (a new member each call), `tools/list` (a round trip each time, never the client's cache);
  over stdio also `whoami` without a key (no database: what the MCP adapter and the runner cost alone); and
  `whoami` and `search_members` against the bare server giving back favmcp's own recorded answers ("same answer"): both
  then send the same bytes and the client checks both against the same output schema, so the ratio is what
  favmcp's runner and database add. The bare server's "same answer" median over its no-op is the floor: the least
  ratio a server could reach with that answer while doing no work at all.
- Cold start over stdio: spawn to the first `tools/list` answered (one unmeasured spawn each, then alternating).
- HTTP load: 1, 10 and 50 concurrent clients on `whoami` and `create_member` (bare: `noop`), favmcp then the
  bare server: throughput, p50, p99 and errors (calls not answered with a result that is not an error). Each client
  has its own connection and replays raw the tools/call POST the SDK client sends (captured once, new id and
  arguments each call), so that the load generator, which shares the 2 cores with the server, stays light.
- Terminal commands, wall time from spawn to exit (median of --cold-runs, one unmeasured run first, alternating):
  `favmcp tools list` and `favmcp call whoami` as the demo owner (the installed `favmcp` script), beside
  `python -c pass`, the interpreter's own start. Their targets are absolute, so the bench also prints how long a
  Python loop of 10^7 additions takes here: a slower machine moves every figure.
- favmcp's listing: bytes per tool, whole and model-facing (name, title, description, inputSchema, annotations),
  split by part. Bytes are the compact JSON of each Tool as sent.

Targets (issue 7, "How it is verified") are printed beside the figures: on SQLite, over stdio, `whoami` <= 1.3x,
`search_members` <= 1.6x, `tools/list` <= 2x, cold start <= 1.6x; on Postgres `whoami` <= 1.5x; HTTP
`create_member` with 10 and 50 clients on SQLite p99 <= 5x its own p50, with no errors; `favmcp tools list` <= 0.5 s
and `favmcp call whoami` <= 0.8 s (issue 7, item 6). The listing budget
(issue 7, item 4): <= 1,500 bytes per tool whole, <= 800 model-facing.

favmcp runs as configured by default (INFO logs) in a throwaway FAVMCP_HOME with the demo workspace
(`favmcp demo`'s data) plus 25 members that `search_members` finds, FAVMCP_NO_DISPATCHER=1, and per-minute rate
limits raised to a million (the load runs make more writes a minute with one key than the default 300 allows; the
limiter still runs on every call, so its cost is measured). The database is
SQLite in that home, or with --database-url a fresh Postgres database created beside the given one (on the same
server) for the run and dropped afterwards. FAVMCP_* variables of the calling shell are not passed on.
--runs N repeats every measurement (set-up once) and ends with the spread (min-max) of each ratio; the note for
issue 7 wants --runs 3. Prints a table per run, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import anyio
import asyncpg
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment, stdio_client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy.engine import URL, make_url

ROOT = Path(__file__).resolve().parent.parent
BARE = ROOT / "tools" / "bare_mcp_server.py"
MEASURES = ("whoami", "search_members", "create_member")
LOAD_MEASURES = ("whoami", "create_member")
SAME_ANSWER = ("whoami", "search_members")
LOAD_CLIENTS = (1, 10, 50)
# Ratio targets by database, for the stdio rows and cold start (issue 7, "How it is verified").
TARGETS: dict[str, dict[str, float]] = {
    "sqlite": {
        "stdio whoami": 1.3,
        "stdio search_members": 1.6,
        "stdio tools/list": 2.0,
        "stdio cold start": 1.6,
    },
    "postgres": {"stdio whoami": 1.5},
}
COMMAND_TARGETS = {"favmcp tools list": 0.5, "favmcp call whoami": 0.8}  # wall seconds, on SQLite
TAIL_TARGET = 5.0  # p99 / p50 of HTTP create_member under load, on SQLite
TAIL_TARGETED = {("create_member", 10), ("create_member", 50)}
LISTING_BUDGET = {"whole": 1500, "model_facing": 800}  # bytes per tool on average (issue 7, item 4)
PARTS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations", "_meta")
MODEL_FACING = ("name", "title", "description", "inputSchema", "annotations")
SEARCHABLE = 25  # members seeded for search_members; it answers 20 of them
SEARCH = {"text": "searchable", "limit": 20}
TIMEOUT = httpx2.Timeout(30.0, read=300.0)  # the SDK's own defaults
# One TLS context for every HTTP client: the URLs are plain http, but httpx builds a context per client (~80 ms).
TLS = ssl.create_default_context()
Mode = Literal["auto", "legacy"]
Op = Callable[[], Awaitable[None]]
Args = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Stats:
    median_ms: float
    p90_ms: float
    p99_ms: float

    @classmethod
    def of(cls, samples_ms: list[float]) -> Stats:
        ordered = sorted(samples_ms)

        def rank(q: float) -> float:  # nearest rank
            return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

        return cls(statistics.median(ordered), rank(0.9), rank(0.99))

    def as_json(self) -> dict[str, float]:
        return {"median_ms": round(self.median_ms, 2), "p90_ms": round(self.p90_ms, 2), "p99_ms": round(self.p99_ms, 2)}


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
class Load:
    """Concurrent calls against one server: how many, how many failed, how long they took together."""

    calls: int
    errors: int
    seconds: float
    latency: Stats

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds

    @property
    def tail(self) -> float:
        return self.latency.p99_ms / self.latency.median_ms

    def as_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "calls_per_s": round(self.throughput, 1),
            "p50_ms": round(self.latency.median_ms, 2),
            "p99_ms": round(self.latency.p99_ms, 2),
            "p99_over_p50": round(self.tail, 2),
        }


@dataclass(frozen=True)
class LoadPair:
    measure: str
    clients: int
    favmcp: Load
    bare: Load
    target: float | None = None  # for favmcp's p99 / p50

    @property
    def label(self) -> str:
        return f"http {self.measure} x{self.clients}"

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.favmcp.tail <= self.target and self.favmcp.errors == 0

    def as_json(self) -> dict[str, Any]:
        return {"favmcp": self.favmcp.as_json(), "bare": self.bare.as_json(), "target": self.target, "met": self.met}


@dataclass(frozen=True)
class Command:
    """A terminal command's wall time, spawn to exit, over several runs."""

    label: str
    seconds: list[float]
    target: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.median <= self.target

    def as_json(self) -> dict[str, Any]:
        spread = {"median_s": round(self.median, 3), "min_s": round(min(self.seconds), 3)}
        return spread | {"max_s": round(max(self.seconds), 3), "target_s": self.target, "met": self.met}


@dataclass(frozen=True)
class Run:
    pairs: list[Pair]
    loads: list[LoadPair]
    commands: list[Command]

    def ratios(self) -> dict[str, tuple[float, float | None]]:
        """Each ratio of this run with its target: favmcp / bare medians, and p99 / p50 of favmcp under load."""
        ratios = {p.label: (p.ratio, p.target) for p in self.pairs}
        ratios |= {f"{lp.label} p99/p50": (lp.favmcp.tail, lp.target) for lp in self.loads}
        return ratios

    def floors(self) -> dict[str, float]:
        """For each measure also timed against favmcp's recorded answer: that answer from the bare server over the
        bare no-op. It is the lowest ratio any server could reach, sending those bytes for the client to check
        against the output schema while doing no work at all."""
        bare = {p.label: p.bare.median_ms for p in self.pairs}
        return {
            label: bare[f"{label}, same answer"] / noop
            for label, noop in bare.items()
            if f"{label}, same answer" in bare
        }

    def errors(self) -> int:
        return sum(lp.favmcp.errors + lp.bare.errors for lp in self.loads)

    def as_json(self) -> dict[str, Any]:
        return {
            **{label_key(p.label): p.as_json() for p in self.pairs},
            **{label_key(lp.label): lp.as_json() for lp in self.loads},
            **{label_key(c.label): c.as_json() for c in self.commands},
            "floors": {label_key(label): round(floor, 2) for label, floor in self.floors().items()},
        }


@dataclass(frozen=True)
class Server:
    """How to reach one server, and which tool and arguments each measure calls on it."""

    stdio: StdioServerParameters
    http_args: list[str]
    env: dict[str, str]
    headers: dict[str, str]
    calls: dict[str, tuple[str, Args]]


def label_key(label: str) -> str:
    return re.sub(r"\W+", "_", label).strip("_")  # "stdio tools/list" -> stdio_tools_list


def no_args() -> dict[str, Any]:
    return {}


def search_args() -> dict[str, Any]:
    return dict(SEARCH)


def new_member() -> dict[str, Any]:
    tag = uuid.uuid4().hex[:12]
    return {"name": f"New Member {tag}", "email": f"new.{tag}@bench.example"}


def python_loop_seconds() -> float:
    """How fast this machine runs Python right now: the same loop on a slower machine takes longer, and so does
    every figure here."""
    started = time.perf_counter()
    total = 0
    for n in range(10**7):
        total += n
    return time.perf_counter() - started


# -- set-up ----------------------------------------------------------------------------------------------------


def bench_env(tmp: str, database_url: str | None) -> dict[str, str]:
    """A benchmark server's environment: a home of its own, no dispatcher, limits out of the way, SQLite or the URL."""
    env = {"FAVMCP_HOME": str(Path(tmp) / "home"), "FAVMCP_NO_DISPATCHER": "1"}
    env |= {f"FAVMCP_RATE_LIMIT_{kind}": str(10**6) for kind in ("READS", "WRITES", "SENDS")}
    if database_url:
        env["FAVMCP_DATABASE_URL"] = database_url
    return env


def clean_environ() -> dict[str, str]:
    """This shell's environment without FAVMCP_*: the servers see only what the bench sets."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}


async def seed(env: dict[str, str]) -> str:
    """The demo workspace plus members that search_members finds; returns the demo owner's key."""
    from favmcp import logging as favlog
    from favmcp.app import App
    from favmcp.config import Settings
    from favmcp.demo import ensure_demo

    favlog.configure("WARNING")  # the set-up's own tool calls are not part of the figures
    app = await App.open(Settings.from_env({**clean_environ(), **env}), upgrade=True)
    try:
        key = (await ensure_demo(app)).api_key
        for n in range(SEARCHABLE):
            args = {"name": f"Searchable Member {n}", "email": f"searchable.{n}@bench.example", "tags": ["bench"]}
            result = await app.runner.call("create_member", args, credential=key)
            if not result.ok:
                raise RuntimeError(f"seeding create_member failed: {result.data}")
        return key
    finally:
        await app.close()


async def postgres_admin(server: URL, sql: str) -> None:
    conn = await asyncpg.connect(
        host=server.host,
        port=server.port or 5432,
        user=server.username,
        password=server.password,
        database=server.database,
        timeout=10,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_postgres_beside(url: str) -> Iterator[str]:
    """A new, empty database on the same server as `url`, dropped afterwards (as tests/support.py makes them)."""
    server = make_url(url)
    name = f"favmcp_bench_{uuid.uuid4().hex[:10]}"
    anyio.run(postgres_admin, server, f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        anyio.run(postgres_admin, server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def spawned(args: list[str], env: dict[str, str], log: TextIO) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process group, stopped (SIGTERM, then SIGKILL) however the block ends."""
    proc = subprocess.Popen(
        [sys.executable, *args], env={**clean_environ(), **env}, cwd=ROOT, stdout=log, stderr=log,
        start_new_session=True,
    )  # fmt: skip
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


# -- the listing -----------------------------------------------------------------------------------------------


async def listed_tools(server: Server, mode: Mode, log: TextIO) -> list[dict[str, Any]]:
    """The server's tools/list answer, each Tool as sent."""
    async with Client(stdio_client(server.stdio, errlog=log), mode=mode) as client:
        result = await client.list_tools(cache_mode="bypass")
    return [tool.model_dump(by_alias=True, exclude_none=True, mode="json") for tool in result.tools]


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def listing_bytes(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Bytes per tool on average: whole, model-facing, and each part as `"key":value` inside the object."""
    count = len(tools)
    whole = sum(compact(t) for t in tools)
    parts = {part: sum(compact({part: t[part]}) - 2 for t in tools if part in t) for part in PARTS}
    other = sum(compact({k: v}) - 2 for t in tools for k, v in t.items() if k not in PARTS)
    if other:
        parts["other keys"] = other
    parts["{ } and commas"] = whole - sum(parts.values())
    return {
        "tools": count,
        "bytes": whole,
        "bytes_per_tool": round(whole / count, 1),
        "model_facing_per_tool": round(
            sum(compact({k: t[k] for k in MODEL_FACING if k in t}) for t in tools) / count, 1
        ),
        "parts_per_tool": {part: round(size / count, 1) for part, size in parts.items()},
    }


# -- sequential calls ------------------------------------------------------------------------------------------


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


def call_op(client: Client, tool: str, args: Args) -> Op:
    async def op() -> None:
        result = await client.call_tool(tool, args())
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result.content}")

    return op


def list_op(client: Client) -> Op:
    async def op() -> None:
        await client.list_tools(cache_mode="bypass")  # always a round trip, never the client's cache

    return op


async def check_favmcp(client: Client) -> None:
    """The calls measure what they claim: the owner is authenticated, and the search answers 20 rows."""
    who = await client.call_tool("whoami", {})
    if who.is_error or not (who.structured_content or {}).get("authenticated"):
        raise RuntimeError(f"whoami did not authenticate the owner key: {who.structured_content}")
    found = await client.call_tool("search_members", search_args())
    rows = len((found.structured_content or {}).get("items", []))
    if found.is_error or rows != SEARCH["limit"]:
        raise RuntimeError(f"search_members answered {rows} rows, not {SEARCH['limit']}: {found.content}")


async def compare(
    transport: str, fav: Client, bare: Client, f: Server, b: Server, calls: int, warmup: int
) -> list[Pair]:
    await check_favmcp(fav)
    pairs = []
    for measure in MEASURES:
        stats = await alternate(call_op(fav, *f.calls[measure]), call_op(bare, *b.calls[measure]), calls, warmup)
        pairs.append(Pair(f"{transport} {measure}", *stats))
    # The same answers from the bare server (favmcp's, recorded): what favmcp adds beyond the bytes it sends and
    # the client's check of them against the output schema.
    for measure in SAME_ANSWER:
        same = call_op(bare, *f.calls[measure])
        stats = await alternate(call_op(fav, *f.calls[measure]), same, calls, warmup)
        pairs.append(Pair(f"{transport} {measure}, same answer", *stats))
    pairs.append(Pair(f"{transport} tools/list", *await alternate(list_op(fav), list_op(bare), calls, warmup)))
    return pairs


async def bench_stdio(
    fav: Server, anonymous: Server, bare: Server, mode: Mode, log: TextIO, calls: int, warmup: int
) -> list[Pair]:
    async with AsyncExitStack() as stack:
        f = await stack.enter_async_context(Client(stdio_client(fav.stdio, errlog=log), mode=mode))
        b = await stack.enter_async_context(Client(stdio_client(bare.stdio, errlog=log), mode=mode))
        pairs = await compare("stdio", f, b, fav, bare, calls, warmup)
        # The same tool without a key touches no database: what the MCP adapter and the runner cost alone.
        a = await stack.enter_async_context(Client(stdio_client(anonymous.stdio, errlog=log), mode=mode))
        call_a = call_op(a, *anonymous.calls["whoami"])
        stats = await alternate(call_a, call_op(b, *bare.calls["whoami"]), calls, warmup)
        return [*pairs, Pair("stdio whoami, no key", *stats)]


def http_client(server: Server, **options: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers=server.headers, timeout=TIMEOUT, verify=TLS, **options)


async def bench_http(
    fav: Server, bare: Server, urls: tuple[str, str], mode: Mode, calls: int, warmup: int
) -> list[Pair]:
    async with AsyncExitStack() as stack:
        clients: list[Client] = []
        for server, url in zip((fav, bare), urls, strict=True):
            http = await stack.enter_async_context(http_client(server))
            transport = streamable_http_client(f"{url}/mcp", http_client=http)
            clients.append(await stack.enter_async_context(Client(transport, mode=mode)))
        return await compare("http", clients[0], clients[1], fav, bare, calls, warmup)


def command_seconds(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def bench_commands(fav: Server, runs: int, database: str) -> list[Command]:
    """The terminal commands a newcomer types first, run as installed, with the demo owner's key."""
    favmcp = str(Path(sys.executable).with_name("favmcp"))
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "favmcp tools list": [favmcp, "tools", "list"],
        "favmcp call whoami": [favmcp, "call", "whoami"],
    }
    env = clean_environ() | fav.env
    seconds: dict[str, list[float]] = {label: [] for label in commands}
    for args in commands.values():
        command_seconds(args, env)  # unmeasured: the first run after set-up also fills the OS's file cache
    for _ in range(runs):
        for label, args in commands.items():
            seconds[label].append(command_seconds(args, env))
    targets = COMMAND_TARGETS if database == "sqlite" else {}
    return [Command(label, xs, targets.get(label)) for label, xs in seconds.items()]


async def cold_start_once(server: Server, mode: Mode, log: TextIO) -> float:
    started = time.perf_counter()
    async with Client(stdio_client(server.stdio, errlog=log), mode=mode) as client:
        await client.list_tools(cache_mode="bypass")
        return (time.perf_counter() - started) * 1000


async def bench_cold(fav: Server, bare: Server, mode: Mode, log: TextIO, runs: int) -> Pair:
    """Spawn to first tools/list answered; one unmeasured spawn each first, then alternating runs."""
    await cold_start_once(fav, mode, log)
    await cold_start_once(bare, mode, log)
    xs: list[float] = []
    ys: list[float] = []
    for _ in range(runs):
        xs.append(await cold_start_once(fav, mode, log))
        ys.append(await cold_start_once(bare, mode, log))
    return Pair("stdio cold start", Stats.of(xs), Stats.of(ys))


# -- HTTP load -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """A tools/call POST as the SDK client sent it, to replay with a new id and new arguments."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]

    def content(self, request_id: int, arguments: dict[str, Any]) -> bytes:
        params = {**self.body["params"], "arguments": arguments}
        return json.dumps({**self.body, "id": request_id, "params": params}).encode()


async def captured_post(server: Server, url: str, measure: str, mode: Mode) -> Post:
    sent: list[httpx2.Request] = []

    async def keep(request: httpx2.Request) -> None:
        sent.append(request)

    async with (
        http_client(server, event_hooks={"request": [keep]}) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as client,
    ):
        await call_op(client, *server.calls[measure])()
    for request in reversed(sent):
        body = json.loads(request.content)
        if body.get("method") == "tools/call":
            headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
            return Post(str(request.url), headers, body)
    raise RuntimeError(f"the SDK client sent no tools/call to {url}")


async def replay(http: httpx2.AsyncClient, post: Post, request_id: int, arguments: dict[str, Any]) -> bool:
    """One call; True when the server answered it with a result that is not an error."""
    try:
        response = await http.post(post.url, content=post.content(request_id, arguments), headers=post.headers)
    except httpx2.HTTPError:
        return False
    if response.status_code != 200:
        return False
    if response.headers.get("content-type", "").startswith("application/json"):
        messages = [response.json()]
    else:  # an SSE stream: one `data:` line per JSON-RPC message
        lines = response.text.splitlines()
        messages = [json.loads(line.removeprefix("data:")) for line in lines if line.startswith("data:")]
    answer: dict[str, Any] = next((m for m in messages if m.get("id") == request_id), {})
    return "result" in answer and not answer["result"].get("isError", False)


async def load(post: Post, args: Args, clients: int, per_client: int) -> Load:
    """`clients` clients at once, each on its own connection, each making `per_client` calls one after another."""
    ids = itertools.count(1)
    samples: list[float] = []
    errors = 0

    async def client(http: httpx2.AsyncClient) -> None:
        nonlocal errors
        for _ in range(per_client):
            started = time.perf_counter()
            ok = await replay(http, post, next(ids), args())
            samples.append((time.perf_counter() - started) * 1000)
            errors += not ok

    async with AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(httpx2.AsyncClient(timeout=TIMEOUT, verify=TLS)) for _ in range(clients)
        ]
        async with anyio.create_task_group() as tg:  # each opens its connection, untimed
            for http in https:
                tg.start_soon(replay, http, post, next(ids), args())
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for http in https:
                tg.start_soon(client, http)
        seconds = time.perf_counter() - started
    return Load(len(samples), errors, seconds, Stats.of(samples))


async def bench_load(
    fav: Server, bare: Server, urls: tuple[str, str], mode: Mode, load_calls: int, database: str
) -> list[LoadPair]:
    loads = []
    for measure in LOAD_MEASURES:
        posts = [await captured_post(s, url, measure, mode) for s, url in zip((fav, bare), urls, strict=True)]
        for clients in LOAD_CLIENTS:
            per_client = math.ceil(load_calls / clients)
            f = await load(posts[0], fav.calls[measure][1], clients, per_client)
            b = await load(posts[1], bare.calls[measure][1], clients, per_client)
            targeted = database == "sqlite" and (measure, clients) in TAIL_TARGETED
            loads.append(LoadPair(measure, clients, f, b, TAIL_TARGET if targeted else None))
    return loads


# -- report ----------------------------------------------------------------------------------------------------


def verdict(target: float | None, met: bool | None) -> str:
    return "-" if target is None else f"<= {target:g}x {'ok' if met else 'MISSED'}"


def print_run(number: int, runs: int, run: Run) -> None:
    print(f"\n== run {number} of {runs} ==")
    print("Sequential calls, milliseconds. Ratio = favmcp median / bare median.\n")
    columns = ("fav med", "fav p90", "fav p99", "bare med", "bare p90", "bare p99")
    head = f"{'measure':<36} " + " ".join(f"{c:>9}" for c in columns) + f" {'ratio':>7}  target"
    print(head)
    print("-" * len(head))
    for p in run.pairs:
        figures = (p.favmcp.median_ms, p.favmcp.p90_ms, p.favmcp.p99_ms, p.bare.median_ms, p.bare.p90_ms, p.bare.p99_ms)
        print(
            f"{p.label:<36} "
            + " ".join(f"{x:>9.2f}" for x in figures)
            + f" {p.ratio:>6.2f}x  {verdict(p.target, p.met)}"
        )
    print("\nFloor: the bare server sending favmcp's recorded answer, over its no-op (the least ratio a server doing")
    print("no work could reach, with the same bytes for the client to check against the same output schema).\n")
    for label, floor in run.floors().items():
        print(f"{label:<36} {floor:>6.2f}x")
    print("\nHTTP load: concurrent clients, each its own connection (raw JSON-RPC posts); p50/p99 in milliseconds.\n")
    load_columns = ("fav /s", "fav p50", "fav p99", "p99/p50", "fav err", "bare /s", "bare p50", "bare p99", "bare err")
    head = f"{'measure':<36} " + " ".join(f"{c:>9}" for c in load_columns) + "  target (favmcp p99/p50, no errors)"
    print(head)
    print("-" * len(head))
    for lp in run.loads:
        f, b = lp.favmcp, lp.bare
        print(
            f"{lp.label:<36} {f.throughput:>9.1f} {f.latency.median_ms:>9.2f} {f.latency.p99_ms:>9.2f} "
            f"{f.tail:>8.2f}x {f.errors:>9} {b.throughput:>9.1f} {b.latency.median_ms:>9.2f} "
            f"{b.latency.p99_ms:>9.2f} {b.errors:>9}  {verdict(lp.target, lp.met)}"
        )
    print("\nTerminal commands: wall seconds from spawn to exit.\n")
    head = f"{'command':<36} {'median':>9} {'min':>9} {'max':>9}  target"
    print(head)
    print("-" * len(head))
    for c in run.commands:
        met = "-" if c.target is None else f"<= {c.target:g} s {'ok' if c.met else 'MISSED'}"
        print(f"{c.label:<36} {c.median:>9.3f} {min(c.seconds):>9.3f} {max(c.seconds):>9.3f}  {met}")
    if run.errors():
        print(f"\nERRORS under load: {run.errors()} calls failed (see the servers' log lines above, if any)")


def print_listing(fav: dict[str, Any], bare: dict[str, Any]) -> None:
    print(
        f"\nfavmcp tools/list: {fav['tools']} tools, {fav['bytes']:,} bytes; per tool {fav['bytes_per_tool']:,.1f} "
        f"(budget {LISTING_BUDGET['whole']:,}), model-facing {fav['model_facing_per_tool']:,.1f} "
        f"(budget {LISTING_BUDGET['model_facing']:,})"
    )
    print(f"bare tools/list:   {bare['tools']} tools, {bare['bytes']:,} bytes (favmcp's tools and noop)\n")
    print(f"{'part':<16} {'bytes/tool':>10} {'share':>7}")
    for part, size in fav["parts_per_tool"].items():
        print(f"{part:<16} {size:>10.1f} {size / fav['bytes_per_tool']:>6.0%}")


def spread(runs: list[Run]) -> dict[str, dict[str, Any]]:
    """For each ratio, and each command's median seconds: its value in every run, min and max, and whether every
    run met its target."""
    out: dict[str, dict[str, Any]] = {}
    figures: dict[str, tuple[list[float], float | None]] = {}
    for label, (_, target) in runs[0].ratios().items():
        figures[label] = [run.ratios()[label][0] for run in runs], target
    for label in runs[0].floors():
        figures[f"{label}, floor"] = [run.floors()[label] for run in runs], None
    for n, command in enumerate(runs[0].commands):
        figures[f"{command.label} (s)"] = [run.commands[n].median for run in runs], command.target
    for label, (values, target) in figures.items():
        met = None if target is None else all(v <= target for v in values)
        out[label] = {
            "runs": [round(v, 2) for v in values],
            "min": round(min(values), 2),
            "max": round(max(values), 2),
            "target": target,
            "met_every_run": met,
        }
    return out


def print_spread(figures: dict[str, dict[str, Any]]) -> None:
    print("\n== spread over the runs: favmcp / bare medians, favmcp p99/p50 under load, commands' seconds ==\n")
    head = f"{'figure':<36} {'runs':<24} {'min-max':>13}  target"
    print(head)
    print("-" * len(head))
    for label, f in figures.items():
        unit = "s" if label.endswith("(s)") else "x"
        runs = " ".join(f"{v:.2f}" for v in f["runs"])
        span = f"{f['min']:.2f}-{f['max']:.2f}{unit}"
        target = "-" if f["target"] is None else f"<= {f['target']:g}{unit} {'ok' if f['met_every_run'] else 'MISSED'}"
        print(f"{label:<36} {runs:<24} {span:>13}  {target}")


# -- the run ---------------------------------------------------------------------------------------------------


STARTED = time.monotonic()


def progress(step: str) -> None:
    """What the bench is doing, on stderr: the table and the JSON line stay alone on stdout."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {step}", file=sys.stderr, flush=True)


def measure_once(
    fav: Server, anonymous: Server, bare: Server, options: argparse.Namespace, database: str, log: TextIO
) -> Run:
    mode = cast(Mode, options.mode)
    progress("stdio calls")
    pairs = anyio.run(bench_stdio, fav, anonymous, bare, mode, log, options.calls, options.warmup)
    with ExitStack() as stack:
        urls: list[str] = []
        for server in (fav, bare):
            port = free_port()
            proc = stack.enter_context(spawned([*server.http_args, "--port", str(port)], server.env, log))
            urls.append(f"http://127.0.0.1:{port}")
            wait_healthy(urls[-1], proc)
        progress("HTTP calls")
        pairs += anyio.run(bench_http, fav, bare, (urls[0], urls[1]), mode, options.calls, options.warmup)
        progress("HTTP load")
        loads = anyio.run(bench_load, fav, bare, (urls[0], urls[1]), mode, options.load_calls, database)
    progress("cold starts")
    pairs.append(anyio.run(bench_cold, fav, bare, mode, log, options.cold_runs))
    progress("terminal commands")
    commands = bench_commands(fav, options.cold_runs, database)
    targets = TARGETS[database]
    return Run([Pair(p.label, p.favmcp, p.bare, targets.get(p.label)) for p in pairs], loads, commands)


async def recorded_answers(server: Server, mode: Mode, log: TextIO) -> dict[str, Any]:
    """favmcp's answer to the search, for the bare server to give back as it is."""
    async with Client(stdio_client(server.stdio, errlog=log), mode=mode) as client:
        answers = {}
        for measure in SAME_ANSWER:
            tool, args = server.calls[measure]
            answers[tool] = await client.call_tool(tool, args())
    return {name: answer.model_dump(by_alias=True, mode="json", exclude_none=True) for name, answer in answers.items()}


def servers(env: dict[str, str], tools_file: Path, answers_file: Path, key: str) -> tuple[Server, Server, Server]:
    """favmcp as the demo owner, favmcp without a key, and the bare server listing favmcp's tools."""
    calls: dict[str, tuple[str, Args]] = {
        "whoami": ("whoami", no_args), "search_members": ("search_members", search_args),
        "create_member": ("create_member", new_member),
    }  # fmt: skip

    def favmcp(env: dict[str, str], headers: dict[str, str]) -> Server:
        # The SDK's stdio client passes on only a few variables (PATH, HOME...) besides these.
        stdio = StdioServerParameters(command=sys.executable, args=["-m", "favmcp", "serve"], env=env, cwd=ROOT)
        return Server(stdio, ["-m", "favmcp", "serve", "--http"], env, headers, calls)

    bare_args = [str(BARE), "--tools", str(tools_file), "--answers", str(answers_file)]
    bare = Server(
        StdioServerParameters(command=sys.executable, args=bare_args, env=get_default_environment(), cwd=ROOT),
        [*bare_args, "--http"],
        {},
        {},
        {measure: ("noop", args) for measure, (_, args) in calls.items()},
    )
    owner = favmcp({**env, "FAVMCP_API_KEY": key}, {"Authorization": f"Bearer {key}"})
    return owner, favmcp(env, {}), bare


def run(options: argparse.Namespace) -> None:
    database = "postgres" if options.database_url else "sqlite"
    mode = cast(Mode, options.mode)
    with tempfile.TemporaryDirectory(prefix="favmcp-bench-") as tmp, ExitStack() as stack:
        log_path = Path(tmp) / "servers.log"
        log = stack.enter_context(log_path.open("a"))
        url = stack.enter_context(fresh_postgres_beside(options.database_url)) if options.database_url else None
        tools_file = Path(tmp) / "favmcp-tools.json"
        answers_file = Path(tmp) / "favmcp-answers.json"
        try:
            env = bench_env(tmp, url)
            progress("seeding the demo workspace")
            key = anyio.run(seed, env)
            fav, anonymous, bare = servers(env, tools_file, answers_file, key)
            progress("listing the tools")
            tools = anyio.run(listed_tools, fav, mode, log)
            tools_file.write_text(json.dumps(tools))
            answers_file.write_text(json.dumps(anyio.run(recorded_answers, fav, mode, log)))
            listing = listing_bytes(tools)
            bare_listing = listing_bytes(anyio.run(listed_tools, bare, mode, log))
            where = make_url(url).render_as_string(hide_password=True) if url else "SQLite in FAVMCP_HOME"
            print(
                f"favmcp vs bare MCP server on {where}: {options.calls} sequential calls per figure, "
                f"{options.load_calls} calls per load figure, {options.cold_runs} cold starts, mode={mode}"
            )
            machine = python_loop_seconds()
            print(f"This machine: a Python loop of 10^7 additions takes {machine:.2f} s.")
            print_listing(listing, bare_listing)
            runs = []
            for number in range(1, options.runs + 1):
                runs.append(measure_once(fav, anonymous, bare, options, database, log))
                print_run(number, options.runs, runs[-1])
        except BaseException:
            log.flush()
            tail = log_path.read_text(errors="replace").splitlines()[-40:]
            if tail:
                print("--- last lines the servers wrote to stderr ---", *tail, sep="\n", file=sys.stderr)
            raise

    figures = spread(runs)
    if len(runs) > 1:
        print_spread(figures)
    summary = {
        "database": database,
        "calls": options.calls,
        "load_calls": options.load_calls,
        "cold_runs": options.cold_runs,
        "warmup": options.warmup,
        "mode": mode,
        "python_loop_s": round(machine, 3),
        "listing": listing,
        "bare_listing": {"tools": bare_listing["tools"], "bytes": bare_listing["bytes"]},
        "runs": [r.as_json() for r in runs],
        "spread": figures,
    }
    print(json.dumps(summary))


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so SIGTERM, like Ctrl-C, unwinds the blocks that stop the servers


def main() -> None:
    signal.signal(signal.SIGTERM, interrupt)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url",
        help="A Postgres server to run on, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres: a fresh "
        "database is created beside the one named and dropped afterwards (default: SQLite in a throwaway home).",
    )
    parser.add_argument("--runs", type=int, default=1, help="Repeat every measurement (default 1).")
    parser.add_argument("--calls", type=int, default=200, help="Timed sequential calls per figure (default 200).")
    parser.add_argument(
        "--load-calls", type=int, default=400, help="Calls per HTTP load figure, over all clients (default 400)."
    )
    parser.add_argument("--cold-runs", type=int, default=5, help="Cold starts per server (default 5).")
    parser.add_argument("--warmup", type=int, default=20, help="Untimed calls before timing (default 20).")
    parser.add_argument("--mode", choices=["auto", "legacy"], default="auto", help="Client protocol era.")
    args = parser.parse_args()
    if min(args.runs, args.calls, args.load_calls, args.cold_runs) < 1 or args.warmup < 0:
        parser.error("--runs, --calls, --load-calls and --cold-runs must be at least 1, --warmup at least 0")
    if args.database_url and not make_url(args.database_url).get_backend_name().startswith("postgres"):
        parser.error("--database-url takes a Postgres URL; SQLite is the default")
    run(args)


if __name__ == "__main__":
    main()
