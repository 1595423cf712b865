"""Every storage test runs on SQLite and on Postgres.

Postgres: FAVMCP_TEST_DATABASE_URL names a fresh database to use; without it a new database is
created on the local server (postgres@127.0.0.1:5432) for the run. When Postgres cannot be
reached its tests are skipped, unless FAVMCP_REQUIRE_POSTGRES=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from favmcp.app import App
from favmcp.db.engine import Database
from favmcp.db.migrate import upgrade
from tests.support import FakeClock, Owner, fresh_postgres_beside, make_settings, signup

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def _reachable(url: str) -> bool:
    import asyncpg

    base = make_url(url)
    try:
        conn = await asyncpg.connect(
            host=base.host, port=base.port or 5432, user=base.username, password=base.password,
            database=base.database or "postgres", timeout=5,
        )  # fmt: skip
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str | None]:
    """FAVMCP_TEST_DATABASE_URL when given (CI hands a fresh one); else a new database, dropped afterwards."""
    given = os.environ.get("FAVMCP_TEST_DATABASE_URL")
    if not await _reachable(given or PG_DEFAULT):
        yield None
        return
    async with AsyncExitStack() as stack:
        url = given or await stack.enter_async_context(fresh_postgres_beside(PG_DEFAULT))
        db = Database(url)
        await upgrade(db)
        await db.dispose()
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'favmcp.db'}"
    if postgres_url is None:
        if os.environ.get("FAVMCP_REQUIRE_POSTGRES") == "1":
            pytest.fail("Postgres is required (FAVMCP_REQUIRE_POSTGRES=1) but could not be reached")
        pytest.skip("Postgres not reachable")
    return postgres_url


@pytest.fixture
async def own_url(database_url: str) -> AsyncIterator[str]:
    """A database of the test's own, for tests that touch every row of a table (resealing, the outbox's
    dispatcher): SQLite's file is the test's already; on Postgres a fresh database, not yet migrated."""
    if database_url.startswith("sqlite"):
        yield database_url
        return
    async with fresh_postgres_beside(database_url) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per worker: each test's app starts from a copy of it (migrating a fresh
    file costs a quarter of a second, a copy a millisecond; App.open still checks that the copy is current)."""
    path = tmp_path_factory.mktemp("template") / "favmcp.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(db)
    await db.dispose()
    return path


def copy_sqlite(template: Path, database_url: str) -> None:
    """The template into the test's own SQLite file, unless the test made that file already."""
    target = Path(make_url(database_url).database or "")
    if target.exists():
        return
    with sqlite3.connect(template) as source, sqlite3.connect(target) as copy:
        source.backup(copy)


@pytest.fixture
async def app(database_url: str, tmp_path: Path, clock: FakeClock, sqlite_template: Path) -> AsyncIterator[App]:
    if database_url.startswith("sqlite"):
        copy_sqlite(sqlite_template, database_url)
    application = await App.open(make_settings(tmp_path, database_url), clock=clock)
    yield application
    await application.close()


@pytest.fixture
async def owner(app: App) -> Owner:
    return await signup(app)
