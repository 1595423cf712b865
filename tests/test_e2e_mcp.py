"""End to end: `favmcp serve` as a real process, spoken to by the SDK's Client over stdio and over HTTP.

Every test runs on SQLite and on Postgres (the `database_url` fixture); codes travel through the server's own
outbox dispatcher to a loopback SMTP server. Both protocol eras are exercised: mode="auto" negotiates the
2026-07-28 era (no handshake; confirmations as input_required), mode="legacy" the handshake era
(confirmations as elicitation/create where there is a back-channel).

Rate limits (3 code requests an hour per client address and purpose) live in the database, and every signup
through MCP counts against one address ("local" over stdio, 127.0.0.1 over HTTP). Each test's server gets a secret
key of its own, which keys its rate-limit buckets apart from every other test's on the shared Postgres database;
besides, at most two signups per database go through each transport. The other tests start from an owner signed up
through the runner (the `owner` fixture).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult, ListToolsResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from favmcp import composition
from favmcp.app import App
from tests.servers import http_server as running_http_server
from tests.smtp_server import SmtpServer, running_smtp_server
from tests.support import SHARED_LISTING_CACHE, Owner, call, error_code, unique_email

MODES = ("auto", "legacy")
CALL_TIMEOUT = 30.0
# The contract the served tool list is held against: a copy of the project's catalog (CI checks out this repository
# alone), never the registry, which would only compare the server with itself.
CATALOG = Path(__file__).with_name("catalog.md")
HINTS = {"R": "read_only_hint", "D": "destructive_hint", "I": "idempotent_hint", "O": "open_world_hint"}
# What /mcp/public lists over HTTP: the tools that need no credential.
PUBLIC_TOOLS = {
    "whoami", "search_tools", "describe_tool", "register_organisation_request", "register_organisation_verify",
    "accept_team_invite_request", "accept_team_invite_verify",
}  # fmt: skip


@dataclass(frozen=True)
class Contract:
    """One catalog row: the tool's domain (its `## ` section), hints, scope and gate (None for `-`)."""

    domain: str
    hints: frozenset[str]
    scope: str
    gate: str | None


@cache
def catalog() -> dict[str, Contract]:
    tools: dict[str, Contract] = {}
    domain = None
    lines = CATALOG.read_text().splitlines()
    for line in lines:
        if line.startswith("## "):
            domain = line[3:].strip()
        elif line.startswith("| `") and domain:
            name, hints, scope, gate = (cell.strip() for cell in line.strip().strip("|").split("|")[:4])
            assert set(hints.split()) <= {"R", "W", *HINTS} and scope and gate, line
            assert name.strip("`") not in tools, f"{name} twice in the catalog"
            tools[name.strip("`")] = Contract(domain, frozenset(hints.split()), scope, None if gate == "-" else gate)
    total = re.search(r"^# The tool catalog: (\d+) tools$", "\n".join(lines), re.MULTILINE)
    assert total and len(tools) == int(total.group(1)), "tests/catalog.md did not parse: the count is off"
    return tools


def served_catalog() -> dict[str, Contract]:
    """The catalog rows of every domain this server serves (its composition root's domains)."""
    contract = catalog()
    assert set(composition.DOMAINS) <= {c.domain for c in contract.values()}, "a served domain the catalog lacks"
    return {name: c for name, c in contract.items() if c.domain in composition.DOMAINS}


# -- the two transports --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mailbox() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server


def server_env(database_url: str, home: Path, mailbox: SmtpServer) -> dict[str, str]:
    return {
        "FAVMCP_DATABASE_URL": database_url,
        "FAVMCP_HOME": str(home),
        # Rate-limit buckets are keyed by an HMAC of the client address under this key: a key of its own keeps
        # this test's buckets apart from every other test's on the shared Postgres database (and earlier runs').
        "FAVMCP_SECRET_KEY": f"e2e-{uuid.uuid4().hex}",
        "FAVMCP_SMTP_URL": mailbox.url,
        "FAVMCP_LOG_LEVEL": "WARNING",
        "FAVMCP_CACHE_DIR": SHARED_LISTING_CACHE,
    }


