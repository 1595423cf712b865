"""Data access bound to one workspace. Handlers get this, not a raw session, so they cannot reach another."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Delete, Update, delete, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, select
from sqlmodel.sql.expression import SelectOfScalar

M = TypeVar("M", bound=SQLModel)


def column(model: type[SQLModel], name: str) -> Any:
    """A model's column by name (every table here has `id` and `workspace_id`)."""
    return getattr(model, name)


class WorkspaceDB:
    def __init__(self, session: AsyncSession, workspace_id: str) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def select(self, model: type[M]) -> SelectOfScalar[M]:
        return select(model).where(column(model, "workspace_id") == self.workspace_id)

    def update(self, model: type[M]) -> Update:
        return update(model).where(column(model, "workspace_id") == self.workspace_id)

    def delete(self, model: type[M]) -> Delete:
        return delete(model).where(column(model, "workspace_id") == self.workspace_id)

    async def get(self, model: type[M], ident: str, *, for_update: bool = False) -> M | None:
        stmt = self.select(model).where(column(model, "id") == ident)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def all(self, stmt: SelectOfScalar[M]) -> list[M]:
        return list((await self.session.execute(stmt)).scalars().all())

    async def first(self, stmt: SelectOfScalar[M]) -> M | None:
        return (await self.session.execute(stmt.limit(1))).scalars().first()

    async def count(self, model: type[SQLModel], *where: Any) -> int:
        stmt = select(func.count()).select_from(model).where(column(model, "workspace_id") == self.workspace_id, *where)
        return int((await self.session.execute(stmt)).scalar_one())

    def add(self, obj: M) -> M:
        obj.workspace_id = self.workspace_id
        self.session.add(obj)
        return obj

    async def flush(self) -> None:
        await self.session.flush()
