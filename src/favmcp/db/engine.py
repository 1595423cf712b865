"""Engines for SQLite (embedded default) and Postgres, and the unit-of-work session factory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"hide_parameters": True}  # bound values may be personal data: never logged
        if self.is_sqlite:
            _private_sqlite_file(url)
            kwargs["connect_args"] = {"timeout": 30}
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

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


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


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE for writers."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Reads run each statement at its own committed snapshot, as Postgres does under READ COMMITTED;
        # writers take the write lock up front so that they queue instead of failing.
        if not conn.get_execution_options().get("favmcp_read_only"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