class Stdio:
    """`favmcp serve` over stdio: every session is its own process; the key comes from FAVMCP_API_KEY."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def session(self, mode: str, key: str | None = None, on_elicit: Person | None = None) -> Client:
        env = {**self.env, **({"FAVMCP_API_KEY": key} if key else {})}
        params = StdioServerParameters(command=sys.executable, args=["-m", "favmcp", "serve"], env=env)
        return Client(params, mode=mode, elicitation_callback=on_elicit, read_timeout_seconds=CALL_TIMEOUT)


class Http:
    """A running `favmcp serve --http`; every session is a fresh SDK client, the key an Authorization header."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.url = f"{base}/mcp"

    def session(
        self, mode: str, key: str | None = None, on_elicit: Person | None = None
    ) -> AbstractAsyncContextManager[Client]:
        return self._session(mode, key, on_elicit)

    @asynccontextmanager
    async def _session(self, mode: str, key: str | None, on_elicit: Person | None) -> AsyncIterator[Client]:
        """Without a key, /mcp/public: the tools that need none (/mcp wants a credential)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT) as http,
            Client(
                streamable_http_client(self.url if key else f"{self.url}/public", http_client=http),
                mode=mode,
                elicitation_callback=on_elicit,
                read_timeout_seconds=CALL_TIMEOUT,
            ) as client,
        ):
            yield client


@asynccontextmanager
async def http_server(env: dict[str, str], log: Path) -> AsyncIterator[Http]:
    async with running_http_server(env, log) as server:
        yield Http(server.base)


def assert_era(client: Client, mode: str) -> None:
    assert (client.protocol_version in MODERN_PROTOCOL_VERSIONS) == (mode == "auto"), client.protocol_version


# -- results ---------------------------------------------------------------------------------------------


def _same_json(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None
    assert len(result.content) == 1 and result.content[0].type == "text"
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def ok(result: CallToolResult) -> dict[str, Any]:
    data = _same_json(result)
    assert not result.is_error, data
    return data


def refused(result: CallToolResult, code: str) -> dict[str, Any]:
    """The error body of an isError result: the JSON of its one text block, repeated in _meta; no structuredContent
    (a client that checks structuredContent against the outputSchema would replace the error otherwise)."""
    assert result.is_error and result.structured_content is None, result
    assert len(result.content) == 1 and result.content[0].type == "text"
    error = json.loads(result.content[0].text)
    assert result.meta is not None and result.meta["favmcp/error"] == error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


class Person:
    """The elicitation callback: answers the server's confirmation questions in order, as a person would."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, Any]] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append((params.message, context.request_id))
        assert self.answers, f"not expected to be asked: {params.message}"
        if self.answers.pop(0):
            return ElicitResult(action="accept", content={"confirm": True})
        return ElicitResult(action="decline")


# -- steps shared by the tests ---------------------------------------------------------------------------


def assert_catalog(listing: ListToolsResult) -> None:
    """The listed tools are exactly the catalog's tools of the served domains, each with the catalog's hints,
    scope and gate, a title, a description and both schemas."""
    wanted = served_catalog()
    assert listing.next_cursor is None
    names = [tool.name for tool in listing.tools]
    assert len(names) == len(set(names)), "a tool listed twice"
    assert not set(names) - set(catalog()), f"listed but not in the catalog: {sorted(set(names) - set(catalog()))}"
    assert sorted(names) == sorted(wanted), (
        f"catalog tools of served domains missing: {sorted(set(wanted) - set(names))}"
    )
    for tool in listing.tools:
        want = wanted[tool.name]
        assert tool.title and tool.description, tool.name
        annotations = tool.annotations
        assert annotations is not None, tool.name
        for letter, hint in HINTS.items():
            got = getattr(annotations, hint)
            assert got is not None, f"{tool.name}: {hint} not set explicitly"
            expected = letter in want.hints
            assert got == expected, f"{tool.name}: {hint} is {got}, the catalog says {' '.join(sorted(want.hints))}"
        assert tool.input_schema["type"] == "object" and tool.input_schema.get("additionalProperties") is False
        assert tool.output_schema is not None and tool.output_schema["type"] == "object", tool.name
        meta = tool.meta or {}
        assert (meta.get("favmcp/domain"), meta.get("favmcp/scope")) == (want.domain, want.scope), (tool.name, meta)
        # An ungated tool has no favmcp/gate: _meta holds no null values.
        assert meta.get("favmcp/gate") == want.gate and None not in meta.values(), (tool.name, meta)


