"""Engines for SQLite (embedded default) and Postgres, and the unit-of-work session factory."""

from __future__ import annotations

import asyncio
import inspect
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from favmcp.db import sqlite


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"hide_parameters": True}  # bound values may be personal data: never logged
        if self.is_sqlite:
            _private_sqlite_file(url)
            kwargs["async_creator"] = self._connect_sqlite
            # Every unit of work ends in an explicit commit or rollback; a second rollback on check-in is
            # one more thread hop per call for nothing.
            kwargs["pool_reset_on_return"] = None
        else:
            kwargs.update(pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _sqlite_pragmas(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        # Read-only work takes no write lock on SQLite, so reads never queue behind writes.
        self.reader = self.engine.execution_options(favmcp_read_only=True)
        self.read_sessions = async_sessionmaker(self.reader, expire_on_commit=False, autoflush=True)
        # The handlers of a read-only profile run where the database itself refuses writes: a READ ONLY transaction
        # on Postgres (asyncpg begins it so, no extra statement), connections of their own with query_only on
        # SQLite. The runner's bookkeeping keeps using `transaction()`.
        self._guarded_engine: AsyncEngine | None = None
        if self.is_sqlite:
            self._guarded_engine = create_async_engine(url, **kwargs)
            _sqlite_pragmas(self._guarded_engine, query_only=True)
            guarded = self._guarded_engine.execution_options(favmcp_read_only=True)
        else:
            guarded = self.engine.execution_options(favmcp_read_only=True, postgresql_readonly=True)
        self.read_only_sessions = async_sessionmaker(guarded, expire_on_commit=False, autoflush=True)
        # SQLite lets one writer in at a time and makes the others retry with sleeps, which is unfair: a writer
        # can lose every race for seconds. Writers of this process queue here in arrival order instead;
        # BEGIN IMMEDIATE and the busy timeout still order them against other processes.
        self._write_queue = asyncio.Lock() if self.is_sqlite else None
        self._sqlite_reader: sqlite3.Connection | None = None
        self._pg_pool: asyncio.Future[Any] | None = None

    async def _connect_sqlite(self) -> sqlite.OneTripConnection:
        (database, *_), options = self.engine.dialect.create_connect_args(self.engine.url)
        return await sqlite.connect(database, **options, timeout=30)

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """A session for a unit of work that writes: on SQLite it waits its turn in this process first."""
        async with self._write_queue or nullcontext(), self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back on any exception."""
        async with self.write_session() as session, session.begin():
            yield session

    async def fetch_row(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        """One small committed read outside any session, at the cost floor (the credential check of every call).

        `sql` numbers its parameters $1, $2… On SQLite it runs on a plain sqlite3 connection on the event loop
        itself: an indexed read in WAL mode takes microseconds and never waits for a writer, where each hop to
        aiosqlite's thread costs more than the read. On Postgres: a prepared statement on a small pool of its
        own, one round trip (no pre-ping, no reset).
        """
        if self.is_sqlite:
            row = self._sqlite().execute(sql.replace("$", "?"), params).fetchone()
            return tuple(row) if row is not None else None
        pool = await self._pool()
        record = await pool.fetchrow(sql, *params)
        return tuple(record.values()) if record is not None else None

    def _sqlite(self) -> sqlite3.Connection:
        if self._sqlite_reader is None:
            (database, *_), options = self.engine.dialect.create_connect_args(self.engine.url)
            connection = sqlite3.connect(
                database, isolation_level=None, check_same_thread=False, uri=bool(options.get("uri"))
            )
            connection.execute("PRAGMA query_only=1")
            connection.execute("PRAGMA busy_timeout=1000")
            self._sqlite_reader = connection
        return self._sqlite_reader

    async def _pool(self) -> Any:
        if self._pg_pool is None:  # created once, also when the first calls arrive together
            import asyncpg

            _, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
            accepted = inspect.signature(asyncpg.connect).parameters
            self._pg_pool = asyncio.ensure_future(
                asyncpg.create_pool(
                    **{k: v for k, v in kwargs.items() if k in accepted}, min_size=1, max_size=10, reset=_no_reset
                )
            )
        try:
            return await asyncio.shield(self._pg_pool)
        except Exception:
            self._pg_pool = None  # a pool that failed to open is tried again by the next call
            raise

    async def dispose(self) -> None:
        if self._sqlite_reader is not None:
            self._sqlite_reader.close()
            self._sqlite_reader = None
        if self._pg_pool is not None:
            pool, self._pg_pool = self._pg_pool, None
            with suppress(Exception):  # a pool that never connected has nothing to close
                await (await pool).close()
        if self._guarded_engine is not None:
            await self._guarded_engine.dispose()
        await self.engine.dispose()


async def _no_reset(_connection: Any) -> None:
    """The fast-read pool only runs single SELECTs outside transactions: nothing to reset on release."""


def _private_sqlite_file(url: str) -> None:
    """The database holds personal data: create it 0600 before SQLite would (0644), and tighten one made that way
    by an older version. SQLite gives the -wal and -shm files the main file's mode."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for existing in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if os.name == "posix" and existing.exists() and existing.stat().st_uid == os.getuid():
                existing.chmod(existing.stat().st_mode & 0o600)
    except FileNotFoundError:  # no such directory: SQLite reports that in its own words when it connects
        pass


def _sqlite_pragmas(engine: AsyncEngine, *, query_only: bool = False) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE for writers; `query_only` connections refuse every write."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        if query_only:
            cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Reads run each statement at its own committed snapshot, as Postgres does under READ COMMITTED;
        # writers take the write lock up front so that they queue instead of failing.
        if not conn.get_execution_options().get("favmcp_read_only"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
