"""Data access bound to one workspace: everything a handler needs, and no way to reach another workspace.

Handlers get this, never the session. Every statement it builds or runs carries `workspace_id = :ws`; rows it
adds are stamped with it. Domain code brings where-clauses (`col(Member.email) == email`), never statements.

A viewer who sees less than the whole workspace (a staff user: their bookings and those bookings' customers) adds
one clause per model to every statement built here, reads and writes alike; invariant code reads `unfiltered`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import CompoundSelect, Select, and_, delete, exists, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel, select
from sqlmodel.sql.expression import SelectOfScalar

from favmcp.core.errors import not_found
from favmcp.core.pagination import PageParams, decode_cursor, encode_cursor
from favmcp.db.tenancy import Workspace

M = TypeVar("M", bound=SQLModel)
T = TypeVar("T")


def column(model: type[SQLModel], name: str) -> Any:
    """A model's column by name (every table here has `workspace_id`)."""
    return getattr(model, name)


def insert_for(session: AsyncSession, table: Any) -> Any:
    """INSERT that speaks ON CONFLICT on both engines (SQLite and Postgres share the clause)."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@dataclass(frozen=True)
class Viewer:
    """Someone who sees only some rows of the workspace: per model, the clause a row must meet to be seen (models
    not named are seen whole). Clauses are subqueries, evaluated by each statement: no extra round trip."""

    user_id: str
    rows: Mapping[type[SQLModel], ColumnElement[bool]]


class WorkspaceDB:
    def __init__(self, session: AsyncSession, workspace_id: str, viewer: Viewer | None = None) -> None:
        self._session = session
        self.workspace_id = workspace_id
        self.viewer = viewer

    @property
    def unfiltered(self) -> WorkspaceDB:
        """The whole workspace whoever asks: for invariants (an overlap check sees every booking), never for
        answers."""
        return self if self.viewer is None else WorkspaceDB(self._session, self.workspace_id)

    # -- building queries ------------------------------------------------------------------------------

    def owns(self, model: type[SQLModel]) -> ColumnElement[bool]:
        """The clause that keeps `model` to this workspace and to what the viewer may see (for joined tables)."""
        mine = column(model, "workspace_id") == self.workspace_id
        seen = self.viewer.rows.get(model) if self.viewer is not None else None
        return mine if seen is None else and_(mine, seen)

    def select(self, model: type[M], *where: Any) -> SelectOfScalar[M]:
        return select(model).where(self.owns(model), *where)

    def select_columns(self, model: type[SQLModel], *columns: Any) -> Select[Any]:
        """SELECT of columns or aggregates over `model` (joins add `owns(...)` for the joined table)."""
        return select(*columns).select_from(model).where(self.owns(model))

    def exists(self, model: type[SQLModel], *where: Any) -> ColumnElement[bool]:
        """EXISTS (a row of `model` in this workspace matching `where`), for use inside another query."""
        return exists().where(self.owns(model), *where)

    # -- reading ---------------------------------------------------------------------------------------

    async def all(self, stmt: SelectOfScalar[M]) -> list[M]:
        return list((await self._session.execute(stmt)).scalars().all())

    async def first(self, stmt: SelectOfScalar[M]) -> M | None:
        return (await self._session.execute(stmt.limit(1))).scalars().first()

    async def rows(self, stmt: Select[Any] | CompoundSelect[Any]) -> list[Any]:
        """Tuples of a `select_columns` query (or a UNION of them)."""
        return list((await self._session.execute(stmt)).all())

    async def get(self, model: type[M], ident: str, *, lock: bool = False, fresh: bool = False) -> M | None:
        """One row by id. lock: SELECT ... FOR UPDATE (writers to it queue); fresh: re-read, never a stale copy."""
        stmt = self.select(model, column(model, "id") == ident)
        if lock:
            stmt = stmt.with_for_update()
        if lock or fresh:
            stmt = stmt.execution_options(populate_existing=True)
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def count(self, model: type[SQLModel], *where: Any) -> int:
        stmt = select(func.count()).select_from(model).where(self.owns(model), *where)
        return int((await self._session.execute(stmt)).scalar_one())

    async def page(self, stmt: SelectOfScalar[M], id_column: Any, params: PageParams) -> tuple[list[M], str | None]:
        """Keyset pagination, newest first (ids sort by creation); returns the page and the next cursor."""
        return await self._keyset(stmt, id_column, params, self.all, lambda row: row.id)

    async def page_rows(self, stmt: Select[Any], id_column: Any, params: PageParams) -> tuple[list[Any], str | None]:
        """`page` for a `select_columns` query whose first column is the model (say, a row and an aggregate)."""
        return await self._keyset(stmt, id_column, params, self.rows, lambda row: row[0].id)

    async def page_columns(self, stmt: Select[Any], id_column: Any, params: PageParams) -> tuple[list[Any], str | None]:
        """`page` for a `select_columns` query of plain columns, the id first."""
        return await self._keyset(stmt, id_column, params, self.rows, lambda row: row[0])

    async def _keyset(
        self, stmt: Any, id_column: Any, params: PageParams, fetch: Any, id_of: Callable[[Any], str]
    ) -> tuple[list[Any], str | None]:
        if params.cursor:
            stmt = stmt.where(id_column < str(decode_cursor(params.cursor).get("id", "")))
        rows = await fetch(stmt.order_by(id_column.desc()).limit(params.limit + 1))
        if len(rows) <= params.limit:
            return rows, None
        rows = rows[: params.limit]
        return rows, encode_cursor({"id": id_of(rows[-1])})

    async def workspace(self, *, lock: bool = False) -> Workspace:
        """The workspace row itself; lock=True serialises workspace-wide invariants (owners, invites)."""
        stmt = select(Workspace).where(Workspace.id == self.workspace_id)
        if lock:
            # FOR NO KEY UPDATE: rows that merely point at the workspace (idempotency records, spent tokens,
            # audit rows) take a key-share lock on it; a full FOR UPDATE would deadlock with them.
            stmt = stmt.with_for_update(key_share=True).execution_options(populate_existing=True)
        ws = (await self._session.execute(stmt)).scalar_one_or_none()
        if ws is None:
            raise not_found("workspace", self.workspace_id)
        return ws

    # -- writing ---------------------------------------------------------------------------------------

    def add(self, obj: M) -> M:
        obj.workspace_id = self.workspace_id
        self._session.add(obj)
        return obj

    async def insert_or_ignore(self, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> int:
        """INSERT ... ON CONFLICT DO NOTHING: concurrent writers of the same key both succeed; returns rows added."""
        if not rows:
            return 0
        table = model.__table__  # type: ignore[attr-defined]
        stmt = insert_for(self._session, table).values([{**r, "workspace_id": self.workspace_id} for r in rows])
        result = await self._session.execute(stmt.on_conflict_do_nothing())
        return int(getattr(result, "rowcount", 0) or 0)

    async def upsert(
        self, model: type[SQLModel], values: dict[str, Any], *, key: list[str], changes: list[str]
    ) -> None:
        """INSERT, or on a clash of `key` UPDATE the `changes` columns; atomic under concurrency."""
        table = model.__table__  # type: ignore[attr-defined]
        row = {**values, "workspace_id": self.workspace_id}
        stmt = insert_for(self._session, table).values(row)
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=key, set_={c: row[c] for c in changes}, where=table.c.workspace_id == self.workspace_id
            )
        )

    async def save_settings(
        self, model: type[M], defaults: dict[str, Any], given: dict[str, Any], *, now: datetime
    ) -> tuple[M, list[str]]:
        """Save `given` into the workspace's one row of `model` (settings: made from `defaults` on first save), and
        return the saved row and the fields that changed. The row first, then its lock: concurrent saves take
        turns, and each compares with what the one before it saved, so the row ends as one caller's whole change,
        never a mix (a value equal to a stale default is still written)."""
        await self.insert_or_ignore(model, [defaults | {"updated_at": now}])
        locked = self.select(model).with_for_update().execution_options(populate_existing=True)
        current = await self.first(locked)
        assert current is not None
        changes = {k: v for k, v in given.items() if getattr(current, k) != v}
        if changes:
            await self.update(model, values=changes | {"updated_at": now})
        saved = await self.first(self.select(model).execution_options(populate_existing=True))
        assert saved is not None
        return saved, sorted(changes)

    async def update(self, model: type[SQLModel], *where: Any, values: dict[str, Any]) -> int:
        """A conditional UPDATE in this workspace; returns how many rows it changed."""
        stmt = update(model).where(self.owns(model), *where).values(values)
        result = await self._session.execute(stmt.execution_options(synchronize_session="fetch"))
        return int(getattr(result, "rowcount", 0) or 0)

    async def update_returning(self, model: type[SQLModel], *where: Any, values: dict[str, Any]) -> list[str]:
        """A conditional UPDATE that returns the ids it changed (the winner of a race knows it won)."""
        stmt = update(model).where(self.owns(model), *where).values(values).returning(column(model, "id"))
        result = await self._session.execute(stmt.execution_options(synchronize_session="fetch"))
        return [str(i) for i in result.scalars().all()]

    async def delete(self, model: type[SQLModel], *where: Any) -> int:
        result = await self._session.execute(delete(model).where(self.owns(model), *where))
        return int(getattr(result, "rowcount", 0) or 0)

    async def flush(self) -> None:
        await self._session.flush()

    async def refresh(self, obj: SQLModel) -> None:
        await self._session.refresh(obj)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: an error inside (a unique-index race lost) undoes only what happened inside."""
        async with self._session.begin_nested():
            yield