async def sign_up(client: Client, mailbox: SmtpServer, email: str) -> dict[str, Any]:
    """register_organisation_request without a key, the code from the SMTP server, then verify."""
    asked = ok(
        await client.call_tool(
            "register_organisation_request",
            {"email": email, "organisation_name": "E2E Studio", "owner_name": "Ann Owner", "timezone": "UTC"},
        )
    )
    code = await mailbox.code_for(email)
    mail = mailbox.to(email)[0].message
    assert (mail["To"], mail["Subject"]) == (email, "Your favmcp signup code")
    made = ok(await client.call_tool("register_organisation_verify", {"request_id": asked["request_id"], "code": code}))
    assert made["api_key"].startswith("fav_mcp_") and made["role"] == "owner"
    return made


async def whoami(client: Client) -> dict[str, Any]:
    return ok(await client.call_tool("whoami", {}))


async def create_key(client: Client, name: str) -> tuple[str, str]:
    made = ok(await client.call_tool("create_api_key", {"name": name}))
    assert made["api_key"].startswith("fav_mcp_")
    return made["key"]["id"], made["api_key"]


async def key_statuses(client: Client) -> dict[str, str]:
    listed = ok(await client.call_tool("list_api_keys", {"include_revoked": True}))
    return {k["id"]: k["status"] for k in listed["items"]}


async def revoke_with_token(client: Client, key_id: str) -> None:
    """The confirm gate without elicitation: a preview and a token first, the revocation with the token."""
    gate = refused(await client.call_tool("revoke_api_key", {"key_id": key_id}), "confirmation_required")
    details = gate["details"]
    assert details["preview"]["key"]["id"] == key_id and details["confirmation_token"]
    assert (await key_statuses(client))[key_id] == "active", "the preview must change nothing"
    token = details["confirmation_token"]
    done = ok(await client.call_tool("revoke_api_key", {"key_id": key_id, "confirmation_token": token}))
    assert done["id"] == key_id and done["status"] == "revoked"


async def assert_tool_error(client: Client) -> None:
    error = refused(await client.call_tool("update_workspace", {"timezone": "Mars/Olympus"}), "validation_failed")
    assert [f["field"] for f in error["field_errors"]] == ["timezone"]
    assert error["field_errors"][0]["message"] and error["hint"]


async def assert_refused_key(session: AbstractAsyncContextManager[Client]) -> None:
    async with session as client:
        refused(await client.call_tool("whoami", {}), "unauthenticated")


# -- signup ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_stdio_lists_tools_signs_up_and_continues_authenticated(
    mode: str, database_url: str, tmp_path: Path, mailbox: SmtpServer
) -> None:
    stdio = Stdio(server_env(database_url, tmp_path, mailbox))
    email = unique_email("stdio")
    async with stdio.session(mode) as client:
        assert_era(client, mode)
        assert_catalog(await client.list_tools())
        assert (await whoami(client))["authenticated"] is False
        refused(await client.call_tool("list_api_keys", {}), "unauthenticated")
        made = await sign_up(client, mailbox, email)
        me = await whoami(client)
        assert me["authenticated"] is True
        assert (me["workspace_id"], me["key_id"], me["role"]) == (made["workspace_id"], made["key_id"], "owner")
        assert me["workspace_name"] == "E2E Studio"
        assert list(await key_statuses(client)) == [made["key_id"]]


