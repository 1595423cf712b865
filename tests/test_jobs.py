"""Work the server does by itself: the domains' jobs (run by the worker once per workspace and period, by one
worker among many) and provider callbacks (a domain's HTTP route), both through Runner.run_system; and provider
calls made outside the unit of work (a tool's prepare step, a job's fetch), so that no write lock waits on a
provider. Exercised with a domain of the test's own, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import registry as orm_registry
from sqlmodel import Field, SQLModel, col
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from favmcp import composition
from favmcp.app import App
from favmcp.core.errors import ErrorCode, FavError
from favmcp.core.ids import new_id
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain, Job, Platform
from favmcp.registry.jobs import RETRY_AFTER, Scheduler
from favmcp.registry.models import AuditEvent, JobRun
from favmcp.registry.runner import Runner
from favmcp.registry.spec import WriteInput, tool
from favmcp.transports.http import build_http_app
from tests.support import FakeClock, Owner, call, make_settings, signup, unique_email

EVERY = timedelta(hours=1)


class TickBase(SQLModel, registry=orm_registry()):
    """Tables of the test domain live apart from the product's metadata (and its migrations)."""


class Tick(TickBase, table=True):
    __tablename__ = "test_ticks"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(max_length=40, index=True)
    source: str = Field(max_length=40)


class Switch:
    refuse = False


async def tick(ctx: ToolContext) -> None:
    ctx.db.add(Tick(id=new_id("tik"), workspace_id="", source="job"))
    ctx.record_change(ticks=1)
    if Switch.refuse:
        raise FavError(ErrorCode.conflict, "The ticker refuses.")


class Provider:
    """A provider that answers only once someone else has written: it proves nothing holds the write lock."""

    written: asyncio.Event
    calls = 0

    @classmethod
    async def answer(cls) -> str:
        cls.calls += 1
        with anyio.fail_after(10):
            await cls.written.wait()
        return f"answer-{cls.calls}"


async def fetch_answer(ctx: ToolContext) -> str:
    return await Provider.answer()


async def record_answer(ctx: ToolContext) -> None:
    ctx.db.add(Tick(id=new_id("tik"), workspace_id="", source=str(ctx.prepared)))
    ctx.record_change(answer=ctx.prepared)


async def prepare_call(ctx: ToolContext, args: CallProviderInput) -> str:
    if args.refuse:
        raise FavError(ErrorCode.invalid_state, "The provider refused.")
    return await Provider.answer()


class CallProviderInput(WriteInput):
    refuse: bool = False


class Answer(BaseModel):
    answer: str


@tool(domain="ticker", title="Call provider", hints="W O", scope="members:write", prepare=prepare_call)
async def call_provider(ctx: ToolContext, args: CallProviderInput) -> Answer:
    """Ask the provider, then record its answer."""
    ctx.db.add(Tick(id=new_id("tik"), workspace_id="", source=str(ctx.prepared)))
    return Answer(answer=str(ctx.prepared))


async def hook(request: Request, runner: Runner) -> Response:
    async def record(ctx: ToolContext) -> None:
        ctx.db.add(Tick(id=new_id("tik"), workspace_id="", source="hook"))

    try:
        await runner.run_system(request.path_params["workspace_id"], "hook:tick", record)
    except FavError as exc:
        return JSONResponse({"error": exc.code.value}, status_code=404)
    return JSONResponse({"received": True})


TICKER = Domain(
    name="ticker",
    tools=[call_provider],
    jobs=[Job("tick", EVERY, tick), Job("ask", EVERY, record_answer, fetch=fetch_answer)],
    http_routes={"POST /hooks/tick/{workspace_id}": hook},
)


