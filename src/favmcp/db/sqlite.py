"""aiosqlite with one trip to its thread per statement instead of four.

aiosqlite runs a connection on a thread of its own and hands each driver call to it: SQLAlchemy's cursor is
made, executed, read and closed in four trips, each a thread wake-up and an event-loop wake-up (~100 µs apiece on
a quiet machine, several times that under load). A statement of a tool call takes microseconds in SQLite itself,
so the trips were most of its cost. Here the thread makes, runs, reads and closes the sqlite3 cursor in one trip;
SQLAlchemy reads every row of a result up front anyway (it buffers them in its own adapter).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

Outcome = tuple[Any, int, int | None, list[Any]]


def _run(connection: sqlite3.Connection, sql: str, parameters: Any, many: bool) -> Outcome:
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneTripCursor:
    """The aiosqlite cursor API that SQLAlchemy's adapter uses, over results already read in full."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def execute(self, sql: str, parameters: Any = ()) -> OneTripCursor:
        return await self._go(sql, parameters, many=False)

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneTripCursor:
        return await self._go(sql, list(parameters), many=True)

    async def _go(self, sql: str, parameters: Any, *, many: bool) -> OneTripCursor:
        connection = self._connection
        self.description, self.rowcount, self.lastrowid, self._rows = await connection._execute(
            _run, connection._conn, sql, parameters, many
        )
        return self

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        count = size or self.arraysize
        rows, self._rows = self._rows[:count], self._rows[count:]
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def close(self) -> None:
        self._rows = []

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


class _NewCursor:
    """What `connection.cursor()` returns: entered (as SQLAlchemy does) without a trip to the thread."""

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection

    async def __aenter__(self) -> OneTripCursor:
        return OneTripCursor(self._connection)

    async def __aexit__(self, *_exc: object) -> None:
        return None


class OneTripConnection(aiosqlite.Connection):
    def cursor(self) -> Any:  # aiosqlite's is an awaitable context manager; SQLAlchemy only enters it
        return _NewCursor(self)

    # A read runs without BEGIN (each statement at its own snapshot), so SQLAlchemy's rollback when its session
    # closes has nothing to end: no trip for it. Reading in_transaction from this thread is safe because a
    # connection serves one session at a time, and its thread is idle between that session's statements.
    async def commit(self) -> None:
        if self._conn.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            await super().rollback()


async def connect(database: str, **options: Any) -> OneTripConnection:
    connection = OneTripConnection(lambda: sqlite3.connect(database, **options), iter_chunk_size=64)
    await connection  # starts its thread and opens the file there
    return connection
