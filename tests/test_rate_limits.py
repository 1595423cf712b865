"""Rate limits per credential (or client address) and class of tool, shared by replicas through the database: a
burst over a limit set by the environment is refused over MCP (retry_after) and REST (429) by a real server; two
App instances on one database together stay within a limit once they have reconciled; on SQLite and Postgres."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import select
from sqlmodel import col

from favmcp import composition
from favmcp.app import App
from favmcp.auth import credentials
from favmcp.auth.models import RateLimitBucket
from favmcp.auth.ratelimit import CALL_WINDOW, CallClass, class_of
from favmcp.config import Settings
from favmcp.registry.results import CallResult
from tests.servers import http_server, server_env
from tests.support import FakeClock, Owner, call, error_code, make_settings, signup, unique_address

SERVICE = {"name": "Massage", "duration_minutes": 60, "unit_amount": 5000}


async def replica(tmp_path: Path, database_url: str, clock: FakeClock, name: str, **limits: int) -> App:
    """Another process's App on the same database (its own buckets, its own reconciliation)."""
    home = tmp_path / name
    home.mkdir()
    return await App.open(make_settings(home, database_url, **limits), clock=clock)


@pytest.fixture
async def replicas(tmp_path: Path, database_url: str, clock: FakeClock, app: App) -> AsyncIterator[tuple[App, App]]:
    first = await replica(tmp_path, database_url, clock, "a", rate_limit_reads=10)
    second = await replica(tmp_path, database_url, clock, "b", rate_limit_reads=10)
    yield first, second
    await first.close()
    await second.close()


def retry_after(result: CallResult) -> int:
    assert error_code(result) == "rate_limited", result.data
    assert result.data["error"]["retryable"] is True
    return int(result.data["error"]["retry_after"])


