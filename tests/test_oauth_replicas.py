"""Two `favmcp serve --http` replicas on one Postgres database serve one OAuth client alternately, behind a
round-robin load balancer on loopback: every request, whatever connection it came on, goes to the next replica.

The replicas share FAVMCP_SECRET_KEY and FAVMCP_PUBLIC_URL (the balancer's address) and nothing else: /mcp is
stateless, and sign-in, grants, tokens and their revocation live in the database. Postgres only: this is the
multi-replica deployment; SQLite is one process by design (one file, one writer), so there is nothing to share.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from pydantic import AnyUrl
from starlette.types import Receive, Scope, Send

from favmcp.app import App
from favmcp.db.engine import Database
from favmcp.db.migrate import upgrade
from tests import oauth_kit
from tests.oauth_kit import REDIRECT, TIMEOUT, Browser, Memory, RawClient, initialize, pkce
from tests.servers import STARTUP_TIMEOUT, HttpServer, http_server, server_env
from tests.support import FakeClock, Owner, fresh_postgres_beside, make_settings, signup

mailbox, browser = oauth_kit.mailbox, oauth_kit.browser

HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
OAUTH_PATHS = ("/.well-known/", "/register", "/authorize", "/oauth/", "/token", "/revoke")


class RoundRobin:
    """The load balancer, as an ASGI app: forwards each request as it came (its Host too) to the next replica and
    streams the answer back; `served` is (replica, method, path) per request. It speaks through a bare transport,
    so no cookie jar or redirect following of its own changes what passes."""

    def __init__(self, replicas: list[str]) -> None:
        self.replicas = replicas
        self.served: list[tuple[int, str, str]] = []
        self.transport = httpx.AsyncHTTPTransport()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        index = len(self.served) % len(self.replicas)
        self.served.append((index, scope["method"], scope["path"]))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        request = httpx.Request(scope["method"], self.replicas[index] + scope["path"] + query, headers=headers,
                                content=body)  # fmt: skip
        response = await self.transport.handle_async_request(request)
        try:
            kept = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": kept})
            async for chunk in response.stream:  # type: ignore[union-attr]  # a transport's response streams async
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    def counts(self, paths: tuple[str, ...]) -> list[int]:
        """Requests per replica whose path starts with one of `paths`."""
        return [sum(1 for i, _, path in self.served if i == r and path.startswith(paths)) for r in range(2)]

    def last(self, n: int) -> list[tuple[int, str, str]]:
        return self.served[-n:]


class Deployment:
    def __init__(self, balancer: RoundRobin, base: str, replicas: list[HttpServer]) -> None:
        self.balancer = balancer
        self.base = base
        self.replicas = replicas

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"


@pytest.fixture
async def shared_url(postgres_url: str | None) -> AsyncIterator[str]:
    """One fresh, migrated Postgres database for both replicas."""
    if postgres_url is None:
        if os.environ.get("FAVMCP_REQUIRE_POSTGRES") == "1":
            pytest.fail("Postgres is required (FAVMCP_REQUIRE_POSTGRES=1) but could not be reached")
        pytest.skip("Postgres not reachable")
    async with fresh_postgres_beside(postgres_url) as url:
        db = Database(url)
        await upgrade(db)
        await db.dispose()
        yield url


@pytest.fixture
async def owner(shared_url: str, tmp_path: Path) -> AsyncIterator[Owner]:
    app = await App.open(make_settings(tmp_path, shared_url), clock=FakeClock())
    try:
        yield await signup(app)
    finally:
        await app.close()


@pytest.fixture
async def deployment(shared_url: str, tmp_path: Path, mailbox: oauth_kit.SmtpServer) -> AsyncIterator[Deployment]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    secret = f"replicas-{uuid.uuid4().hex}"
    async with AsyncExitStack() as stack:
        started: dict[str, HttpServer] = {}

        async def start(name: str) -> None:
            (tmp_path / name).mkdir()
            env = {**server_env(shared_url, tmp_path / name), "FAVMCP_SECRET_KEY": secret, "FAVMCP_PUBLIC_URL": base,
                   "FAVMCP_SMTP_URL": mailbox.url}  # fmt: skip
            started[name] = await stack.enter_async_context(http_server(env, tmp_path / f"{name}.log"))

        async with anyio.create_task_group() as starting:  # side by side: each takes seconds to come up
            for name in ("a", "b"):
                starting.start_soon(start, name)
        replicas = [started["a"], started["b"]]
        balancer = RoundRobin([r.base for r in replicas])
        # On a thread with a loop of its own: a fixture's setup and teardown may run in different tasks, which an
        # anyio task group held across the yield does not allow.
        server = uvicorn.Server(uvicorn.Config(balancer, lifespan="off", log_level="warning"))

        async def balance() -> None:
            try:
                await server.serve([listener])
            finally:
                await balancer.transport.aclose()

        thread = threading.Thread(target=asyncio.run, args=(balance(),), daemon=True)
        thread.start()
        try:
            with anyio.fail_after(STARTUP_TIMEOUT):
                while not server.started:  # noqa: ASYNC110 - uvicorn only says so by this flag
                    await anyio.sleep(0.02)
            yield Deployment(balancer, base, replicas)
        finally:
            server.should_exit = True
            await anyio.to_thread.run_sync(thread.join)


async def test_two_replicas_serve_one_oauth_client_alternately_and_share_its_revocations(
    deployment: Deployment, browser: Browser, owner: Owner
) -> None:
    balancer = deployment.balancer
    storage = Memory()
    answers: list[AuthorizationCodeResult] = []

    async def redirect_handler(url: str) -> None:
        query = await browser.consent(url, owner.email)
        answers.append(AuthorizationCodeResult(code=query["code"], state=query["state"], iss=query["iss"]))

    async def callback_handler() -> AuthorizationCodeResult:
        return answers.pop()

    metadata = OAuthClientMetadata(
        client_name="Balanced agent", redirect_uris=[AnyUrl(REDIRECT)], token_endpoint_auth_method="client_secret_post"
    )
    oauth = OAuthClientProvider(deployment.url, metadata, storage, redirect_handler, callback_handler)
    async with (
        httpx2.AsyncClient(auth=oauth, timeout=TIMEOUT) as http,
        Client(streamable_http_client(deployment.url, http_client=http), read_timeout_seconds=TIMEOUT) as client,
    ):
        for _ in range(2):
            me = (await client.call_tool("whoami", {})).structured_content
            assert me is not None and me["authenticated"], me
            assert (me["workspace_id"], me["role"]) == (owner.workspace_id, "owner"), me
        team = await client.call_tool("list_team_members", {})
        assert not team.is_error and owner.email in str(team.structured_content), team

        first = storage.tokens
        assert first is not None and first.refresh_token
        oauth.context.token_expiry_time = time.time() - 1  # the client refreshes before its next request
        for _ in range(2):
            assert (await client.call_tool("whoami", {})).structured_content["authenticated"]
        rotated = storage.tokens
        assert rotated is not None and rotated.refresh_token not in (None, first.refresh_token)
        tokens_served = [i for i, method, path in balancer.served if (method, path) == ("POST", "/token")]
        assert len(tokens_served) == 2, balancer.served  # the code, then the refresh

    oauth_counts, mcp_counts = balancer.counts(OAUTH_PATHS), balancer.counts(("/mcp",))
    assert min(oauth_counts) > 0 and min(mcp_counts) > 0, (oauth_counts, mcp_counts, balancer.served)

    registered = storage.client
    assert registered is not None and registered.client_secret
    async with httpx.AsyncClient(timeout=TIMEOUT) as raw:
        # Both replicas have just accepted the token; one revokes it, and the very next request, which the
        # balancer sends to the other, is refused.
        for _ in range(2):
            assert (await initialize(raw, deployment.url, rotated.access_token)).status_code == 200
        revoke = {"client_id": registered.client_id, "client_secret": registered.client_secret,
                  "token": rotated.access_token}  # fmt: skip
        assert (await raw.post(f"{deployment.base}/revoke", data=revoke)).status_code == 200
        refused = await initialize(raw, deployment.url, rotated.access_token)
        (revoked_on, _, _), (refused_on, _, path) = balancer.last(2)
        assert revoked_on != refused_on and path == "/mcp", balancer.last(2)
        assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]

    # A refresh token reused on one replica ends the family on the other.
    async with httpx.AsyncClient(timeout=TIMEOUT) as plain:
        hand = RawClient(deployment.base, plain)
        await hand.register()
        verifier, challenge = pkce()
        answer = await browser.consent(hand.authorize_url(challenge), owner.email)
        assert answer["iss"] == deployment.base, "both replicas name the balancer as the issuer"
        granted = (await hand.exchange(answer["code"], verifier)).json()

        renewed = await hand.refresh(granted["refresh_token"])
        assert renewed.status_code == 200, renewed.text
        reused = await hand.refresh(granted["refresh_token"])
        (rotated_on, _, _), (reused_on, _, _) = balancer.last(2)
        assert rotated_on != reused_on, balancer.last(2)
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant", reused.text

        # The family is over on both replicas: the newest access token and the newest refresh token alike.
        newest = renewed.json()
        for _ in range(2):
            ended = await initialize(plain, deployment.url, newest["access_token"])
            assert ended.status_code == 401, ended.text
        assert {i for i, _, _ in balancer.last(2)} == {0, 1}
        for _ in range(2):
            assert (await hand.refresh(newest["refresh_token"])).status_code == 400
