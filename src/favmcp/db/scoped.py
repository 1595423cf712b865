"""Data access bound to one workspace. Handlers get this, not a raw session, so they cannot reach another."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, Update, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

M = TypeVar("M", bound=SQLModel)


class WorkspaceDB:
    def __init__(self, session: AsyncSession, workspace_id: str) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def select(self, model: type[M]) -> Select[tuple[M]]:
        return select(model).where(model.workspace_id == self.workspace_id)  # type: ignore[attr-defined]

    def update(self, model: type[M]) -> Update:
        return update(model).where(model.workspace_id == self.workspace_id)  # type: ignore[attr-defined]

    async def get(self, model: type[M], ident: str, *, for_update: bool = False) -> M | None:
        stmt = self.select(model).where(model.id == ident)  # type: ignore[attr-defined]
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def all(self, stmt: Select[tuple[M]]) -> list[M]:
        return list((await self.session.execute(stmt)).scalars().all())

    async def first(self, stmt: Select[tuple[M]]) -> M | None:
        return (await self.session.execute(stmt.limit(1))).scalars().first()

    async def count(self, model: type[SQLModel], *where: Any) -> int:
        stmt = (
            select(func.count())
            .select_from(model)
            .where(
                model.workspace_id == self.workspace_id,  # type: ignore[attr-defined]
                *where,
            )
        )
        return int((await self.session.execute(stmt)).scalar_one())

    def add(self, obj: M) -> M:
        obj.workspace_id = self.workspace_id  # type: ignore[attr-defined]
        self.session.add(obj)
        return obj

    async def flush(self) -> None:
        await self.session.flush()