async def test_http_lists_tools_signs_up_and_reconnects_with_the_key(
    database_url: str, tmp_path: Path, mailbox: SmtpServer
) -> None:
    async with http_server(server_env(database_url, tmp_path, mailbox), tmp_path / "server.log") as http:
        for mode in MODES:
            async with http.session(mode) as client:
                assert_era(client, mode)
                assert {t.name for t in (await client.list_tools()).tools} == PUBLIC_TOOLS
                made = await sign_up(client, mailbox, unique_email(f"http.{mode}"))
                # Stateless HTTP: the key never sticks to the connection; the caller presents it every time.
                assert (await whoami(client))["authenticated"] is False
            async with http.session(mode, key=made["api_key"]) as client:
                assert_catalog(await client.list_tools())
                me = await whoami(client)
                assert me["authenticated"] is True and me["workspace_name"] == "E2E Studio"
                assert (me["workspace_id"], me["key_id"], me["role"]) == (made["workspace_id"], made["key_id"], "owner")


# -- the confirm gate with a token, and tool errors ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_stdio_confirm_gate_with_token_and_tool_errors(
    mode: str, database_url: str, tmp_path: Path, mailbox: SmtpServer, owner: Owner
) -> None:
    stdio = Stdio(server_env(database_url, tmp_path, mailbox))
    async with stdio.session(mode, key=owner.key) as client:
        assert_era(client, mode)
        assert (await whoami(client))["workspace_id"] == owner.workspace_id
        await assert_tool_error(client)
        key_id, secret = await create_key(client, f"temp {mode}")
        await revoke_with_token(client, key_id)
    await assert_refused_key(stdio.session(mode, key=secret))


async def test_http_confirm_gate_with_token_and_tool_errors(
    database_url: str, tmp_path: Path, mailbox: SmtpServer, owner: Owner
) -> None:
    async with http_server(server_env(database_url, tmp_path, mailbox), tmp_path / "server.log") as http:
        for mode in MODES:
            async with http.session(mode, key=owner.key) as client:
                assert_era(client, mode)
                await assert_tool_error(client)
                key_id, secret = await create_key(client, f"temp {mode}")
                await revoke_with_token(client, key_id)
            await assert_refused_key(http.session(mode, key=secret))


async def test_two_http_replicas_share_one_database_and_agree_on_tokens(
    database_url: str, tmp_path: Path, mailbox: SmtpServer, owner: Owner
) -> None:
    """A preview from one replica is confirmed on another; the key it revokes is refused by both."""
    env = server_env(database_url, tmp_path / "a", mailbox)  # one FAVMCP_SECRET_KEY for both, as deployed
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        http_server(env, tmp_path / "a.log") as a,
        http_server({**env, "FAVMCP_HOME": str(tmp_path / "b")}, tmp_path / "b.log") as b,
    ):
        async with a.session("auto", key=owner.key) as on_a, b.session("auto", key=owner.key) as on_b:
            key_id, secret = await create_key(on_a, "replicated")
            gate = refused(await on_a.call_tool("revoke_api_key", {"key_id": key_id}), "confirmation_required")
            token = gate["details"]["confirmation_token"]
            done = ok(await on_b.call_tool("revoke_api_key", {"key_id": key_id, "confirmation_token": token}))
            assert done["status"] == "revoked"
            again = await on_a.call_tool("revoke_api_key", {"key_id": key_id, "confirmation_token": token})
            refused(again, "confirmation_required")
        await assert_refused_key(a.session("auto", key=secret))
        await assert_refused_key(b.session("auto", key=secret))


