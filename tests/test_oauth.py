"""OAuth 2.1 for MCP clients, end to end: a real `favmcp serve --http`, a browser played by an httpx client (cookies,
forms), the sign-in code read from a loopback SMTP server, and the SDK's own OAuth client; SQLite and Postgres.

The owner signs up through the runner (the `owner` fixture), on the database the server uses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from favmcp.app import App
from favmcp.auth import credentials
from favmcp.auth.oauth.provider import Provider
from favmcp.core.clock import SystemClock, SystemRandom
from favmcp.core.errors import FavError
from tests.loopback_http import LoopbackHttp
from tests.servers import HttpServer, http_server, server_env
from tests.smtp_server import SmtpServer, running_smtp_server
from tests.support import Owner, call, confirmed, join, signup

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


@pytest.fixture
async def browser(mailbox: SmtpServer) -> AsyncIterator[Browser]:
    async with Browser(mailbox) as person:
        yield person


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


async def test_sdk_client_registers_signs_in_calls_refreshes_and_a_reused_refresh_token_ends_the_family(
    server: HttpServer, browser: Browser, app: App, owner: Owner
) -> None:
    second = await signup(app, owner.email, name="Second Studio")  # the same person owns two workspaces
    storage = Memory()
    answers: list[AuthorizationCodeResult] = []

    async def redirect_handler(url: str) -> None:
        query = await browser.consent(url, owner.email, workspace="Second Studio")
        answers.append(AuthorizationCodeResult(code=query["code"], state=query["state"], iss=query["iss"]))

    async def callback_handler() -> AuthorizationCodeResult:
        return answers.pop()

    oauth = OAuthClientProvider(
        server.url,
        OAuthClientMetadata(
            client_name="Test agent",
            redirect_uris=[AnyUrl(REDIRECT)],
            token_endpoint_auth_method="client_secret_post",
        ),
        storage,
        redirect_handler,
        callback_handler,
    )
    async with (
        httpx2.AsyncClient(auth=oauth, timeout=TIMEOUT) as http,
        Client(streamable_http_client(server.url, http_client=http), read_timeout_seconds=TIMEOUT) as client,
    ):
        me = (await client.call_tool("whoami", {})).structured_content
        assert me is not None and me["authenticated"], me
        assert (me["workspace_id"], me["role"], me["workspace_name"]) == (second.workspace_id, "owner", "Second Studio")
        assert me["key_id"].startswith("ogr_") and "members:admin" in me["scopes"]
        members = await client.call_tool("list_team_members", {})
        assert not members.is_error, members

        first = storage.tokens
        assert first is not None and first.refresh_token and first.access_token.startswith("fav_oat_")
        oauth.context.token_expiry_time = time.time() - 1  # the client refreshes before its next request
        assert not (await client.call_tool("whoami", {})).is_error
        rotated = storage.tokens
        assert rotated is not None and rotated.refresh_token not in (None, first.refresh_token)
        assert rotated.access_token != first.access_token

    registered = storage.client
    assert registered is not None and registered.client_secret
    async with httpx.AsyncClient(timeout=TIMEOUT) as raw:
        reuse = await raw.post(
            f"{server.base}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first.refresh_token,
                "client_id": registered.client_id,
                "client_secret": registered.client_secret,
            },
        )
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant", reuse.text
        refused = await initialize(raw, server.url, rotated.access_token)
        assert refused.status_code == 401, refused.text
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        again = await raw.post(
            f"{server.base}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": rotated.refresh_token or "",
                "client_id": registered.client_id,
                "client_secret": registered.client_secret,
            },
        )
        assert again.status_code == 400, "the whole family is revoked, the newest refresh token too"
    audit = await call(app, second.key, "list_audit_events", {})
    assert {"oauth:grant", "oauth:refresh_reused"} <= {e["tool"] for e in audit.data["items"]}, audit.data


async def test_pkce_is_s256_with_the_right_verifier_and_a_code_works_once(
    server: HttpServer, browser: Browser, app: App, owner: Owner
) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        client = RawClient(server.base, http)
        await client.register()
        verifier, challenge = pkce()
        plain = await http.get(client.authorize_url(verifier, code_challenge_method="plain"))
        assert plain.status_code == 302 and "error=invalid_request" in plain.headers["location"], plain.headers

        answer = await browser.consent(client.authorize_url(challenge), owner.email)
        assert answer["state"] == "s1" and answer["iss"] == server.base
        wrong = await client.exchange(answer["code"], pkce()[0])
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant", wrong.text
        tokens = await client.exchange(answer["code"], verifier)
        assert tokens.status_code == 200, tokens.text
        access = tokens.json()["access_token"]
        me = await whoami_with(server.url, access)
        assert me["workspace_id"] == owner.workspace_id
        # A held send runs later as its requester: the grant (the key_id an OAuth caller has) while it stands.
        later = await credentials.resolve_key_id(app.db, me["key_id"], owner.workspace_id, datetime.now(UTC))
        assert (later.user_id, later.key_id, later.scopes) == (owner.user_id, me["key_id"], tuple(me["scopes"]))

        replayed = await client.exchange(answer["code"], verifier)
        assert replayed.status_code == 400, "a code works once"
        refused = await initialize(http, server.url, access)
        assert refused.status_code == 401, "and its second use revokes what the first one got"
        with pytest.raises(FavError, match="revoked"):
            await credentials.resolve_key_id(app.db, me["key_id"], owner.workspace_id, datetime.now(UTC))


async def test_tokens_are_for_this_resource_only(server: HttpServer, browser: Browser, app: App, owner: Owner) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        client = RawClient(server.base, http)
        await client.register()
        _, challenge = pkce()
        page = await browser.http.get(client.authorize_url(challenge, resource=f"{server.base}/elsewhere"))
        other = await browser.http.get(f"{server.base}{page.headers['location']}")
        assert redirected(other)["error"] == "invalid_target"

        # The same server under another name is another resource: a token for http://localhost:…/mcp (the Host a
        # client named) is refused at http://127.0.0.1:…/mcp, and outside HTTP altogether (the runner, as over stdio).
        localhost = server.base.replace("http://127.0.0.1", "localhost")
        async with Browser(browser.mailbox, {"Host": localhost}) as local_browser:
            verifier, challenge = pkce()
            url = client.authorize_url(challenge, resource=f"http://{localhost}/mcp")
            answer = await local_browser.consent(url, owner.email)
        assert answer["iss"] == f"http://{localhost}"
        elsewhere = await client.token(
            grant_type="authorization_code", code=answer["code"], redirect_uri=REDIRECT, code_verifier=verifier,
            resource=f"{server.base}/elsewhere",
        )  # fmt: skip
        assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "invalid_target", elsewhere.text
        tokens = (await client.exchange(answer["code"], verifier)).json()
        assert (await whoami_with(server.url, tokens["access_token"], host=localhost))["authenticated"]
        refused = await initialize(http, server.url, tokens["access_token"])
        assert refused.status_code == 401 and "another resource" in refused.text, refused.text
        over_stdio = await call(app, tokens["access_token"], "whoami")
        assert over_stdio.data["error"]["code"] == "unauthenticated", over_stdio.data


async def test_a_client_known_by_its_metadata_document(
    server: HttpServer, browser: Browser, app: App, owner: Owner
) -> None:
    with Documents() as docs:
        agent = docs.url("/agent.json")
        docs.documents["/agent.json"] = {
            "client_id": agent,
            "client_name": "Document agent",
            "redirect_uris": [REDIRECT],
        }
        docs.documents["/liar.json"] = {"client_id": docs.url("/other.json"), "redirect_uris": [REDIRECT]}
        docs.documents["/big.json"] = {"client_id": docs.url("/big.json"), "redirect_uris": [REDIRECT], "x": "x" * 6000}
        docs.documents["/secret.json"] = {
            "client_id": docs.url("/secret.json"),
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_post",
        }
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            metadata = (await http.get(f"{server.base}/.well-known/oauth-authorization-server")).json()
            assert metadata["client_id_metadata_document_supported"] is True
            client = RawClient(server.base, http)
            client.client_id = agent  # no registration: the URL is the client's id
            verifier, challenge = pkce()
            page = await browser.sign_in(client.authorize_url(challenge), owner.email)
            assert "Document agent" in page.text and "published by 127.0.0.1" in page.text, page.text
            tokens = (
                await client.exchange(redirected(await browser.post(page, action="allow"))["code"], verifier)
            ).json()
            assert (await whoami_with(server.url, tokens["access_token"]))["workspace_id"] == owner.workspace_id
            assert (await client.refresh(tokens["refresh_token"])).status_code == 200

            for refused in ("/liar.json", "/big.json", "/secret.json", "/missing.json"):
                client.client_id = docs.url(refused)
                answer = await http.get(client.authorize_url(challenge))
                assert answer.status_code == 400 and "not found" in answer.text, (refused, answer.text)

        # Without FAVMCP_ALLOW_PRIVATE_TARGETS a document on a loopback address is not even fetched.
        strict = Provider(app.db, app.settings, SystemClock(), SystemRandom())
        docs.documents["/fresh.json"] = {"client_id": docs.url("/fresh.json"), "redirect_uris": [REDIRECT]}
        assert not app.settings.allow_private_targets and await strict.get_client(docs.url("/fresh.json")) is None
        assert "/fresh.json" not in docs.requested


async def test_consent_caps_scopes_by_role_and_revocation_and_deactivation_hold_at_once(
    server: HttpServer, browser: Browser, app: App, owner: Owner
) -> None:
    staff = await join(app, owner, role="staff")
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        client = RawClient(server.base, http)
        await client.register()

        verifier, challenge = pkce()
        url = client.authorize_url(challenge, scope="members:admin invoices:read")
        page = await browser.sign_in(url, staff.email)
        assert "members:read" in page.text and "invoices" not in page.text, page.text
        tokens = (await client.exchange(redirected(await browser.post(page, action="allow"))["code"], verifier)).json()
        assert tokens["scope"] == "members:read"
        me = await whoami_with(server.url, tokens["access_token"])
        assert me["scopes"] == ["members:read"] and me["role"] == "staff"

        # The SDK's revocation handler wants the client_secret field even from a public client (empty).
        revoke = {"client_id": client.client_id, "client_secret": "", "token": tokens["access_token"]}
        revoked = await http.post(f"{server.base}/revoke", data=revoke)
        assert revoked.status_code == 200
        assert (await initialize(http, server.url, tokens["access_token"])).status_code == 401
        assert (await client.refresh(tokens["refresh_token"])).status_code == 400

        verifier, challenge = pkce()
        answer = await browser.consent(client.authorize_url(challenge), staff.email)
        access = (await client.exchange(answer["code"], verifier)).json()["access_token"]
        assert (await whoami_with(server.url, access))["authenticated"]
        done = await confirmed(app, owner.key, "deactivate_team_member", {"user_id": staff.user_id})
        assert done.ok, done.data
        refused = await initialize(http, server.url, access)
        assert refused.status_code == 401 and "deactivated" in refused.text, refused.text

        verifier, challenge = pkce()
        denied = await browser.consent(client.authorize_url(challenge), owner.email, allow=False)
        assert denied["error"] == "access_denied" and "code" not in denied


async def test_mcp_wants_a_credential_and_mcp_public_serves_the_public_tools(
    server: HttpServer, app: App, owner: Owner
) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        anonymous = await initialize(http, server.url)
        assert anonymous.status_code == 401
        challenge = anonymous.headers["www-authenticate"]
        assert challenge == f'Bearer resource_metadata="{server.base}/.well-known/oauth-protected-resource/mcp"'
        assert (await http.get(server.url)).status_code == 401
        resource = (await http.get(f"{server.base}/.well-known/oauth-protected-resource/mcp")).json()
        assert resource["resource"] == server.url and resource["authorization_servers"] == [server.base]
        metadata = (await http.get(f"{server.base}/.well-known/oauth-authorization-server")).json()
        assert metadata["issuer"] == server.base and metadata["code_challenge_methods_supported"] == ["S256"]
        assert (await initialize(http, server.url, owner.key)).status_code == 200, "API keys keep working"

    async with Client(streamable_http_client(f"{server.url}/public"), read_timeout_seconds=TIMEOUT) as client:
        assert {t.name for t in (await client.list_tools()).tools} == PUBLIC_TOOLS
        me = (await client.call_tool("whoami", {})).structured_content
        assert me is not None and me["authenticated"] is False
        found = (await client.call_tool("search_tools", {"query": "booking"})).structured_content
        assert found is not None and found["items"], "discovery finds every tool"
        protected = await client.call_tool("list_team_members", {})
        assert protected.is_error and "unauthenticated" in protected.content[0].text  # type: ignore[union-attr]
    async with mcp_session(f"{server.url}/public", owner.key) as keyed:
        me = (await keyed.call_tool("whoami", {})).structured_content
        assert me is not None and me["authenticated"] is False, "a credential sent to /mcp/public is not used"


async def test_registration_checks_redirect_uris_and_is_bounded_per_address(server: HttpServer) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        remote_http = await http.post(f"{server.base}/register", json={"redirect_uris": ["http://example.com/cb"]})
        assert remote_http.status_code == 400 and remote_http.json()["error"] == "invalid_redirect_uri"
        script = await http.post(f"{server.base}/register", json={"redirect_uris": ["javascript:alert(1)"]})
        assert script.status_code == 400
        answers = [
            (await http.post(f"{server.base}/register", json={"redirect_uris": [REDIRECT]})).status_code
            for _ in range(19)
        ]
    assert answers == [201] * 18 + [429], "20 an hour from one address, the refused ones counted"
