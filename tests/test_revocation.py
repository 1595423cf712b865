"""A credential change holds on the very next call of a session already in use, in a server process of its own.

The key is resolved on every call (auth/credentials.py), so nothing a process keeps between calls may hide a change
that another process committed: a revoked key, a lowered role and a deactivated member are each refused on the
next call of a warm session, over stdio and over HTTP (at /mcp, and at a profile's URL, where the HTTP layer checks
the credential first and the call takes the caller from that check), on SQLite and on Postgres. The changes are
made through the runner in this test's process, as another server or the CLI would make them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from favmcp.app import App
from favmcp.auth import credentials
from favmcp.auth.credentials import REQUEST_CALLER
from favmcp.core.errors import FavError
from tests.servers import http_server, server_env
from tests.support import Owner, call, confirmed, join


@dataclass
class Sessions:
    open: Callable[[str], AbstractAsyncContextManager[Client]]
    statuses: list[int] = field(default_factory=list)  # of the HTTP answers, in order


def error_of(result: CallToolResult) -> str | None:
    if not result.is_error:
        return None
    return str(json.loads(result.content[0].text)["code"])  # type: ignore[union-attr]


async def refusal(sessions: Sessions, client: Client, tool: str) -> str | None:
    """The code a call is refused with, or None. At a profile's URL the HTTP layer checks the credential before the
    call and answers a bad one with 401, which the SDK raises without its status: the test's own record says 401."""
    try:
        return error_of(await client.call_tool(tool, {}))
    except MCPError:
        assert sessions.statuses[-1] == 401, sessions.statuses
        return "unauthenticated"


@pytest.fixture(params=["stdio", "http", "http profile URL"])
async def sessions(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> AsyncIterator[Sessions]:
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

        yield Sessions(stdio)
        return
    async with http_server(env, tmp_path / "server.log") as server:
        url = server.url if request.param == "http" else f"{server.url}/p/owner"
        statuses: list[int] = []

        async def record(response: httpx2.Response) -> None:
            statuses.append(response.status_code)

        @asynccontextmanager
        async def http(key: str) -> AsyncIterator[Client]:
            headers = {"Authorization": f"Bearer {key}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30, event_hooks={"response": [record]}) as transport,
                Client(streamable_http_client(url, http_client=transport)) as client,
            ):
                yield client

        yield Sessions(http, statuses)


async def key_id_of(app: App, key: str) -> str:
    me = await call(app, key, "whoami")
    return str(me.data["key_id"])


async def warm(client: Client, tool: str = "whoami", args: dict[str, Any] | None = None) -> None:
    for _ in range(3):
        result = await client.call_tool(tool, args or {})
        assert error_of(result) is None, result
    assert result.structured_content is not None


async def test_revoked_key_is_refused_on_the_next_call(sessions: Sessions, app: App, owner: Owner) -> None:
    member = await join(app, owner, role="staff")
    async with sessions.open(member.key) as client:
        await warm(client)
        done = await confirmed(app, owner.key, "revoke_api_key", {"key_id": await key_id_of(app, member.key)})
        assert done.ok, done.data
        assert await refusal(sessions, client, "whoami") == "unauthenticated"
        assert await refusal(sessions, client, "list_team_members") == "unauthenticated"


async def test_lowered_role_is_refused_on_the_next_call(sessions: Sessions, app: App, owner: Owner) -> None:
    member = await join(app, owner, role="admin")
    async with sessions.open(member.key) as client:
        await warm(client, "list_api_keys")
        lowered = await call(app, owner.key, "update_team_member_role", {"user_id": member.user_id, "role": "staff"})
        assert lowered.ok, lowered.data
        assert await refusal(sessions, client, "list_api_keys") == "forbidden"
        me = (await client.call_tool("whoami", {})).structured_content
        assert me is not None and me["role"] == "staff"


async def test_deactivated_member_is_refused_on_the_next_call(sessions: Sessions, app: App, owner: Owner) -> None:
    member = await join(app, owner, role="manager")
    async with sessions.open(member.key) as client:
        await warm(client, "list_team_members")
        done = await confirmed(app, owner.key, "deactivate_team_member", {"user_id": member.user_id})
        assert done.ok, done.data
        assert await refusal(sessions, client, "list_team_members") == "unauthenticated"


async def test_a_request_takes_the_caller_from_its_own_check_once(app: App, owner: Owner) -> None:
    """The HTTP layer checks a credential at the start of a request and the request's call takes the caller from that
    check; a second call in the same request (one a person confirmed meanwhile) reads the credential again."""
    member = await join(app, owner, role="staff")
    checked = await credentials.resolve(app.db, member.key, app.runner.clock.now())
    remembered = REQUEST_CALLER.set((member.key, checked))
    try:
        done = await confirmed(app, owner.key, "revoke_api_key", {"key_id": checked.key_id})
        assert done.ok, done.data
        assert await credentials.resolve(app.db, owner.key, app.runner.clock.now()) != checked, "another secret reads"
        assert await credentials.resolve(app.db, member.key, app.runner.clock.now()) == checked
        with pytest.raises(FavError, match="revoked"):
            await credentials.resolve(app.db, member.key, app.runner.clock.now())
    finally:
        REQUEST_CALLER.reset(remembered)
