"""Keyset pagination by id (ids sort by creation): a late page costs what the first does."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from favmcp.core.pagination import PageParams, decode_cursor, encode_cursor

T = TypeVar("T")


async def page_by_id(
    session: AsyncSession, stmt: SelectOfScalar[T], id_column: Any, params: PageParams
) -> tuple[list[T], str | None]:
    """Newest first. Returns the page and the next cursor (None on the last page)."""
    if params.cursor:
        stmt = stmt.where(id_column < str(decode_cursor(params.cursor).get("id", "")))
    rows = list((await session.execute(stmt.order_by(id_column.desc()).limit(params.limit + 1))).scalars())
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    return rows, encode_cursor({"id": rows[-1].id})  # type: ignore[attr-defined]
