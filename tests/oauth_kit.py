"""The OAuth side of the HTTP server, as tests speak to it: a person at a browser (forms, cookies, the code read from
a loopback SMTP server), an OAuth client spoken by hand, client ID metadata documents on loopback, and MCP sessions
with a bearer token."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from favmcp.app import App
from tests.loopback_http import LoopbackHttp
from tests.servers import HttpServer, http_server, server_env
from tests.smtp_server import SmtpServer, running_smtp_server

REDIRECT = "http://127.0.0.1:9/callback"  # never opened: the test reads the redirect's Location itself
TIMEOUT = 30.0
PUBLIC_TOOLS = {
    "whoami",
    "search_tools",
    "describe_tool",
    "register_organisation_request",
    "register_organisation_verify",
    "accept_team_invite_request",
    "accept_team_invite_verify",
}


class Browser:
    """A person at a browser: follows the authorization URL, signs in with the emailed code, picks a workspace when
    asked, and answers the consent page; returns where the server sent the browser back to."""

    def __init__(self, mailbox: SmtpServer, headers: dict[str, str] | None = None) -> None:
        self.mailbox = mailbox
        self.http = httpx.AsyncClient(timeout=TIMEOUT, headers=headers)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def sign_in(self, url: str, email: str, workspace: str | None = None) -> httpx.Response:
        """Up to the consent page (returned)."""
        page = await self.http.get(url, follow_redirects=True)
        assert page.status_code == 200, page.text
        seen = len(self.mailbox.to(email))
        page = await self.post(page, action="email", email=email)
        assert "6-digit code" in page.text, page.text
        page = await self.post(page, action="code", code=await self.code(email, seen))
        if workspace is not None:
            assert "Choose a workspace" in page.text, page.text
            user_id = re.search(rf'value="(usr_\w+)" required> {re.escape(workspace)} ', page.text)
            assert user_id, page.text
            page = await self.post(page, action="workspace", user_id=user_id.group(1))
        assert "Allow" in page.text, page.text
        return page

    async def sign_up(
        self, url: str, email: str, business: str, name: str = "Nia Owner", country: str = ""
    ) -> httpx.Response:
        """A new business from the sign-in page's "Create a new business": its details, then the emailed code; up to
        the consent page (returned)."""
        page = await self.http.get(url, follow_redirects=True)
        assert page.status_code == 200 and "Create a new business" in page.text, page.text
        page = await self.http.get(page.url.join("?new=business"))
        seen = len(self.mailbox.to(email))
        page = await self.post(page, action="signup", business=business, name=name, email=email, country=country)
        assert "6-digit code" in page.text, page.text
        page = await self.submit(page, code=await self.code(email, seen))
        assert "Allow" in page.text, page.text
        return page

    async def submit(self, page: httpx.Response, **fields: str) -> httpx.Response:
        """Post the page's form with its hidden fields (the form token among them) and `fields`."""
        hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
        assert hidden, page.text
        return await self.http.post(str(page.url), data={**{k: html.unescape(v) for k, v in hidden}, **fields})

    async def consent(self, url: str, email: str, workspace: str | None = None, allow: bool = True) -> dict[str, str]:
        page = await self.sign_in(url, email, workspace)
        back = await self.post(page, action="allow" if allow else "deny")
        return redirected(back)

    async def post(self, page: httpx.Response, **fields: str) -> httpx.Response:
        token = re.search(r'name="form_token" value="([^"]+)"', page.text)
        assert token, page.text
        return await self.http.post(str(page.url), data={"form_token": token.group(1), **fields})

    async def code(self, email: str, seen: int) -> str:
        """The code in the first email to `email` after the `seen` ones before it."""
        with anyio.fail_after(TIMEOUT):
            while len(self.mailbox.to(email)) <= seen:  # noqa: ASYNC110 - mail arrives on the SMTP server's thread
                await anyio.sleep(0.05)
        found = re.search(r"\b(\d{6})\b", self.mailbox.to(email)[seen].body)
        assert found
        return found.group(1)


def redirected(response: httpx.Response) -> dict[str, str]:
    """The query of the redirect back to the client."""
    assert response.status_code in (302, 303), (response.status_code, response.text)
    location = response.headers["location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Memory:
    """The SDK client's token storage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


class RawClient:
    """An OAuth client spoken by hand, for what the SDK's client never sends (plain PKCE, a wrong verifier,
    another resource, a reused token)."""

    def __init__(self, base: str, http: httpx.AsyncClient) -> None:
        self.base = base
        self.http = http
        self.client_id = ""

    async def register(self) -> None:
        answer = await self.http.post(
            f"{self.base}/register",
            json={"client_name": "Raw client", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"},
        )
        assert answer.status_code == 201, answer.text
        self.client_id = answer.json()["client_id"]

    def authorize_url(self, challenge: str, **extra: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT,
            "state": "s1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": f"{self.base}/mcp",
            **extra,
        }
        return f"{self.base}/authorize?{urlencode(query)}"

    async def token(self, **form: str) -> httpx.Response:
        return await self.http.post(f"{self.base}/token", data={"client_id": self.client_id, **form})

    async def exchange(self, code: str, verifier: str) -> httpx.Response:
        return await self.token(
            grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier
        )

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.token(grant_type="refresh_token", refresh_token=refresh_token)


class Documents(LoopbackHttp):
    """Client ID metadata documents, served by path; remembers what was asked for."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.requested: list[str] = []

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        self.requested.append(handler.path)
        body = json.dumps(self.documents[handler.path]).encode() if handler.path in self.documents else b"{}"
        handler.send_response(200 if handler.path in self.documents else 404)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def initialize(http: httpx.AsyncClient, url: str, token: str | None = None) -> httpx.Response:
    headers = {**MCP_HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    return await http.post(url, json=INITIALIZE, headers=headers)


@asynccontextmanager
async def mcp_session(url: str, token: str, host: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}", **({"Host": host} if host else {})}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=TIMEOUT) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=TIMEOUT) as client,
    ):
        yield client


async def whoami_with(url: str, token: str, host: str | None = None) -> dict[str, Any]:
    async with mcp_session(url, token, host) as client:
        result = await client.call_tool("whoami", {})
    assert not result.is_error and result.structured_content is not None, result
    return result.structured_content


@pytest.fixture
def mailbox() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server


@pytest.fixture
async def server(database_url: str, tmp_path: Path, mailbox: SmtpServer, app: App) -> AsyncIterator[HttpServer]:
    """`app` first: it migrates the database the server then opens. Private targets allowed: the client metadata
    documents are served on loopback."""
    env = {**server_env(database_url, tmp_path), "FAVMCP_SMTP_URL": mailbox.url, "FAVMCP_ALLOW_PRIVATE_TARGETS": "1"}
    async with http_server(env, tmp_path / "server.log") as running:
        yield running


@pytest.fixture
async def browser(mailbox: SmtpServer) -> AsyncIterator[Browser]:
    async with Browser(mailbox) as person:
        yield person
