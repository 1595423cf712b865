"""Tool profiles (issue 14): a key, an OAuth grant or the URL /mcp/p/<profile> narrows what is listed and what may be
called; a credential bound to one profile is refused at another's URL; the readonly profile's handlers run where the
database itself refuses writes, on SQLite and Postgres."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, get_args

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy.exc import DBAPIError

from favmcp.app import App
from favmcp.auth import credentials
from favmcp.composition import all_specs
from favmcp.domains.access.schemas import ProfileName
from favmcp.registry.profiles import DISCOVERY, MAX_JOB_TOOLS, PROFILES
from tests import oauth_kit
from tests.oauth_kit import INITIALIZE, MCP_HEADERS, Browser, RawClient, pkce, redirected
from tests.servers import HttpServer, http_server, server_env
from tests.support import Owner, call, confirmed, error_code

# The OAuth kit's fixtures: its SMTP mailbox, its server (which reads codes from it) and its browser.
mailbox, server, browser = oauth_kit.mailbox, oauth_kit.server, oauth_kit.browser

TIMEOUT = 30.0
JOBS = ("front_desk", "marketing", "finance")


def profile_tools(name: str) -> set[str]:
    return {s.name for s in all_specs() if PROFILES[name].allows(s)}


def test_each_job_profile_holds_at_most_40_catalog_tools_besides_discovery() -> None:
    catalog = {s.name for s in all_specs()}
    for name in JOBS:
        own = PROFILES[name].tools
        assert own is not None and own <= catalog, sorted((own or set()) - catalog)
        assert len(profile_tools(name) - DISCOVERY) <= MAX_JOB_TOOLS, name
    reads = {s.name for s in all_specs() if s.effect.read_only}
    assert profile_tools("readonly") == reads
    assert profile_tools("owner") == catalog
    assert set(get_args(ProfileName)) == set(PROFILES)


async def bound_key(app: App, owner: Owner, profile: str) -> str:
    made = await call(app, owner.key, "create_api_key", {"name": f"{profile} agent", "profile": profile})
    assert made.ok, made.data
    assert made.data["key"]["profile"] == profile
    return str(made.data["api_key"])


@asynccontextmanager
async def session(url: str, key: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=TIMEOUT) as client,
    ):
        yield client


async def listed(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


def refusal(result: Any) -> dict[str, Any]:
    assert result.is_error, result
    return dict(result.meta["favmcp/error"])


async def test_profiles_narrow_listing_and_calls_by_key_and_by_url(
    database_url: str, tmp_path: Path, app: App, owner: Owner
) -> None:
    front_desk = await bound_key(app, owner, "front_desk")
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as running:
        # A key bound to front_desk on /mcp: its profile's tools, listed and callable, and nothing else.
        async with session(running.url, front_desk) as client:
            assert await listed(client) == profile_tools("front_desk")
            me = await client.call_tool("whoami", {})
            assert me.structured_content is not None and me.structured_content["profile"] == "front_desk"
            made = await client.call_tool("create_member", {"name": "Desk Made", "email": "desk@example.com"})
            assert not made.is_error, made
            error = refusal(await client.call_tool("list_invoices", {}))
            assert error["code"] == "forbidden" and "front_desk profile" in error["message"], error
            found = await client.call_tool("search_tools", {"query": "invoice"})
            assert found.structured_content is not None
            assert not {t["name"] for t in found.structured_content["items"]} & {"list_invoices", "create_invoice"}

        # A key bound to no profile at /mcp/p/finance: the URL narrows it.
        async with session(f"{running.base}/mcp/p/finance", owner.key) as client:
            assert await listed(client) == profile_tools("finance")
            assert not (await client.call_tool("list_invoices", {})).is_error
            error = refusal(await client.call_tool("create_member", {"name": "No", "email": "no@example.com"}))
            assert error["code"] == "forbidden" and "finance profile" in error["message"], error
            me = await client.call_tool("whoami", {})
            assert me.structured_content is not None and me.structured_content["profile"] == "finance"

        # The front_desk key at finance's URL is refused before anything runs; an unknown profile is no endpoint.
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            bound = {**MCP_HEADERS, "Authorization": f"Bearer {front_desk}"}
            refused = await http.post(f"{running.base}/mcp/p/finance", json=INITIALIZE, headers=bound)
            assert refused.status_code == 403 and "front_desk" in refused.json()["error_description"], refused.text
            anonymous = await http.post(f"{running.base}/mcp/p/finance", json=INITIALIZE, headers=MCP_HEADERS)
            assert anonymous.status_code == 401 and "resource_metadata=" in anonymous.headers["www-authenticate"]
            own = await http.post(f"{running.base}/mcp/p/front_desk", json=INITIALIZE, headers=bound)
            assert own.status_code == 200, own.text
            unknown = await http.post(f"{running.base}/mcp/p/nope", json=INITIALIZE, headers=bound)
            assert unknown.status_code == 404


async def test_a_profile_bound_key_over_stdio_lists_its_profile_from_the_first_answer(
    database_url: str, tmp_path: Path, app: App, owner: Owner
) -> None:
    """The first session of a home builds the listing cache and learns the key's profile from the database; the
    next answers tools/list from the cache before the database opens, still narrowed. A revoked key sees the whole
    list, as a key bound to nothing does (the listing is no secret; the runner refuses its calls)."""
    front_desk = await bound_key(app, owner, "front_desk")
    env = {**server_env(database_url, tmp_path, shared_cache=False), "FAVMCP_NO_DISPATCHER": "1"}

    async def stdio_listing(key: str) -> set[str]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "favmcp", "serve"], env={**env, "FAVMCP_API_KEY": key}
        )
        async with Client(params, read_timeout_seconds=TIMEOUT) as client:
            return await listed(client)

    everything = {s.name for s in all_specs()}
    assert await stdio_listing(front_desk) == profile_tools("front_desk"), "first start: no cache yet"
    assert list((tmp_path / "cache").glob("listing-*.json")) and (tmp_path / "cache" / "key-profiles.json").exists()
    assert await stdio_listing(front_desk) == profile_tools("front_desk"), "from the cache"
    revoked = await bound_key(app, owner, "finance")
    made = await call(app, owner.key, "list_api_keys", {})
    key_id = next(k["id"] for k in made.data["items"] if k["profile"] == "finance")
    assert (await confirmed(app, owner.key, "revoke_api_key", {"key_id": key_id})).ok
    assert await stdio_listing(revoked) == everything


async def test_a_call_outside_the_keys_profile_is_refused_over_the_runner(app: App, owner: Owner) -> None:
    marketing = await bound_key(app, owner, "marketing")
    refused = await call(app, marketing, "record_payment", {"invoice_id": "inv_x", "amount": 1, "method": "cash"})
    assert error_code(refused) == "forbidden" and "marketing profile" in refused.data["error"]["message"]
    assert (await call(app, marketing, "list_posts")).ok
    unbound = await call(app, owner.key, "whoami")
    assert unbound.data["profile"] is None


async def test_the_readonly_profile_runs_where_the_database_refuses_writes(app: App, owner: Owner) -> None:
    readonly = await bound_key(app, owner, "readonly")
    assert error_code(await call(app, readonly, "create_member", {"name": "No", "email": "no@example.com"})) == (
        "forbidden"
    )
    listed = await call(app, readonly, "search_members")
    assert listed.ok, listed.data
    # The runner's bookkeeping has a transaction of its own: the read-only call still recorded the key's use.
    keys = await call(app, owner.key, "list_api_keys")
    used = next(k for k in keys.data["items"] if k["profile"] == "readonly")
    assert used["last_used_at"] is not None

    # Past the registry's check: create_member's own handler, in the session a readonly caller's handlers get.
    caller = await credentials.resolve(app.db, readonly, app.runner.clock.now())
    spec = app.registry.get("create_member")
    args = spec.input_model.model_validate({"name": "Sneaky", "email": "sneaky@example.com"})
    ctx = app.runner._context(app.db.read_only_sessions, caller, spec, app.runner.clock.now(), "req_profiles", "local")
    try:
        with pytest.raises(DBAPIError) as refused:
            await spec.handler(ctx, args)
            await ctx.session.flush()
    finally:
        await ctx.close_session()
    assert "read" in str(refused.value.orig).lower(), refused.value  # "readonly database" / "read-only transaction"
    assert (await call(app, owner.key, "search_members", {"text": "Sneaky"})).data["items"] == []


async def test_an_oauth_grant_carries_the_profile_chosen_on_the_consent_page(
    server: HttpServer, browser: Browser, app: App, owner: Owner
) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        client = RawClient(server.base, http)
        await client.register()
        verifier, challenge = pkce()
        page = await browser.sign_in(client.authorize_url(challenge), owner.email)
        offered = {name for name, p in PROFILES.items() if not p.keys_only}
        assert all(f'value="{name}"' in page.text for name in offered), page.text
        assert 'value="publishable"' not in page.text, "a profile bound to publishable keys alone is never offered"
        answer = redirected(await browser.post(page, action="allow", profile="finance"))
        token = (await client.exchange(answer["code"], verifier)).json()["access_token"]

        async with session(server.url, token) as mcp:
            assert await listed(mcp) == profile_tools("finance")
            me = await mcp.call_tool("whoami", {})
            assert me.structured_content is not None and me.structured_content["profile"] == "finance"
        bound = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
        refused = await http.post(f"{server.base}/mcp/p/front_desk", json=INITIALIZE, headers=bound)
        assert refused.status_code == 403, refused.text
        own = await http.post(f"{server.base}/mcp/p/finance", json=INITIALIZE, headers=bound)
        assert own.status_code == 200, own.text
