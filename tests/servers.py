"""A real `favmcp serve --http` process for tests that speak to it from outside (curl-like probes, other clients)."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import httpx

from tests.support import SHARED_LISTING_CACHE

STARTUP_TIMEOUT = 30.0


@dataclass
class HttpServer:
    base: str
    log: Path

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"


def server_env(database_url: str, home: Path, *, shared_cache: bool = True) -> dict[str, str]:
    """Without FAVMCP_SMTP_URL emails stay in the outbox, where tests read them. shared_cache=False: the listing
    cache is home's own (tests of a start with and without one)."""
    env = {
        "FAVMCP_DATABASE_URL": database_url,
        "FAVMCP_HOME": str(home),
        # A key of its own keys this server's rate-limit buckets apart from every other test's on shared Postgres.
        "FAVMCP_SECRET_KEY": f"servers-{uuid.uuid4().hex}",
        "FAVMCP_LOG_LEVEL": "WARNING",
    }
    return (env | {"FAVMCP_CACHE_DIR": SHARED_LISTING_CACHE}) if shared_cache else env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start(env: dict[str, str], log: Path) -> tuple[anyio.abc.Process, str | None]:
    """The process and its base URL once GET /healthz answers 200, or no URL if it exited first (say, someone
    took the port between our probe and its bind). "{port}" in a value of `env` is the port it serves on (for
    FAVMCP_PUBLIC_URL)."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}
    command = [sys.executable, "-m", "favmcp", "serve", "--http", "--port", str(port)]
    own = {name: value.replace("{port}", str(port)) for name, value in env.items()}
    with log.open("wb") as out:
        process = await anyio.open_process(command, env={**clean, **own}, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            with anyio.fail_after(STARTUP_TIMEOUT):
                while process.returncode is None:
                    try:
                        if (await http.get(f"{base}/healthz")).status_code == 200:
                            return process, base
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.05)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _stop(process)
        raise
    return process, None


async def _stop(process: anyio.abc.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    with anyio.move_on_after(10):
        await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


@asynccontextmanager
async def http_server(env: dict[str, str], log: Path) -> AsyncIterator[HttpServer]:
    for _ in range(3):
        process, base = await _start(env, log)
        if base is not None:
            break
    else:
        raise AssertionError(f"the server exited:\n{await anyio.Path(log).read_text()}")
    try:
        yield HttpServer(base, log)
    finally:
        with anyio.CancelScope(shield=True):
            await _stop(process)
