"""Only trusted proxies set the client address: `favmcp serve --http` as a real process, code requests over MCP from
127.0.0.1 with X-Forwarded-For headers, counted against the per-address limit (3 code requests an hour).

Each server gets a secret key of its own, which keys its rate-limit buckets apart from every other test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.servers import free_port
from tests.servers import http_server as running_http_server
from tests.support import SHARED_LISTING_CACHE, unique_email

CALL_TIMEOUT = 30.0


def server_env(database_url: str, home: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}
    return clean | {
        "FAVMCP_DATABASE_URL": database_url,
        "FAVMCP_HOME": str(home),
        "FAVMCP_SECRET_KEY": f"proxies-{uuid.uuid4().hex}",
        "FAVMCP_LOG_LEVEL": "WARNING",
        "FAVMCP_CACHE_DIR": SHARED_LISTING_CACHE,
        **extra,
    }


@asynccontextmanager
async def http_server(env: dict[str, str], log: Path) -> AsyncIterator[str]:
    """`favmcp serve --http` on a free port; yields its /mcp/public URL (signup needs no key) once GET /healthz
    answers."""
    async with running_http_server(env, log) as server:
        yield f"{server.url}/public"


async def request_code(url: str, forwarded_for: str) -> str | None:
    """register_organisation_request from 127.0.0.1 with this X-Forwarded-For; the error code, or None if accepted."""
    args = {"email": unique_email(), "organisation_name": "Studio", "owner_name": "Ann Owner"}
    async with (
        httpx2.AsyncClient(headers={"X-Forwarded-For": forwarded_for}, timeout=CALL_TIMEOUT) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=CALL_TIMEOUT) as client,
    ):
        result = await client.call_tool("register_organisation_request", args)
    if not result.is_error:
        return None
    # An error's body is the JSON of its one text block, repeated in _meta (no structuredContent).
    assert len(result.content) == 1 and result.content[0].type == "text", result
    error = json.loads(result.content[0].text)
    assert result.meta is not None and result.meta["favmcp/error"] == error
    return str(error["code"])


def addresses(count: int) -> list[str]:
    return [f"203.0.113.{n}" for n in range(1, count + 1)]


async def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(database_url: str, tmp_path: Path) -> None:
    async with http_server(server_env(database_url, tmp_path), tmp_path / "direct.log") as url:
        codes = [await request_code(url, forwarded) for forwarded in addresses(4)]
    assert codes == [None, None, None, "rate_limited"], "all four come from 127.0.0.1, whatever they claim"

    trusting = server_env(database_url, tmp_path, FAVMCP_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1")
    async with http_server(trusting, tmp_path / "proxied.log") as url:
        codes = [await request_code(url, forwarded) for forwarded in addresses(4)]
        assert codes == [None, None, None, None], "behind a trusted proxy every client counts on its own"
        # The proxy appends the address it saw; what the client put before it is not believed.
        spoofed = [await request_code(url, f"{forged}, 198.51.100.7") for forged in addresses(4)]
        assert spoofed == [None, None, None, "rate_limited"]


def test_a_trusted_proxy_that_is_not_an_address_is_one_clear_line(tmp_path: Path) -> None:
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'favmcp.db'}", tmp_path, FAVMCP_TRUSTED_PROXIES="proxy.local")
    done = subprocess.run(
        [sys.executable, "-m", "favmcp", "serve", "--http", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "favmcp: FAVMCP_TRUSTED_PROXIES: 'proxy.local' is not an IP address or network"
    ]
