"""A credential change holds on the very next call of a session already in use, in a server process of its own.

The key is resolved on every call (auth/credentials.py), so nothing a process keeps between calls may hide a change
that another process committed: a revoked key, a lowered role and a deactivated member are each refused on the
next call of a warm session, over stdio and over HTTP, on SQLite and on Postgres. The changes are made through the
runner in this test's process, as another server or the CLI would make them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from favmcp.app import App
from tests.servers import http_server, server_env
from tests.support import Owner, call, confirmed, join

Session = Callable[[str], AbstractAsyncContextManager[Client]]


def error_of(result: CallToolResult) -> str | None:
    if not result.is_error:
        return None
    return str(json.loads(result.content[0].text)["code"])  # type: ignore[union-attr]


@pytest.fixture(params=["stdio", "http"])
async def session_for(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> AsyncIterator[Session]:
    """Open an SDK client session with a key, on a server process over the transport under test."""
    env = server_env(database_url, tmp_path)
    if request.param == "stdio":

        def stdio(key: str) -> AbstractAsyncContextManager[Client]:
            clean = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}
            params = StdioServerParameters(
                command=sys.executable,
                args=["-m", "favmcp", "serve"],
                env={**clean, **env, "FAVMCP_API_KEY": key},
            )
            return Client(params, read_timeout_seconds=30)

        yield stdio
        return
    async with http_server(env, tmp_path / "server.log") as server:

        @asynccontextmanager
        async def http(key: str) -> AsyncIterator[Client]:
            headers = {"Authorization": f"Bearer {key}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as transport,
                Client(streamable_http_client(server.url, http_client=transport)) as client,
            ):
                yield client

        yield http


async def key_id_of(app: App, key: str) -> str:
    me = await call(app, key, "whoami")
    return str(me.data["key_id"])


async def warm(client: Client, tool: str = "whoami", args: dict[str, Any] | None = None) -> None:
    for _ in range(3):
        result = await client.call_tool(tool, args or {})
        assert error_of(result) is None, result
    assert result.structured_content is not None


async def test_revoked_key_is_refused_on_the_next_call(session_for: Session, app: App, owner: Owner) -> None:
    member = await join(app, owner, role="staff")
    async with session_for(member.key) as client:
        await warm(client)
        done = await confirmed(app, owner.key, "revoke_api_key", {"key_id": await key_id_of(app, member.key)})
        assert done.ok, done.data
        assert error_of(await client.call_tool("whoami", {})) == "unauthenticated"
        assert error_of(await client.call_tool("list_team_members", {})) == "unauthenticated"


async def test_lowered_role_is_refused_on_the_next_call(session_for: Session, app: App, owner: Owner) -> None:
    member = await join(app, owner, role="admin")
    async with session_for(member.key) as client:
        await warm(client, "list_api_keys")
        lowered = await call(app, owner.key, "update_team_member_role", {"user_id": member.user_id, "role": "staff"})
        assert lowered.ok, lowered.data
        assert error_of(await client.call_tool("list_api_keys", {})) == "forbidden"
        me = (await client.call_tool("whoami", {})).structured_content
        assert me is not None and me["role"] == "staff"


async def test_deactivated_member_is_refused_on_the_next_call(session_for: Session, app: App, owner: Owner) -> None:
    member = await join(app, owner, role="manager")
    async with session_for(member.key) as client:
        await warm(client, "list_team_members")
        done = await confirmed(app, owner.key, "deactivate_team_member", {"user_id": member.user_id})
        assert done.ok, done.data
        assert error_of(await client.call_tool("list_team_members", {})) == "unauthenticated"
