"""OAuth 2.1 with the MCP TypeScript SDK's own client (npm, pinned in tests/oauth_typescript): a real `favmcp serve
--http`, SQLite and Postgres. The script (oauth_flow.mjs) is `Client` + `StreamableHTTPClientTransport` with an
in-memory `OAuthClientProvider`; the SDK discovers the server from the 401, registers itself, exchanges the code and
refreshes on the 401 of an expired access token. This test plays the person at the browser and the passing of time,
and reads what the script prints; the script then presents its first refresh token again, by hand, and the whole
family ends: the current access token is refused, and so is the SDK's next refresh.

`npm ci` runs once per test session. Without Node.js and npm the test is skipped, unless FAVMCP_REQUIRE_NODE=1 (CI),
which makes that a failure.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from sqlalchemy import update
from sqlmodel import col

from favmcp.app import App
from favmcp.auth import keys
from favmcp.auth.oauth.models import OAuthToken, TokenKind
from tests import oauth_kit
from tests.npm_build import build_once, node_and_npm
from tests.oauth_kit import REDIRECT, Browser
from tests.servers import HttpServer
from tests.support import Owner, call

mailbox, server, browser = oauth_kit.mailbox, oauth_kit.server, oauth_kit.browser

PROJECT = Path(__file__).parent / "oauth_typescript"
STEP_TIMEOUT = 30.0  # per line the script owes; the whole flow takes a few seconds
MAX_LINE = 1 << 20


@pytest.fixture(scope="session")
def oauth_script() -> list[str]:
    node, npm = node_and_npm("to run the TypeScript SDK's OAuth client")
    build_once(PROJECT, npm)  # `npm ci` only: the script is plain JavaScript
    return [node, str(PROJECT / "oauth_flow.mjs")]


@dataclass
class Script:
    """The running script: its JSON lines one at a time, and lines written back to it."""

    process: anyio.abc.Process
    lines: BufferedByteReceiveStream
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def expect(self, step: str) -> dict[str, Any]:
        with anyio.fail_after(STEP_TIMEOUT):
            raw = await self.lines.receive_until(b"\n", MAX_LINE)
        line = json.loads(raw)
        self.seen.append(line)
        assert line["step"] == step, self.transcript()
        return dict(line)

    async def say(self, text: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(f"{text}\n".encode())

    def transcript(self) -> str:
        return "\n".join(json.dumps(line) for line in self.seen)


@asynccontextmanager
async def running(command: list[str], url: str) -> AsyncIterator[Script]:
    # Its stderr is left to pytest's capture, shown beside a failure.
    async with await anyio.open_process([*command, url, REDIRECT], cwd=PROJECT, stderr=None) as process:
        assert process.stdout is not None
        script = Script(process, BufferedByteReceiveStream(process.stdout))
        try:
            yield script
            with anyio.fail_after(STEP_TIMEOUT):
                assert await process.wait() == 0, script.transcript()
        finally:
            if process.returncode is None:
                process.kill()


async def expire_access_token(app: App, access_token: str) -> None:
    """An hour passing, for the one token: the server reads its expiry from the database on every call."""
    async with app.db.transaction() as session:
        await session.execute(
            update(OAuthToken)
            .where(col(OAuthToken.token_hash) == keys.key_hash(access_token), col(OAuthToken.kind) == TokenKind.access)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )


def sent(trace: list[dict[str, Any]]) -> list[str]:
    """The script's trace as "POST /token 200 refresh_token" lines."""
    return [" ".join(str(e[k]) for k in ("method", "path", "status", "grant_type") if k in e) for e in trace]


async def test_typescript_sdk_registers_signs_in_refreshes_and_a_reused_refresh_token_ends_the_family(
    oauth_script: list[str], server: HttpServer, browser: Browser, app: App, owner: Owner
) -> None:
    async with running(oauth_script, server.url) as script:
        url = (await script.expect("authorize"))["url"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert url.startswith(f"{server.base}/authorize?"), url
        assert query["code_challenge_method"] == "S256" and query["resource"] == server.url, query
        assert query["redirect_uri"] == REDIRECT and query["client_id"], query
        answer = await browser.consent(url, owner.email)
        assert (answer["iss"], answer["state"]) == (server.base, query["state"]), answer
        await script.say(answer["code"])

        registered = await script.expect("registered")
        assert registered["client_id"] == query["client_id"] and registered["has_secret"], registered
        signed_in = await script.expect("signed_in")
        trace = sent(signed_in["trace"])
        assert [line for line in trace if not line.startswith(("POST /mcp 20", "GET /mcp"))] == [
            "POST /mcp 401",
            "GET /.well-known/oauth-protected-resource/mcp 200",
            "GET /.well-known/oauth-authorization-server 200",
            "POST /register 201",
            "POST /token 200 authorization_code",
        ], script.transcript()
        me = signed_in["whoami"]["structured"]
        assert not signed_in["whoami"]["is_error"] and me["authenticated"], signed_in
        assert (me["workspace_id"], me["role"], me["profile"]) == (owner.workspace_id, "owner", "owner"), me
        assert me["key_id"].startswith("ogr_") and "members:admin" in me["scopes"], me
        members = signed_in["members"]
        assert not members["is_error"] and [m["email"] for m in members["structured"]["items"]] == [owner.email]
        first_access, first_refresh = signed_in["access_token"], signed_in["refresh_token"]
        assert first_access.startswith("fav_oat_") and first_refresh.startswith("fav_ort_"), signed_in

        await expire_access_token(app, first_access)
        await script.say("expired")
        refreshed = await script.expect("refreshed")
        trace = sent(refreshed["trace"])
        assert trace[:3] == ["POST /mcp 401", "POST /token 200 refresh_token", "POST /mcp 200"], trace
        assert refreshed["whoami"]["structured"]["key_id"] == me["key_id"], refreshed  # the same grant
        assert not refreshed["members"]["is_error"], refreshed["members"]
        assert refreshed["access_token"].startswith("fav_oat_"), refreshed
        assert refreshed["access_token"] != first_access, refreshed
        assert refreshed["refresh_token"].startswith("fav_ort_"), refreshed
        assert refreshed["refresh_token"] != first_refresh, refreshed

        reused = await script.expect("reused")
        assert reused["status"] == 400 and reused["body"]["error"] == "invalid_grant", reused
        refused = await script.expect("refused")
        assert refused["status"] == 401, refused
        assert 'error="invalid_token"' in refused["www_authenticate"], refused
        assert "revoked" in refused["www_authenticate"], refused

        # The SDK's own next call: the newest refresh token went with the family, so the SDK starts over.
        again = await script.expect("authorize")
        assert parse_qs(urlsplit(again["url"]).query)["client_id"] == [query["client_id"]], again
        after = await script.expect("after_reuse")
        assert after["error"] == "UnauthorizedError" and after["asked_again"] and after["tokens_dropped"], after
        assert sent(after["trace"]) == ["POST /mcp 401", "POST /token 400 refresh_token"], after
    audit = await call(app, owner.key, "list_audit_events", {})
    assert {"oauth:grant", "oauth:refresh_reused"} <= {e["tool"] for e in audit.data["items"]}, audit.data
