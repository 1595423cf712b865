"""The tool listing as a client receives it: its size per tool stays within budget, and the core listing narrows
only what is listed, never what can be called.

Bytes are the compact JSON of each Tool as the SDK client received it; the model-facing part is what a model reads
(name, title, description, input schema, annotations); the rest is the output schema and _meta.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Tool

from favmcp.app import App
from favmcp.composition import DOMAINS, all_specs
from favmcp.config import Settings, parse_toolsets
from favmcp.core.errors import FavError
from favmcp.registry.profiles import PROFILES
from favmcp.registry.registry import CORE_TOOLS, Registry
from favmcp.transports import listing as listings
from favmcp.transports.listing import Listing
from favmcp.transports.mcp import StdioCredential, build_server
from tests.servers import http_server, server_env
from tests.support import Owner, call, make_settings, served, signup
from tests.test_e2e_mcp import catalog

WHOLE_BUDGET = 1500  # bytes per tool on average, the whole listing
MODEL_BUDGET = 800  # bytes per tool on average, the part a model reads
MODEL_FACING = ("name", "title", "description", "inputSchema", "annotations")
CLIENT_CAP = 40  # the lowest cap on tools among clients that have one
NOT_CORE = "list_api_keys"


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def listing_bytes(tools: list[Tool]) -> dict[str, float]:
    """Average bytes per tool: whole, model-facing, and each part of the Tool."""
    dumps = [tool.model_dump(by_alias=True, exclude_none=True, mode="json") for tool in tools]
    figures = {
        "whole": sum(map(_size, dumps)),
        "model-facing": sum(_size({k: d[k] for k in MODEL_FACING if k in d}) for d in dumps),
    }
    for part in sorted({key for d in dumps for key in d}):
        figures[part] = sum(_size(d[part]) for d in dumps if part in d)
    return {name: total / len(tools) for name, total in figures.items()}


async def _open(home: Path, database_url: str, toolsets: str | None = None) -> App:
    return await App.open(make_settings(home, database_url, toolsets=parse_toolsets(toolsets)))


@pytest.fixture
async def full_app(tmp_path: Path) -> AsyncIterator[App]:
    """The listing does not depend on the database: SQLite alone."""
    app = await _open(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'favmcp.db'}")
    yield app
    await app.close()


@pytest.fixture
async def core_app(tmp_path: Path, database_url: str) -> AsyncIterator[App]:
    app = await _open(tmp_path, database_url, "core")
    yield app
    await app.close()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_full_listing_stays_within_its_budget_per_tool(full_app: App, mode: str) -> None:
    async with Client(build_server(*served(full_app)), mode=mode) as client:
        listing = await client.list_tools()
    assert len(listing.tools) == len(full_app.runner.registry.listed()), "the full listing has every served tool"
    figures = listing_bytes(listing.tools)
    report = f"{len(listing.tools)} tools, bytes per tool: " + ", ".join(f"{k} {v:.0f}" for k, v in figures.items())
    print(report)
    assert figures["whole"] <= WHOLE_BUDGET, report
    assert figures["model-facing"] <= MODEL_BUDGET, report


def test_listing_bytes_counts_what_is_sent() -> None:
    tool = Tool(name="t", title="T", description="d", input_schema={"type": "object"}, output_schema={"type": "object"})
    figures = listing_bytes([tool, tool])
    assert figures["whole"] == _size(tool.model_dump(by_alias=True, exclude_none=True, mode="json"))
    model_facing = {"name": "t", "title": "T", "description": "d", "inputSchema": {"type": "object"}}
    assert figures["model-facing"] == _size(model_facing)
    assert figures["outputSchema"] == _size({"type": "object"})


def test_core_tools_are_catalog_tools_within_the_cap() -> None:
    assert not CORE_TOOLS - set(catalog()), sorted(CORE_TOOLS - set(catalog()))
    assert len(CORE_TOOLS) <= CLIENT_CAP
    assert NOT_CORE not in CORE_TOOLS and NOT_CORE in {s.name for s in all_specs()}


async def test_the_core_listing_narrows_the_list_but_every_tool_stays_callable(core_app: App) -> None:
    owner = await signup(core_app)
    server = build_server(*served(core_app), stdio_credential=StdioCredential(owner.key))
    async with Client(server) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == CORE_TOOLS & {s.name for s in all_specs()}, "every core tool that exists, and no other"
        assert len(names) <= CLIENT_CAP and {"whoami", "search_tools", "describe_tool"} <= names
        assert NOT_CORE not in names

        found = await client.call_tool("search_tools", {"query": "api keys"})
        assert found.structured_content is not None
        assert NOT_CORE in [t["name"] for t in found.structured_content["items"]], "discovery searches every tool"
        described = await client.call_tool("describe_tool", {"name": NOT_CORE})
        assert not described.is_error and described.structured_content is not None
        assert described.structured_content["name"] == NOT_CORE

        called = await client.call_tool(NOT_CORE, {})
        assert not called.is_error, called
        assert called.structured_content is not None
        assert [k["id"] for k in called.structured_content["items"]] == [owner.key_id]


def test_a_domain_toolset_still_narrows_calling_and_core_stands_alone() -> None:
    members = Registry(all_specs(), toolsets=frozenset({"members"}))
    with pytest.raises(FavError, match="not in this server's toolsets"):
        members.get(NOT_CORE)
    assert members.tools_list() == members.listed()
    core = Registry(all_specs(), toolsets=frozenset({"core"}))
    assert core.get(NOT_CORE).name == NOT_CORE and len(core.listed()) == len(all_specs())
    with pytest.raises(ValueError, match="core listing cannot be combined"):
        Registry(all_specs(), toolsets=frozenset({"core", "members"}))


# -- kept between starts -------------------------------------------------------------------------------------------


async def test_an_http_server_lists_from_the_listing_its_first_start_kept(
    database_url: str, tmp_path: Path, owner: Owner
) -> None:
    """The first start builds the listing and keeps it in FAVMCP_CACHE_DIR (not in its home); the next start
    answers tools/list from the kept copy, which the test marks to tell it from a new one. The server card is made
    from the tools themselves, whatever the cache holds."""
    cache = tmp_path / "shared-cache"
    env = {**server_env(database_url, tmp_path / "home", shared_cache=False), "FAVMCP_CACHE_DIR": str(cache)}

    async def tools_and_card(log: str) -> tuple[dict[str, str], dict[str, str]]:
        headers = {"Authorization": f"Bearer {owner.key}"}
        async with (
            http_server(env, tmp_path / log) as server,
            httpx2.AsyncClient(headers=headers) as mcp_http,
            Client(streamable_http_client(server.url, http_client=mcp_http)) as client,
            httpx.AsyncClient() as http,
        ):
            tools = {t.name: t.description or "" for t in (await client.list_tools()).tools}
            card = (await http.get(f"{server.base}/.well-known/mcp/server-card.json")).json()
        return tools, {t["name"]: t["description"] for t in card["tools"]}

    first, first_card = await tools_and_card("first.log")
    [kept] = cache.glob("listing-*.json")
    assert not list((tmp_path / "home").rglob("listing-*"))
    saved = json.loads(kept.read_text())
    saved["definitions"]["whoami"]["description"] = "kept copy"
    kept.write_text(json.dumps(saved))

    again, card = await tools_and_card("second.log")
    assert again == {**first, "whoami": "kept copy"} and len(first) == len(all_specs())
    assert card == first_card == first


def test_listings_unused_for_a_day_are_removed_and_those_in_use_stay(tmp_path: Path) -> None:
    """Servers of other filters may share the cache: saving removes only listings nobody has read for a day (those
    of earlier code), and reading one marks it in use."""
    settings = Settings.from_env({"FAVMCP_HOME": str(tmp_path / "home"), "FAVMCP_CACHE_DIR": str(tmp_path / "c")})
    day_ago = time.time() - listings.UNUSED_SECONDS - 60
    small = Registry([s for s in all_specs() if s.name == "whoami"])
    key = listings.cache_key(settings)
    listings.save(settings, key, Listing.of(small), {})
    earlier, other = tmp_path / "c" / "listing-earlier.json", tmp_path / "c" / "listing-other-filters.json"
    for path in (earlier, other):
        path.write_text("{}")
    os.utime(earlier, (day_ago, day_ago))
    mine = tmp_path / "c" / f"listing-{key}.json"
    os.utime(mine, (day_ago, day_ago))

    cached, _ = listings.load_cached(settings)
    assert cached is not None and [t["name"] for t in cached.listing.tools["tools"]] == ["whoami"]
    assert mine.stat().st_mtime > day_ago + 60, "read: in use"
    listings.save(settings, "another", Listing.of(small), {})
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(["listing-another.json", mine.name, other.name])


async def test_under_the_core_listing_a_profile_bound_key_lists_its_whole_profile(core_app: App) -> None:
    """A key bound to a job profile lists that profile's tools: the core listing gives way to the profile's own,
    also for the profile's tools that are not core ones."""
    owner = await signup(core_app)
    made = await call(core_app, owner.key, "create_api_key", {"name": "desk", "profile": "front_desk"})
    assert made.ok, made.data
    listing, runner = served(core_app)
    profiled = {name: listing.narrowed(registry) for name, registry in core_app.runner.profiled.items()}
    server = build_server(listing, runner, stdio_credential=StdioCredential(made.data["api_key"]), profiled=profiled)
    async with Client(server) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    expected = {s.name for s in all_specs() if PROFILES["front_desk"].allows(s)}
    assert expected - CORE_TOOLS, "the profile has tools beyond the core ones"
    assert names == expected


def test_a_listing_is_kept_per_platform(tmp_path: Path) -> None:
    """An app given a platform of other domains (a test's extra domain) keeps its listing apart: a server of the
    composition root's domains never reads it."""
    settings = Settings.from_env({"FAVMCP_HOME": str(tmp_path)})
    whoami = Registry([s for s in all_specs() if s.name == "whoami"])
    listings.cached_or_built(settings, whoami, {}, [*DOMAINS, "ticker"])
    assert list((tmp_path / "cache").glob("listing-*.json")), "kept"
    assert listings.load_cached(settings)[0] is None, "not read by a server of the composition root's domains"
