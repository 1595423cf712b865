"""The SQL statements a piece of code runs, counted at the driver: for tests that a change saves round trips."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from favmcp.app import App


@contextmanager
def statements(app: App) -> Iterator[list[str]]:
    """Every statement sent to the database inside the block, in order (BEGIN and SAVEPOINT included)."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    event.listen(app.db.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(app.db.engine.sync_engine, "before_cursor_execute", note)
