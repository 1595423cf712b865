"""OAuth 2.1 for MCP clients, end to end: a real `favmcp serve --http`, a browser played by an httpx client (cookies,
forms), the sign-in code read from a loopback SMTP server, and the SDK's own OAuth client; SQLite and Postgres.

The owner signs up through the runner (the `owner` fixture), on the database the server uses.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from pydantic import AnyUrl

from favmcp.app import App
from favmcp.auth import credentials
from favmcp.auth.oauth.provider import Provider
from favmcp.core.clock import SystemClock, SystemRandom
from favmcp.core.errors import FavError
from tests import oauth_kit
from tests.oauth_kit import (
    PUBLIC_TOOLS,
    REDIRECT,
    TIMEOUT,
    Browser,
    Documents,
    Memory,
    RawClient,
    initialize,
    mcp_session,
    pkce,
    redirected,
    whoami_with,
)
from tests.servers import HttpServer
from tests.support import Owner, call, confirmed, join, signup

# The kit's fixtures: its SMTP mailbox, its server (which reads codes from it) and its browser.
mailbox, server, browser = oauth_kit.mailbox, oauth_kit.server, oauth_kit.browser


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