@pytest.fixture
async def ticker_app(database_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    Switch.refuse = False
    Provider.written, Provider.calls = asyncio.Event(), 0
    platform = Platform([*composition.platform().domains, TICKER])
    app = await App.open(make_settings(tmp_path, database_url), clock=clock, platform=platform)
    async with app.db.engine.begin() as conn:
        await conn.run_sync(TickBase.metadata.create_all)
    yield app
    async with app.db.engine.begin() as conn:
        await conn.run_sync(TickBase.metadata.drop_all)
    await app.close()


async def ticks(app: App, owner: Owner, source: str = "job") -> int:
    async with app.db.transaction() as session:
        stmt = select(Tick).where(col(Tick.workspace_id) == owner.workspace_id, col(Tick.source) == source)
        return len(list((await session.execute(stmt)).scalars()))


def scheduler(app: App) -> Scheduler:
    return Scheduler(app.runner, [job for job in app.runner.platform.jobs if job.name == "tick"])


async def test_a_job_runs_once_per_workspace_and_period(ticker_app: App, clock: FakeClock) -> None:
    a, b = await signup(ticker_app), await signup(ticker_app)
    assert await scheduler(ticker_app).run_due() >= 2
    assert await scheduler(ticker_app).run_due() == 0, "nothing is due again within the period"
    assert (await ticks(ticker_app, a), await ticks(ticker_app, b)) == (1, 1)
    clock.advance(seconds=EVERY.total_seconds())
    await scheduler(ticker_app).run_due()
    assert (await ticks(ticker_app, a), await ticks(ticker_app, b)) == (2, 2)
    async with ticker_app.db.transaction() as session:
        audited = (
            await session.execute(
                select(AuditEvent).where(col(AuditEvent.workspace_id) == a.workspace_id, AuditEvent.tool == "job:tick")
            )
        ).scalars()
        rows = list(audited)
    assert len(rows) == 2 and all(r.user_id is None and r.changes == {"ticks": 1} for r in rows)


async def test_of_many_workers_one_runs_each_period(ticker_app: App) -> None:
    owners = [await signup(ticker_app) for _ in range(3)]
    claimed = await asyncio.gather(*[scheduler(ticker_app).run_due() for _ in range(8)])
    assert sum(claimed) >= len(owners)
    assert [await ticks(ticker_app, o) for o in owners] == [1, 1, 1]


async def test_a_refused_run_changes_nothing_and_is_tried_again_soon(ticker_app: App, clock: FakeClock) -> None:
    owner = await signup(ticker_app)
    Switch.refuse = True
    await scheduler(ticker_app).run_due()
    assert await ticks(ticker_app, owner) == 0
    async with ticker_app.db.transaction() as session:
        run = await session.get(JobRun, (owner.workspace_id, "tick"))
        assert run is not None and run.last_outcome == "conflict"
        assert run.next_run_at == clock.now() + RETRY_AFTER, "not a whole period later"
    Switch.refuse = False
    clock.advance(seconds=RETRY_AFTER.total_seconds())
    await scheduler(ticker_app).run_due()
    assert await ticks(ticker_app, owner) == 1


async def test_a_run_that_changes_nothing_leaves_no_audit_row(ticker_app: App) -> None:
    owner = await signup(ticker_app)

    async def look(ctx: ToolContext) -> int:
        return len(await ctx.db.all(ctx.db.select(Tick)))

    assert await ticker_app.runner.run_system(owner.workspace_id, "job:look", look) == 0
    async with ticker_app.db.transaction() as session:
        rows = (await session.execute(select(AuditEvent).where(AuditEvent.tool == "job:look"))).scalars()
        assert list(rows) == []


async def test_run_system_refuses_a_workspace_that_does_not_exist(ticker_app: App) -> None:
    with pytest.raises(FavError) as refused:
        await ticker_app.runner.run_system("wsp_missing", "job:tick", tick)
    assert refused.value.code is ErrorCode.not_found


async def test_a_domain_route_is_served_over_http_for_post_only(ticker_app: App) -> None:
    owner = await signup(ticker_app)
    http = build_http_app(ticker_app, run_dispatcher=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http), base_url="http://127.0.0.1") as client:
        done = await client.post(f"/hooks/tick/{owner.workspace_id}", content=b"{}")
        assert done.status_code == 200 and done.json() == {"received": True}
        assert (await client.get(f"/hooks/tick/{owner.workspace_id}")).status_code == 405
        assert (await client.post("/hooks/tick/wsp_missing", content=b"{}")).status_code == 404
    assert await ticks(ticker_app, owner, "hook") == 1


async def someone_writes(app: App, owner: Owner) -> None:
    made = await call(app, owner.key, "create_member", {"name": "Meanwhile", "email": unique_email("w")})
    assert made.ok, made.data
    Provider.written.set()


async def test_a_tools_provider_call_holds_no_write_lock(ticker_app: App) -> None:
    owner = await signup(ticker_app)
    asked, _ = await asyncio.gather(call(ticker_app, owner.key, "call_provider", {}), someone_writes(ticker_app, owner))
    assert asked.ok and asked.data == {"answer": "answer-1"}, asked.data
    assert await ticks(ticker_app, owner, "answer-1") == 1, "the handler records what the provider answered"
    refused = await call(ticker_app, owner.key, "call_provider", {"refuse": True})
    assert refused.data["error"]["code"] == "invalid_state"


async def test_a_jobs_fetch_holds_no_write_lock(ticker_app: App) -> None:
    owner = await signup(ticker_app)
    ask = Scheduler(ticker_app.runner, [job for job in ticker_app.runner.platform.jobs if job.name == "ask"])
    await asyncio.gather(ask.run_due(), someone_writes(ticker_app, owner))
    async with ticker_app.db.transaction() as session:
        stmt = select(Tick.source).where(col(Tick.workspace_id) == owner.workspace_id)
        sources = list((await session.execute(stmt)).scalars())
    assert len(sources) == 1 and sources[0].startswith("answer-"), "the run recorded what the fetch brought"


def test_prepare_is_for_tools_that_write_and_reach_a_provider() -> None:
    with pytest.raises(TypeError, match="prepare"):
        tool(domain="ticker", title="Bad", hints="W", scope="members:write", prepare=prepare_call)(
            call_provider.handler
        )