# -- elicitation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_stdio_confirm_gate_asks_the_person(
    mode: str, database_url: str, tmp_path: Path, mailbox: SmtpServer, app: App, owner: Owner
) -> None:
    stdio = Stdio(server_env(database_url, tmp_path, mailbox))
    person = Person(False, True)
    async with stdio.session(mode, key=owner.key, on_elicit=person) as client:
        assert_era(client, mode)
        kept_id, kept = await create_key(client, "kept")
        gone_id, gone = await create_key(client, "gone")
        declined = refused(await client.call_tool("revoke_api_key", {"key_id": kept_id}), "declined")
        assert "declined" in declined["message"]
        done = ok(await client.call_tool("revoke_api_key", {"key_id": gone_id}))
        assert done["id"] == gone_id and done["status"] == "revoked"
        statuses = await key_statuses(client)
    assert (statuses[kept_id], statuses[gone_id]) == ("active", "revoked")
    (first, first_id), (second, second_id) = person.asked
    assert "'kept'" in first and "'gone'" in second
    # Modern era: the SDK answers the server's input request (named "confirm") and retries the call.
    # Handshake era: the server sent elicitation/create mid-call, a JSON-RPC request with its own id.
    if mode == "auto":
        assert (first_id, second_id) == ("confirm", "confirm")
    else:
        assert isinstance(first_id, int) and isinstance(second_id, int)
    # The declined key still works, the accepted one is refused (checked through the runner, same database).
    assert (await call(app, kept, "whoami")).data["key_id"] == kept_id
    assert error_code(await call(app, gone, "whoami")) == "unauthenticated"


async def test_http_confirm_gate_asks_the_person_or_falls_back_to_a_token(
    database_url: str, tmp_path: Path, mailbox: SmtpServer, owner: Owner
) -> None:
    async with http_server(server_env(database_url, tmp_path, mailbox), tmp_path / "server.log") as http:
        # Modern era over stateless HTTP: input_required, answered and retried by the SDK.
        person = Person(False, True)
        async with http.session("auto", key=owner.key, on_elicit=person) as client:
            assert_era(client, "auto")
            kept_id, kept = await create_key(client, "kept")
            gone_id, gone = await create_key(client, "gone")
            declined = refused(await client.call_tool("revoke_api_key", {"key_id": kept_id}), "declined")
            assert "declined" in declined["message"]
            done = ok(await client.call_tool("revoke_api_key", {"key_id": gone_id}))
            assert done["id"] == gone_id and done["status"] == "revoked"
        assert [request_id for _, request_id in person.asked] == ["confirm", "confirm"]
        async with http.session("auto", key=kept) as client:
            assert (await whoami(client))["key_id"] == kept_id
        await assert_refused_key(http.session("auto", key=gone))

        # Handshake era over stateless HTTP: no back-channel for elicitation/create, so the token flow.
        nobody = Person()
        async with http.session("legacy", key=owner.key, on_elicit=nobody) as client:
            assert_era(client, "legacy")
            key_id, secret = await create_key(client, "legacy")
            await revoke_with_token(client, key_id)
        assert nobody.asked == []
        await assert_refused_key(http.session("legacy", key=secret))


# -- the HTTP surface ------------------------------------------------------------------------------------


async def test_http_health_card_and_transport_security(database_url: str, tmp_path: Path, mailbox: SmtpServer) -> None:
    async with (
        http_server(server_env(database_url, tmp_path, mailbox), tmp_path / "server.log") as server,
        httpx.AsyncClient(base_url=server.base, timeout=CALL_TIMEOUT) as http,
    ):
        health = await http.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["version"]

        card = await http.get("/.well-known/mcp/server-card.json")
        assert card.status_code == 200
        assert sorted(t["name"] for t in card.json()["tools"]) == sorted(served_catalog())
        assert card.json()["transport"]["endpoint"] == "/mcp"

        initialize: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        # Probed at /mcp/public, which needs no key; /mcp sits behind the same checks, and a credential.
        local = await http.post("/mcp/public", json=initialize, headers={**headers, "Origin": server.base})
        assert local.status_code == 200, local.text  # the control: the same request from a local origin is served
        foreign_origin = await http.post(
            "/mcp/public", json=initialize, headers={**headers, "Origin": "http://evil.example"}
        )
        assert foreign_origin.status_code == 403, foreign_origin.text
        foreign_host = await http.post("/mcp/public", json=initialize, headers={**headers, "Host": "evil.example"})
        assert foreign_host.status_code == 421, foreign_host.text
        for padding, status in ((999_000, 200), (1_000_001, 413)):  # the limit is 1 MB, not less
            padded = {**initialize, "params": {**initialize["params"], "padding": "x" * padding}}
            answer = await http.post("/mcp/public", content=json.dumps(padded), headers=headers)
            assert answer.status_code == status, (padding, answer.text[:200])