def seconds_left(clock: FakeClock) -> int:
    now = clock.now().timestamp()
    return math.ceil(int(now) // CALL_WINDOW * CALL_WINDOW + CALL_WINDOW - now)


def test_tools_fall_into_reads_writes_and_sends() -> None:
    specs = {spec.name: spec for spec in composition.platform().specs}
    assert class_of(specs["list_services"]) == CallClass.reads
    assert class_of(specs["create_service"]) == CallClass.writes
    assert class_of(specs["send_message"]) == CallClass.sends
    assert class_of(specs["send_campaign"]) == CallClass.sends


def test_limits_come_from_the_environment(tmp_path: Path) -> None:
    env = {"FAVMCP_HOME": str(tmp_path), "FAVMCP_SECRET_KEY": "k"}
    defaults = Settings.from_env(env)
    assert (defaults.rate_limit_reads, defaults.rate_limit_writes, defaults.rate_limit_sends) == (1200, 300, 60)
    limits = {"FAVMCP_RATE_LIMIT_READS": "7", "FAVMCP_RATE_LIMIT_WRITES": "0", "FAVMCP_RATE_LIMIT_SENDS": "3"}
    chosen = Settings.from_env({**env, **limits})
    assert (chosen.rate_limit_reads, chosen.rate_limit_writes, chosen.rate_limit_sends) == (7, 0, 3)
    with pytest.raises(ValueError, match="FAVMCP_RATE_LIMIT_SENDS"):
        Settings.from_env({**env, "FAVMCP_RATE_LIMIT_SENDS": "ten"})


async def test_a_burst_over_the_limit_is_refused_over_mcp_and_rest(
    app: App, owner: Owner, database_url: str, tmp_path: Path
) -> None:
    env = {**server_env(database_url, tmp_path), "FAVMCP_RATE_LIMIT_READS": "5", "FAVMCP_NO_DISPATCHER": "1"}
    headers = {"Authorization": f"Bearer {owner.key}"}
    async with (
        http_server(env, tmp_path / "server.log") as server,
        httpx2.AsyncClient(headers=headers, timeout=30) as transport,
        Client(streamable_http_client(server.url, http_client=transport), read_timeout_seconds=30) as client,
    ):
        # Windows are whole minutes of the real clock: the burst and the REST call must fall in one of them.
        if (left := CALL_WINDOW - time.time() % CALL_WINDOW) < 20:
            await anyio.sleep(left + 0.5)
        answers = [await client.call_tool("list_services", {}) for _ in range(6)]
        assert [a.is_error for a in answers] == [False] * 5 + [True]
        error = json.loads(answers[5].content[0].text)  # type: ignore[union-attr]
        assert error["code"] == "rate_limited" and error["retryable"] is True, error
        assert 1 <= error["retry_after"] <= CALL_WINDOW
        # Writes are a class of their own: the exhausted reads do not stop one.
        created = await client.call_tool("create_service", SERVICE)
        assert not created.is_error, created
        async with httpx.AsyncClient(headers=headers, timeout=30) as http:
            refused = await http.get(f"{server.base}/v1/services")
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= CALL_WINDOW
        assert refused.json()["code"] == "rate_limited"
        # Another credential has buckets of its own.
        other = await signup(app)
        async with httpx.AsyncClient(timeout=30) as http:
            fine = await http.get(f"{server.base}/v1/services", headers={"Authorization": f"Bearer {other.key}"})
        assert fine.status_code == 200, fine.text


async def test_two_replicas_together_stay_within_the_limit(replicas: tuple[App, App], clock: FakeClock) -> None:
    first, second = replicas
    owner = await signup(first)
    assert all([(await call(first, owner.key, "list_services")).ok for _ in range(6)])
    await first.runner.limits.reconcile()
    # The second learns the first's 6 at its first call's reconciliation, and admits what is left of 10.
    answers = [await call(second, owner.key, "list_services") for _ in range(6)]
    assert [a.ok for a in answers] == [True] * 4 + [False, False]
    assert retry_after(answers[4]) == seconds_left(clock)
    await second.runner.limits.reconcile()
    await first.runner.limits.reconcile()
    assert retry_after(await call(first, owner.key, "list_services")) == seconds_left(clock)
    # A new minute, a new window, for both.
    clock.advance(seconds=seconds_left(clock))
    assert (await call(first, owner.key, "list_services")).ok
    assert (await call(second, owner.key, "list_services")).ok


async def test_classes_are_counted_apart(tmp_path: Path, database_url: str, clock: FakeClock, app: App) -> None:
    limited = await replica(
        tmp_path, database_url, clock, "c", rate_limit_reads=2, rate_limit_writes=1, rate_limit_sends=1
    )
    try:
        owner = await signup(limited)
        reads = [await call(limited, owner.key, "list_services") for _ in range(3)]
        assert [r.ok for r in reads] == [True, True, False]
        writes = [await call(limited, owner.key, "create_service", SERVICE) for _ in range(2)]
        assert writes[0].ok and retry_after(writes[1]) > 0
        # A send is counted before its arguments are checked: a flood of bad calls is a flood all the same.
        assert error_code(await call(limited, owner.key, "send_message", {})) == "validation_failed"
        assert retry_after(await call(limited, owner.key, "send_message", {})) > 0
    finally:
        await limited.close()


async def test_calls_without_a_credential_are_limited_per_address(
    tmp_path: Path, database_url: str, clock: FakeClock, app: App
) -> None:
    limited = await replica(tmp_path, database_url, clock, "d", rate_limit_reads=2)
    try:
        here, there = unique_address(), unique_address()

        async def whoami(address: str) -> Any:
            return await limited.runner.call("whoami", {}, credential=None, client_address=address)

        assert [(await whoami(here)).ok for _ in range(3)] == [True, True, False]
        assert (await whoami(there)).ok
        await limited.runner.limits.reconcile()
        async with limited.db.transaction() as session:
            keys = (await session.execute(select(col(RateLimitBucket.key)))).scalars().all()
        mine = limited.runner.limits.subject(None, here)
        assert any(mine in key for key in keys), "the address's calls are shared through the database"
        assert not any(here in key or there in key for key in keys), "but no address is stored"
    finally:
        await limited.close()


async def test_a_publishable_key_is_limited_per_visitor_address(
    tmp_path: Path, database_url: str, clock: FakeClock, app: App
) -> None:
    """Every visitor of a page shares its publishable key: each address has the key's limits to itself."""
    limited = await replica(tmp_path, database_url, clock, "p", rate_limit_reads=2)
    try:
        owner = await signup(limited)
        made = await call(
            limited,
            owner.key,
            "create_api_key",
            {"name": "Page", "publishable": True, "allowed_origins": ["https://studio.example"]},
        )
        assert made.ok, made.data
        page_key, here, there = made.data["api_key"], unique_address(), unique_address()

        async def services(address: str) -> CallResult:
            rest = credentials.REST_REQUEST.set(True)  # a publishable key works on the REST API only
            try:
                return await limited.runner.call("list_services", {}, credential=page_key, client_address=address)
            finally:
                credentials.REST_REQUEST.reset(rest)

        assert [(await services(here)).ok for _ in range(3)] == [True, True, False]
        assert (await services(there)).ok, "another visitor of the page is not held back"
        assert [(await call(limited, owner.key, "list_services")).ok for _ in range(3)] == [True, True, False]
    finally:
        await limited.close()


async def test_no_limit_when_set_to_zero(tmp_path: Path, database_url: str, clock: FakeClock, app: App) -> None:
    unlimited = await replica(tmp_path, database_url, clock, "e", rate_limit_reads=0)
    try:
        owner = await signup(unlimited)
        assert all([(await call(unlimited, owner.key, "list_services")).ok for _ in range(30)])
        assert unlimited.runner.limits.buckets.get((owner.key_id, CallClass.reads)) is None
    finally:
        await unlimited.close()
